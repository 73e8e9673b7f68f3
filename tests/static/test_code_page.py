"""我的信用码 in Chromium: a green code drawn from the token, rotating online and, with the network cut, from the
offline batch; enlarged on a tap; an enterprise sees its grade."""
from __future__ import annotations

from handlers import codes

from .support import CODE_WINDOW, decode_png, fresh_code, sign_in

TOKEN = "document.querySelector('.code-card canvas').dataset.token"
SHOWN = ".code-card[data-colour] canvas[data-token]"  # a code is drawn (not merely the empty canvas)


def next_token(page, old: str) -> str:
    page.wait_for_function(f"old => {TOKEN} && {TOKEN} !== old", arg=old, timeout=(CODE_WINDOW + 10) * 1000)
    return page.evaluate(TOKEN)


def test_green_code_rotates_online_and_offline(served, new_page, shoot):
    page = new_page()
    sign_in(page, served, "citizen-green", expect="code")
    card = page.locator(".code-card")
    page.wait_for_selector(SHOWN)

    # Green, in colour and in words, with the masked name and a countdown.
    assert card.get_attribute("data-colour") == "green"
    assert "绿码" in card.locator(".colour-badge").inner_text()
    assert "陈*明" in card.inner_text() and "陈志明" not in page.content()
    assert "秒后自动刷新" in card.inner_text()
    assert "调高屏幕亮度" in card.inner_text()

    # The picture is the token: a QR decoder reads exactly what the page holds, and the token says green.
    first, png = fresh_code(page)
    assert decode_png(png) == [first]
    claims, _, _ = codes.parse(first)
    assert claims.colour == "green" and claims.kind == "person"

    # Online it rotates: a new window, a new token.
    second = next_token(page, first)
    assert second != first
    assert page.locator("[role=status][data-mode]").get_attribute("data-mode") == "online"

    # Network cut: the page says so and keeps rotating from the batch it holds.
    page.context.set_offline(True)
    page.wait_for_selector("[data-mode='offline']")
    status = page.locator("[data-mode='offline']").inner_text()
    assert "网络已断开" in status and "离线码" in status
    third = next_token(page, second)
    fourth = next_token(page, third)
    assert len({first, second, third, fourth}) == 4
    batch = page.evaluate("JSON.parse(sessionStorage.getItem('xinma.batch.own')).tokens.map(t => t.token)")
    assert third in batch and fourth in batch  # shown from the batch, not fetched
    later, png = fresh_code(page)
    assert decode_png(png) == [later]
    shoot(page, "code-offline")

    # Back online, it fetches again and says so.
    page.context.set_offline(False)
    page.wait_for_selector("[data-mode='online']")
    assert page.errors == []


def test_tap_enlarges_the_code(served, new_page, shoot):
    page = new_page()
    sign_in(page, served, "citizen-green", expect="code")
    page.wait_for_selector(SHOWN)
    small = page.locator(".code-card canvas").bounding_box()
    token, _ = fresh_code(page)  # seconds left in its window: the enlarged one shows the same
    page.click(".code-card .qr-frame")
    big = page.locator(".qr-big canvas")
    big.wait_for()
    assert big.bounding_box()["width"] > small["width"] * 1.1
    assert "绿码" in page.locator(".qr-big").inner_text()
    assert decode_png(big.screenshot()) == [token]
    shoot(page, "code-enlarged")
    page.keyboard.press("Escape")
    page.wait_for_selector(".qr-big", state="detached")


def test_enterprise_sees_its_grade(served, new_page, shoot):
    page = new_page()
    sign_in(page, served, "enterprise-a", expect="code")
    card = page.locator(".code-card")
    page.wait_for_selector(SHOWN)
    text = card.inner_text()
    assert "公共信用等级：A级" in text and "企业" in text and "绿码" in text
    shoot(page, "code-enterprise")


def test_red_code_says_red_in_words(served, new_page):
    page = new_page()
    sign_in(page, served, "citizen-red", expect="code")
    card = page.locator(".code-card")
    page.wait_for_selector(SHOWN)
    assert card.get_attribute("data-colour") == "red"
    assert "红码" in card.inner_text() and "不良信用记录" in card.inner_text()
