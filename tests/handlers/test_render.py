"""Server-side QR images: the fast encoder matches qrcode module for module, and a real decoder reads every PNG."""
import io
import os
import random

import pytest
import qrcode
import zxingcpp
from nacl.signing import SigningKey
from PIL import Image

from handlers import codes, render

KEY = SigningKey(b"\x03" * 32)


def token(**kw) -> str:
    args = dict(colour="green", kind="person", grade=None, not_before=1_800_000_000, lifetime=30)
    args.update(kw)
    return codes.issue(KEY, 1, os.urandom(8), **args)[0]


def qrcode_matrix(data: str) -> list[list[bool]]:
    qr = qrcode.QRCode(version=6, error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=0)
    qr.add_data(data, optimize=0)
    qr.make(fit=False)
    return qr.get_matrix()


def test_fast_encoder_is_qrcode_module_for_module():
    rng = random.Random(5)
    samples = [token() for _ in range(20)] + ["", "A", "XM:", " " * 154]
    samples += ["".join(rng.choice(render._ALNUM) for _ in range(rng.randint(1, 154))) for _ in range(60)]
    for data in samples:
        assert render._modules_v6(data) is not None
        assert render.qr_matrix(data) == qrcode_matrix(data), data


@pytest.mark.parametrize("data", ["lower case is byte mode", "信码", "A" * 155])
def test_other_data_falls_back_to_qrcode(data):
    assert render._modules_v6(data) is None
    n, modules = render.qr_modules(data)
    assert len(modules) == n * n and set(modules) <= set(b"01")


@pytest.mark.parametrize("colour", ["green", "blue", "red"])
def test_every_png_decodes_to_its_token(colour):
    for grade, kind in ((None, "person"), ("A", "enterprise")):
        t = token(colour=colour, kind=kind, grade=grade)
        png = render.png(t, colour=colour, caption="张*明 2026-11-22 10:32")
        img = Image.open(io.BytesIO(png))
        img.load()  # checks the chunks' CRCs and the zlib stream
        assert (img.format, img.mode, img.width) == ("PNG", "P", render.WIDTH)
        assert img.getpalette()[:3] == list(render.COLOUR_RGB[colour])
        found = zxingcpp.read_barcodes(img)
        assert [(b.format, b.text) for b in found] == [(zxingcpp.BarcodeFormat.QRCode, t)]
        assert found[0].symbology_identifier in ("]Q1", "]Q0")


def test_png_names_the_colour_in_words_and_keeps_the_frame_clean():
    """The frame's edge stays the colour whatever the caption (the caption never spills into it)."""
    t = token(colour="red")
    img = Image.open(io.BytesIO(render.png(t, colour="red", caption="很长的说明文字" * 10)))
    img.load()
    assert {img.getpixel((0, y)) for y in range(img.height)} == {render._FRAME}
    assert zxingcpp.read_barcodes(img)[0].text == t


def test_svg_draws_the_same_symbol():
    t = token()
    svg = render.svg(t, colour="blue", caption="张*明 <&>")
    matrix = render.qr_matrix(t)
    assert svg.count("h1v1h-1z") == sum(map(sum, matrix))
    assert "蓝码" in svg and "&lt;&amp;&gt;" in svg
