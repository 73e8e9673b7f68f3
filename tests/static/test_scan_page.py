"""扫码核销 in Chromium: the clerk's camera (Chromium's fake device, fed the picture of the code the citizen's page
shows) reads a real code and redeems it; the same code again is replayed; a red code is refused. Also the USB
scanner (keyboard wedge), manual entry, voiding, and verification offline that says it redeemed nothing."""
from __future__ import annotations

import base45

from .support import CONTRAST_FAILURES_JS, fresh_code, sign_in

VERDICT = "#verdict"


def org_id(served, name: str) -> int:
    status, body = served.call("GET", "/incentives", None)
    assert status == 200
    return next(i["organisation"]["id"] for i in body["items"] if i["organisation"]["name"] == name)


def redemptions(served, account: str, organisation: str) -> list[dict]:
    token = served.token_of(account)
    status, body = served.call("GET", f"/organisations/{org_id(served, organisation)}/redemptions?limit=200",
                               token=token)
    assert status == 200, body
    return body["items"]


def verdict(page) -> dict:
    page.wait_for_selector(VERDICT)
    assert page.evaluate(CONTRAST_FAILURES_JS) == []  # white on green, red or brown: AA
    v = page.locator(VERDICT)
    return {"status": v.get_attribute("data-status"), "reason": v.get_attribute("data-reason"), "text": v.inner_text()}


def next_verdict(page):
    page.click(f"{VERDICT} button")
    page.wait_for_selector(VERDICT, state="detached")


def choose(page, measure: str) -> None:
    radio = page.locator("label.check", has_text=measure).locator("input[name=measure]")
    radio.check()
    assert radio.is_checked()


def restart_camera(page) -> None:
    page.click("text=停止扫码")
    page.click("text=开始扫码")


def test_camera_redeems_a_real_code_then_replayed_then_red_refused(served, new_page, camera, shoot):
    citizen = new_page()
    sign_in(citizen, served, "citizen-green", expect="code")
    clerk = new_page()
    sign_in(clerk, served, "clerk-westlake", expect="scan")
    choose(clerk, "西湖观光车免费乘坐")

    _, png = fresh_code(citizen)
    camera.show_png(png)
    clerk.click("text=开始扫码")
    v = verdict(clerk)
    assert v["status"] == "redeemed", v
    assert "核销成功" in v["text"] and "西湖观光车免费乘坐" in v["text"]
    assert "陈*明" in v["text"] and "绿码" in v["text"] and "今日剩余 0 次" in v["text"]
    shoot(clerk, "scan-redeemed")
    next_verdict(clerk)

    # The code stays in view: the camera keeps reading it, and it redeems once only.
    clerk.wait_for_function("() => Number(document.querySelector('#scan-status').dataset.ignored || 0) >= 5")
    assert clerk.locator(VERDICT).count() == 0
    mine = [r for r in redemptions(served, "clerk-westlake", "西湖景区观光车") if r["subject"]
            and r["subject"]["name"] == "陈*明"]
    assert [r["status"] for r in mine] == ["redeemed"]

    # Shown again (a new scan): the server says the code was used.
    restart_camera(clerk)
    v = verdict(clerk)
    assert v["status"] == "rejected" and v["reason"] == "replayed", v
    assert "该信用码已使用过" in v["text"] and "replayed" in v["text"] and "✕" in v["text"]
    shoot(clerk, "scan-replayed")
    next_verdict(clerk)

    # A red citizen's code is refused, and says why.
    red = new_page()
    sign_in(red, served, "citizen-red", expect="code")
    _, red_png = fresh_code(red)
    camera.show_png(red_png)
    restart_camera(clerk)
    v = verdict(clerk)
    assert v["status"] == "rejected" and v["reason"] == "colour_not_eligible", v
    assert "未通过" in v["text"] and "红码" in v["text"] and "信用码颜色不符合本措施条件" in v["text"]
    shoot(clerk, "scan-refused")
    next_verdict(clerk)

    # The recent list shows all three, newest first, with a void button for the one redeemed.
    clerk.wait_for_selector("#recent li[data-status='rejected']")
    statuses = clerk.locator("#recent li[data-redemption]").evaluate_all("els => els.map(e => e.dataset.status)")
    assert statuses[:3] == ["rejected", "rejected", "redeemed"]
    assert clerk.locator("#recent li[data-status='redeemed'] button", has_text="撤销").count() == 1
    camera.show_blank()
    assert citizen.errors == clerk.errors == red.errors == []


def test_keyboard_wedge_manual_entry_and_void(served, new_page):
    citizen = new_page()
    sign_in(citizen, served, "citizen-green", expect="code")
    clerk = new_page()
    sign_in(clerk, served, "clerk-library", expect="scan")
    choose(clerk, "一次可借15册图书")
    token, _ = fresh_code(citizen)

    # A USB scanner types the code and Enter, with the focus anywhere but a text field.
    clerk.locator("body").click(position={"x": 5, "y": 5})
    clerk.keyboard.type(token)
    clerk.keyboard.press("Enter")
    v = verdict(clerk)
    assert v["status"] == "redeemed" and "一次可借15册图书" in v["text"], v
    next_verdict(clerk)

    # Manual entry of the same code: replayed.
    clerk.fill("#manual-token", token)
    clerk.click("text=提交核销")
    v = verdict(clerk)
    assert v["reason"] == "replayed", v
    next_verdict(clerk)

    # Void the redemption from the recent list (within ten minutes): quota comes back.
    row = clerk.locator("#recent li[data-status='redeemed']")
    row.locator("button", has_text="撤销").click()
    clerk.locator(".dialog button", has_text="撤销").click()
    clerk.wait_for_selector("#recent li[data-status='voided']")
    items = redemptions(served, "clerk-library", "慈云图书馆")
    assert [r["status"] for r in items if r["reason"] is None] == ["voided"]
    assert clerk.errors == []


def test_offline_scanner_verifies_and_says_it_did_not_redeem(served, new_page, shoot):
    citizen = new_page()
    sign_in(citizen, served, "citizen-green", expect="code")
    clerk = new_page()
    sign_in(clerk, served, "clerk-police", expect="scan")
    choose(clerk, "车辆、户籍业务免预约办理")
    before = redemptions(served, "clerk-police", "惠城区公安分局办证大厅")
    token, _ = fresh_code(citizen)
    clerk.context.set_offline(True)
    clerk.wait_for_selector("text=离线模式")

    clerk.fill("#manual-token", token)
    clerk.click("text=提交核销")
    v = verdict(clerk)
    assert v["status"] == "offline", v
    assert "未核销" in v["text"] and "签名有效" in v["text"] and "绿码" in v["text"]
    assert "码色符合本措施条件" in v["text"]
    shoot(clerk, "scan-offline")
    next_verdict(clerk)

    # One changed byte of the signature: the cached key refuses it.
    raw = bytearray(base45.b45decode(token[3:]))
    raw[-1] ^= 1
    forged = "XM:" + base45.b45encode(bytes(raw)).decode()
    clerk.fill("#manual-token", forged)
    clerk.click("text=提交核销")
    v = verdict(clerk)
    assert v["status"] == "offline" and "信用码签名无效" in v["text"], v
    next_verdict(clerk)

    clerk.context.set_offline(False)
    assert redemptions(served, "clerk-police", "惠城区公安分局办证大厅") == before  # nothing written
    assert clerk.errors == []
