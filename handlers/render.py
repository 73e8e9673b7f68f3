"""Server-side QR images of a token (PNG and SVG) for chat replies and kiosks.

The mini-program draws the QR itself from the token; this is for places that need an image.
It must be cheap (goal: 500 PNG/s per core; docs/benchmarks.md): a token's symbol comes from
a precomputed version 6-M layout with the fixed mask 0 (any mask decodes), the frame with the
colour in words is drawn once per colour and reused, captions are built from cached glyphs, and
the 2-bit PNG rows go straight to zlib at level 1.
"""
from __future__ import annotations

import itertools
import operator
import os
import struct
import zlib
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


# --- QR symbols: one fast case, qrcode for the rest -----------------------------------------------
# qrcode builds a symbol in ~8 ms of Python (module by module, lists of lists); that alone caps a
# core at ~120 PNG/s. A token is always alphanumeric and always fits version 6 at level M
# (docs/code-format.md), so for that one case the layout is computed once: which module each data
# bit lands in, and the function patterns, format information and mask 0 around them. Encoding is
# then the bit stream, Reed–Solomon over four blocks, one XOR with the mask and one gather
# (operator.itemgetter) — about 50 µs. The result is module for module what qrcode produces with
# mask_pattern=0 (tests/handlers/test_render.py checks that, and decodes PNGs with zxing-cpp).

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_ALNUM_VALUE = bytes(_ALNUM.index(chr(i)) if chr(i) in _ALNUM else 0xFF for i in range(256))
_N = 41                                     # version 6: 17 + 4·6 modules a side
_BLOCKS, _DATA_PER_BLOCK, _EC_PER_BLOCK = 4, 27, 16  # version 6-M: 4 × (43, 27)
_DATA_BYTES = _BLOCKS * _DATA_PER_BLOCK     # 108
_CODEWORDS = _BLOCKS * (_DATA_PER_BLOCK + _EC_PER_BLOCK)  # 172
_CAPACITY = 154                             # alphanumeric characters at 6-M
_FORMAT_M_MASK0 = 0b101010000010010         # BCH(level M = 00, mask 000) XOR 101010000010010
_PAD = bytes([0xEC, 0x11]) * (_DATA_BYTES // 2)
_BIN11 = [format(v, "011b") for v in range(45 * 45)]
_TIMES45 = tuple(45 * v for v in range(256))


def _gf() -> tuple[list[int], list[int]]:
    exp, log, x = [0] * 512, [0] * 256, 1
    for i in range(255):
        exp[i], log[x] = x, i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


def _rs_rows() -> list[int]:
    """For each leading factor f, f × the generator's 16 lower coefficients, as one 128-bit integer."""
    exp, log = _gf()

    def mul(a: int, b: int) -> int:
        return 0 if a == 0 or b == 0 else exp[log[a] + log[b]]

    gen = [1]
    for i in range(_EC_PER_BLOCK):  # (x − α^0)(x − α^1)…, highest degree first
        nxt = gen + [0]
        for j, c in enumerate(gen):
            nxt[j + 1] ^= mul(c, exp[i])
        gen = nxt
    return [int.from_bytes(bytes(mul(f, g) for g in gen[1:]), "big") for f in range(256)]


_RS_ROWS = _rs_rows()
_RS_KEEP = (1 << (8 * _EC_PER_BLOCK)) - 1


def _ec(block: bytes) -> bytes:
    r = 0
    for byte in block:  # the division's remainder, 16 bytes held in one integer
        r = ((r << 8) & _RS_KEEP) ^ _RS_ROWS[(r >> 120) ^ byte]
    return r.to_bytes(_EC_PER_BLOCK, "big")


def _layout() -> tuple[tuple[int, ...], int, int]:
    """(source index of every module, mask bits of the data modules, mask bits of the remainder bits)."""
    n = _N
    m: list[list[bool | None]] = [[None] * n for _ in range(n)]
    for row, col in ((0, 0), (n - 7, 0), (0, n - 7)):  # finders with separators
        for r in range(-1, 8):
            for c in range(-1, 8):
                if 0 <= row + r < n and 0 <= col + c < n:
                    m[row + r][col + c] = ((0 <= r <= 6 and c in (0, 6)) or (0 <= c <= 6 and r in (0, 6))
                                           or (2 <= r <= 4 and 2 <= c <= 4))
    for r in range(-2, 3):  # the one alignment pattern of version 6 clear of the finders, at (34, 34)
        for c in range(-2, 3):
            m[34 + r][34 + c] = r in (-2, 2) or c in (-2, 2) or r == c == 0
    for i in range(8, n - 8):  # timing
        m[i][6] = m[6][i] = i % 2 == 0
    for i in range(15):  # format information, as qrcode places it
        bit = bool(_FORMAT_M_MASK0 >> i & 1)
        m[i if i < 6 else i + 1 if i < 8 else n - 15 + i][8] = bit
        m[8][n - i - 1 if i < 8 else 15 - i if i < 9 else 15 - i - 1] = bit
    m[n - 8][8] = True  # the dark module
    order = []
    row, step = n - 1, -1
    for col in range(n - 1, 0, -2):  # two-column zigzag from the bottom right, skipping the timing column
        if col <= 6:
            col -= 1
        while True:
            for c in (col, col - 1):
                if m[row][c] is None:
                    order.append((row, c))
            row += step
            if not 0 <= row < n:
                row -= step
                step = -step
                break
    bits = _CODEWORDS * 8
    assert len(order) == bits + 7  # version 6 has 7 remainder bits
    # Source string: data bits (already masked) + remainder bits (masked zeros) + "0" + "1" for fixed modules.
    src = [bits + 7 + int(bool(v)) for row in m for v in row]
    mask = rem = 0
    for i, (r, c) in enumerate(order):
        src[r * n + c] = i
        if i < bits:
            mask = mask << 1 | ((r + c) % 2 == 0)
        else:
            rem = rem << 1 | ((r + c) % 2 == 0)
    return tuple(src), mask, rem


_SRC, _MASK_BITS, _REM_BITS = _layout()
_GATHER = operator.itemgetter(*_SRC)
_TAIL = format(_REM_BITS, "07b").encode() + b"01"


def _modules_v6(data: str) -> bytes | None:
    """The 41×41 modules row by row as b"0"/b"1", or None when ``data`` is not short alphanumeric text."""
    if len(data) > _CAPACITY or not data.isascii():
        return None
    v = data.encode("ascii").translate(_ALNUM_VALUE)
    if 0xFF in v:
        return None
    pairs = len(v) // 2
    bits = "0010" + format(len(v), "09b") + "".join(
        map(_BIN11.__getitem__, map(int.__add__, map(_TIMES45.__getitem__, v[0:2 * pairs:2]), v[1:2 * pairs:2])))
    if len(v) % 2:
        bits += format(v[-1], "06b")
    bits += "0" * min(4, _DATA_BYTES * 8 - len(bits))  # terminator
    bits += "0" * (-len(bits) % 8)
    data_bytes = int(bits, 2).to_bytes(len(bits) // 8, "big")
    data_bytes += _PAD[:_DATA_BYTES - len(data_bytes)]
    interleaved = bytearray(_CODEWORDS)
    ec_at = _DATA_BYTES
    for b in range(_BLOCKS):
        block = data_bytes[b * _DATA_PER_BLOCK:(b + 1) * _DATA_PER_BLOCK]
        interleaved[b:_DATA_BYTES:_BLOCKS] = block
        interleaved[ec_at + b::_BLOCKS] = _ec(block)
    stream = format(int.from_bytes(interleaved, "big") ^ _MASK_BITS, f"0{_CODEWORDS * 8}b").encode() + _TAIL
    return bytes(_GATHER(stream))


def qr_modules(data: str) -> tuple[int, bytes]:
    """(size, modules row by row, b"1" dark / b"0" light) at error-correction level M, without quiet zone."""
    fast = _modules_v6(data)
    if fast is not None:
        return _N, fast
    # Anything else (not a token): qrcode, at version 6 if it fits, mask 0.
    version = 6 if len(data) <= 106 else None  # 106 bytes: version 6-M in byte mode
    qr = qrcode.QRCode(version=version, error_correction=qrcode.constants.ERROR_CORRECT_M, border=0,
                       mask_pattern=0)
    qr.add_data(data, optimize=0)
    qr.make(fit=version is None)
    matrix = qr.get_matrix()
    return len(matrix), b"".join(b"1" if cell else b"0" for row in matrix for cell in row)


def qr_matrix(data: str) -> list[list[bool]]:
    n, modules = qr_modules(data)
    return [[modules[i] == 0x31 for i in range(r * n, (r + 1) * n)] for r in range(n)]


@lru_cache(maxsize=1)
def _font_path() -> str | None:
    candidates = [os.environ.get("XINMA_FONT_PATH", ""), *FONT_PATHS]
    return next((p for p in candidates if p and os.path.exists(p)), None)


@lru_cache(maxsize=8)
def _font(size: int):
    # Basic layout: Chinese and digits need no shaping, and Raqm's layout costs twice the drawing.
    path = _font_path()
    return (ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC) if path
            else ImageFont.load_default(size))


def _words(colour: str) -> str:
    return COLOUR_WORDS[colour] if _font_path() else COLOUR_WORDS_LATIN[colour]


def _qr_image(n: int, modules: bytes) -> Image.Image:
    raw = modules.translate(_MODULE_PIXEL)
    return Image.frombytes("P", (n, n), raw).resize((n * MODULE, n * MODULE), Image.NEAREST)


# Every row of the image starts with LEAD pixels of palette index 0 that are not part of the picture:
# packed at 2 bits a pixel they are one zero byte, which is exactly PNG's "no filter" tag, so the
# rows go to zlib as they are (Pillow's PNG encoder takes twice as long for the same bytes).
LEAD = 4


@lru_cache(maxsize=16)
def _template(colour: str, qr_px: int) -> Image.Image:
    """The coloured frame and the colour in words, drawn once."""
    pad = QUIET * MODULE
    height = 70 + qr_px + 2 * pad + 70
    img = Image.new("P", (LEAD + WIDTH, height), _FRAME)
    img.putpalette(_palette(colour))
    draw = ImageDraw.Draw(img)
    # Text is drawn without anti-aliasing: a three-colour palette keeps encoding fast and files small.
    draw.fontmode = "1"
    draw.text((LEAD + WIDTH // 2, 38), _words(colour), fill=_WHITE, font=_font(34), anchor="mm")
    left = LEAD + (WIDTH - qr_px) // 2 - pad
    draw.rectangle((left, 70, left + qr_px + 2 * pad - 1, 70 + qr_px + 2 * pad - 1), fill=_WHITE)
    return img


_FRAME, _WHITE, _BLACK = 0, 1, 2
_MODULE_PIXEL = bytes.maketrans(b"01", bytes([_WHITE, _BLACK]))


def _palette(colour: str) -> list[int]:
    return [*COLOUR_RGB[colour], 255, 255, 255, 0, 0, 0]


@lru_cache(maxsize=4096)
def _glyph(ch: str, size: int) -> tuple[Image.Image | None, int, int, float]:
    """One character drawn once: (1-bit mask or None for blanks, left, top, advance) for the 'la' anchor."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(ch, anchor="la")
    advance = font.getlength(ch)
    if right <= left or bottom <= top:
        return None, 0, 0, advance
    mask = Image.new("1", (right - left, bottom - top), 0)
    draw = ImageDraw.Draw(mask)
    draw.fontmode = "1"
    draw.text((-left, -top), ch, fill=1, font=font, anchor="la")
    return mask, left, top, advance


def _caption(img: Image.Image, text: str, centre: tuple[int, int], size: int = 20) -> None:
    """Draw ``text`` centred at ``centre`` from cached glyphs (FreeType per call cost ~0.4 ms a caption)."""
    glyphs = [_glyph(ch, size) for ch in text]
    ascent, descent = _font(size).getmetrics()
    x = centre[0] - sum(g[3] for g in glyphs) / 2
    y = centre[1] - (ascent + descent) // 2
    for mask, left, top, advance in glyphs:
        if mask is not None:
            img.paste(_WHITE, (round(x) + left, y + top), mask)
        x += advance
    img.paste(_FRAME, (0, 0, LEAD, img.height))  # keep the filter bytes zero whatever the caption


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def _png_bytes(img: Image.Image, colour: str) -> bytes:
    """A 2-bit palette PNG of ``img`` without its LEAD column (see LEAD)."""
    scanlines = img.tobytes("raw", "P;2")  # each row: one zero byte (the LEAD pixels), then the picture
    header = struct.pack(">IIBBBBB", img.width - LEAD, img.height, 2, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", bytes(_palette(colour)))
            + _chunk(b"IDAT", zlib.compress(scanlines, 1)) + _chunk(b"IEND", b""))


def png(token: str, *, colour: str, caption: str) -> bytes:
    """The token as a QR code in a frame of its colour, named in words, with a caption (masked name, time)."""
    qr = _qr_image(*qr_modules(token))
    img = _template(colour, qr.width).copy()
    img.paste(qr, (LEAD + (WIDTH - qr.width) // 2, 70 + QUIET * MODULE))
    _caption(img, caption, (LEAD + WIDTH // 2, img.height - 35))
    return _png_bytes(img, colour)


_MODULE_BIT = bytes.maketrans(b"01", b"\x00\x01")


@lru_cache(maxsize=4)
def _cells(n: int) -> tuple[str, ...]:
    """The path of every module of an n×n symbol, made once; a symbol's path joins those of its dark modules."""
    return tuple(f"M{i % n + QUIET},{i // n + QUIET}h1v1h-1z" for i in range(n * n))


def svg(token: str, *, colour: str, caption: str) -> str:
    n, modules = qr_modules(token)
    size = n + 2 * QUIET
    path = "".join(itertools.compress(_cells(n), modules.translate(_MODULE_BIT)))
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
