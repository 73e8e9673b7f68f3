"""Helpers of the browser tests: the served app's API, the fake camera, signing in, reading the shown code."""
from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 390, "height": 844}
CODE_WINDOW = 6  # seconds: short, so that rotation is seen quickly; tokens still pass with the 5 s skew
FRESH_SECONDS = 4  # a code read for a scan has at least this long left in its window


# --- the served app ---------------------------------------------------------------------------------

class Served:
    def __init__(self, base: str, app):
        self.base = base
        self.app = app

    def url(self, fragment: str = "") -> str:
        return f"{self.base}/app/{fragment}"

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """The JSON API, as any client would call it."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + "/api/v1" + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def token_of(self, account: str) -> str:
        status, body = self.call("POST", "/session/demo", {"account": account})
        assert status == 201, body
        return body["token"]


class Camera:
    """Chromium's fake camera reads a YUV4MPEG2 file each time a page opens the camera: write it first."""

    WIDTH, HEIGHT = 640, 480

    def __init__(self, path: Path):
        self.path = path
        self.show_blank()

    def show_blank(self) -> None:
        from PIL import Image
        self._write(Image.new("L", (self.WIDTH, self.HEIGHT), 255))

    def show_png(self, png: bytes, size: int = 360) -> None:
        """One frame: the picture (a QR code as the citizen's page shows it), greyscale, centred on white."""
        from PIL import Image
        picture = Image.open(io.BytesIO(png)).convert("L").resize((size, size), Image.NEAREST)
        frame = Image.new("L", (self.WIDTH, self.HEIGHT), 255)
        frame.paste(picture, ((self.WIDTH - size) // 2, (self.HEIGHT - size) // 2))
        self._write(frame)

    def _write(self, luma) -> None:
        header = f"YUV4MPEG2 W{self.WIDTH} H{self.HEIGHT} F30:1 Ip A1:1 C420jpeg\n".encode()
        chroma = bytes([128]) * ((self.WIDTH // 2) * (self.HEIGHT // 2) * 2)  # U and V planes: grey
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(header + b"FRAME\n" + luma.tobytes() + chroma)
        tmp.replace(self.path)  # whole frames only: the browser never reads a half-written file


def sign_in(page, served: Served, account: str, expect: str) -> None:
    """Through the demo picker, as a person would; ``expect`` is the page the account lands on."""
    page.goto(served.url())
    page.click(f"[data-account='{account}']")
    wait_for_view(page, expect)


def wait_for_view(page, name: str) -> None:
    """The page ``name`` is shown and has loaded its data."""
    page.wait_for_selector(f"#main > .view[data-view='{name}'][data-ready]")


def fresh_code(page) -> tuple[str, bytes]:
    """The token the citizen's page shows and a picture of its QR code, with FRESH_SECONDS left at least."""
    page.wait_for_selector(".code-card[data-colour] canvas[data-token]")
    canvas = page.locator(".code-card canvas")
    for _ in range(5):
        left = page.evaluate("() => Number(document.querySelector('.code-card canvas').dataset.validUntil) - Date.now()")
        if left < FRESH_SECONDS * 1000:
            old = canvas.get_attribute("data-token")
            page.wait_for_function("old => document.querySelector('.code-card canvas').dataset.token !== old", arg=old)
            continue
        before = canvas.get_attribute("data-token")
        png = canvas.screenshot()
        if canvas.get_attribute("data-token") == before:
            return before, png
    raise AssertionError("the code page never held one code long enough to photograph it")


def decode_png(png: bytes) -> list[str]:
    import zxingcpp
    from PIL import Image
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


# WCAG 2.x contrast of every visible text against the background it is drawn on (backgrounds composed from the
# root down, so a translucent layer counts); large text (24px, or 18.66px bold) needs 3:1, the rest 4.5:1.
CONTRAST_FAILURES_JS = """
() => {
  const parse = (c) => {
    const m = c && c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const blend = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
  });
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const background = (el) => {
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.push(e);
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (const e of chain.reverse()) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) bg = blend(c, bg);
    }
    return bg;
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (el.closest('[hidden], option, .camera') || el.disabled) continue;
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || !rect.width || !rect.height) continue;
    const bg = background(el);
    const fg = blend(parse(style.color), bg);
    const size = parseFloat(style.fontSize);
    const need = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700) ? 3 : 4.5;
    const r = ratio(fg, bg);
    if (r < need) failures.push(`${node.textContent.trim().slice(0, 24)} (${el.tagName}.${el.className}): ${r.toFixed(2)} < ${need}`);
  }
  return failures;
}
"""


# Buttons (and tabs) a thumb can hit: at least 44 px high.
SMALL_BUTTONS_JS = """
() => [...document.querySelectorAll('button, #tabbar a, .weui-btn')]
  .filter((b) => b.getClientRects().length && !b.closest('[hidden]'))
  .map((b) => [b.textContent.trim(), b.getBoundingClientRect().height])
  .filter(([, height]) => height < 44)
"""


def assert_reads_well(page) -> None:
    """What every page must pass as it stands: WCAG AA contrast of every text, large buttons, and at 360 px wide
    nothing that scrolls sideways (the viewport is put back afterwards)."""
    assert page.evaluate(CONTRAST_FAILURES_JS) == []
    assert page.evaluate(SMALL_BUTTONS_JS) == []
    size = page.viewport_size
    page.set_viewport_size({"width": 360, "height": 740})
    page.wait_for_function("() => window.innerWidth === 360")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.set_viewport_size(size)
    page.wait_for_function(f"() => window.innerWidth === {size['width']}")
