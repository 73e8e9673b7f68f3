"""Server-side QR images of a token (PNG and SVG) for chat replies and kiosks.

The mini-program draws the QR itself from the token; this is for places that need an image.
It must be cheap: the QR matrix is built with a fixed mask pattern (choosing the "best" of
eight masks is what makes qrcode slow, and any mask decodes), the frame with the colour in
words is drawn once per colour and reused, and PNG compression is set for speed.
"""
from __future__ import annotations

import io
import os
from functools import lru_cache
from xml.sax.saxutils import escape

import qrcode
from PIL import Image, ImageDraw, ImageFont

COLOUR_RGB = {"green": (7, 153, 84), "blue": (16, 104, 204), "red": (206, 32, 40)}
COLOUR_WORDS = {"green": "绿码", "blue": "蓝码", "red": "红码"}
COLOUR_WORDS_LATIN = {"green": "GREEN", "blue": "BLUE", "red": "RED"}
FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)
MODULE = 6          # pixels per QR module
QUIET = 4           # modules of quiet zone
WIDTH = 360


def qr_matrix(data: str) -> list[list[bool]]:
    # A token always fits version 6 (docs/code-format.md); fitting means encoding twice, so skip it.
    version = 6 if len(data) <= 154 else None
    qr = qrcode.QRCode(version=version, error_correction=qrcode.constants.ERROR_CORRECT_M, border=0,
                       mask_pattern=0)
    qr.add_data(data, optimize=0)
    qr.make(fit=version is None)
    return qr.get_matrix()


@lru_cache(maxsize=1)
def _font_path() -> str | None:
    candidates = [os.environ.get("XINMA_FONT_PATH", ""), *FONT_PATHS]
    return next((p for p in candidates if p and os.path.exists(p)), None)


@lru_cache(maxsize=8)
def _font(size: int):
    path = _font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def _words(colour: str) -> str:
    return COLOUR_WORDS[colour] if _font_path() else COLOUR_WORDS_LATIN[colour]


def _qr_image(matrix: list[list[bool]]) -> Image.Image:
    n = len(matrix)
    raw = bytes(_BLACK if cell else _WHITE for row in matrix for cell in row)
    img = Image.frombytes("P", (n, n), raw).resize((n * MODULE, n * MODULE), Image.NEAREST)
    return img


@lru_cache(maxsize=16)
def _template(colour: str, qr_px: int) -> Image.Image:
    """The coloured frame and the colour in words, drawn once."""
    pad = QUIET * MODULE
    height = 70 + qr_px + 2 * pad + 70
    img = Image.new("P", (WIDTH, height), _FRAME)
    img.putpalette(_palette(colour))
    draw = ImageDraw.Draw(img)
    # Text is drawn without anti-aliasing: a three-colour palette keeps encoding fast and files small.
    draw.fontmode = "1"
    draw.text((WIDTH // 2, 38), _words(colour), fill=_WHITE, font=_font(34), anchor="mm")
    left = (WIDTH - qr_px) // 2 - pad
    draw.rectangle((left, 70, left + qr_px + 2 * pad - 1, 70 + qr_px + 2 * pad - 1), fill=_WHITE)
    return img


_FRAME, _WHITE, _BLACK = 0, 1, 2


def _palette(colour: str) -> list[int]:
    return [*COLOUR_RGB[colour], 255, 255, 255, 0, 0, 0]


def png(token: str, *, colour: str, caption: str) -> bytes:
    """The token as a QR code in a frame of its colour, named in words, with a caption (masked name, time)."""
    qr = _qr_image(qr_matrix(token))
    img = _template(colour, qr.width).copy()
    left = (WIDTH - qr.width) // 2
    img.paste(qr, (left, 70 + QUIET * MODULE))
    draw = ImageDraw.Draw(img)
    draw.fontmode = "1"
    draw.text((WIDTH // 2, img.height - 35), caption, fill=_WHITE, font=_font(20), anchor="mm")
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def svg(token: str, *, colour: str, caption: str) -> str:
    matrix = qr_matrix(token)
    n = len(matrix)
    size = n + 2 * QUIET
    path = "".join(f"M{x + QUIET},{y + QUIET}h1v1h-1z" for y, row in enumerate(matrix)
                   for x, cell in enumerate(row) if cell)
    r, g, b = COLOUR_RGB[colour]
    scale = 8
    h = size * scale + 140
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size * scale + 40}" height="{h}" '
        f'viewBox="0 0 {size * scale + 40} {h}" role="img" aria-label="{COLOUR_WORDS[colour]}">'
        f'<rect width="100%" height="100%" fill="rgb({r},{g},{b})"/>'
        f'<text x="50%" y="45" font-size="34" text-anchor="middle" fill="#fff">{COLOUR_WORDS[colour]}</text>'
        f'<g transform="translate(20,70) scale({scale})"><rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></g>'
        f'<text x="50%" y="{h - 30}" font-size="20" text-anchor="middle" fill="#fff">{escape(caption)}</text>'
        f"</svg>"
    )
