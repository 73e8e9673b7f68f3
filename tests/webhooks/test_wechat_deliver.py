"""WeChat's side played by the emulator itself: /_emulator/deliver posts to our app served on 127.0.0.1,
signed and (in compat and AES mode) encrypted, retried; the app calls the emulator back through wechatpy.
Ends with issue 4's "done when": the demo's story, start to finish."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers.models import Redemption, WeChatIdentity
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures
from tests.wechat_webhook_support import served_app
from webhooks.demo_chat import DEMO_PEOPLE


@pytest.fixture
def served(tmp_path, emulator):
    with served_app(tmp_path, emulator) as app:
        yield app.webhook


@pytest.fixture
def served_demo(tmp_path, emulator):
    with served_app(tmp_path, emulator, demo=True) as app:
        yield app


def test_handshake_and_deliveries_in_every_mode(emulator, served):
    assert emulator.post("/_emulator/handshake", {"webhook": served})["ok"]
    for mode in ("plain", "compat", "aes"):
        out = emulator.post("/_emulator/deliver", {"openid": "oDeliver0000000000000000001", "mode": mode,
                                                   "webhook": served, "times": 3,
                                                   "message": {"type": "text", "content": "帮助"}})
        assert [t["status"] for t in out["tries"]] == [200, 200, 200]
        assert out["encrypted"] == (mode != "plain") and "error" not in out
        assert len({t["reply_xml"] for t in out["tries"]}) == 1  # retries: the very same reply
        assert "信用码" in out["reply"]["Content"]
    scan = emulator.post("/_emulator/deliver", {"openid": "oDeliver0000000000000000001", "encrypt": True,
                                                "webhook": served, "message": {
                                                    "type": "event", "event": "scancode_waitmsg", "key": "scan",
                                                    "scan_result": "XM1.whatever"}})
    assert "不是核销员" in scan["reply"]["Content"] and "绑定码" in scan["reply"]["Content"]


def test_the_demo_story(emulator, served_demo):
    """A person chats with the bot and gets their code; a newcomer binds as a clerk through the invite QR
    (qrcode/create, then the subscribe event carrying its scene); the clerk scans citizens' codes from the
    chat menu (scancode_waitmsg) and sees each verdict. Every message is WeChat's XML, signed and AES-encrypted
    by the emulator; every call back to WeChat is wechatpy's, against the emulator."""
    app = served_demo
    citizen = next(p.openid for p in DEMO_PEOPLE if p.login == "citizen-green")
    newcomer = "oStoryNewcomer00000000000001"

    def deliver(openid: str, message: dict, **extra) -> dict:
        out = emulator.post("/_emulator/deliver", {"openid": openid, "message": message, "encrypt": True,
                                                   "webhook": app.webhook, **extra})
        assert out["status"] == 200 and out["encrypted"] and "error" not in out, out
        return out

    def says(openid: str, content: str) -> str:
        return deliver(openid, {"type": "text", "content": content})["reply"]["Content"]

    # A person chats with the bot, and gets their code: an image the bot uploaded through media/upload.
    assert "信用码" in says(citizen, "帮助")
    assert "西湖观光车免费乘坐" in says(citizen, "我的权益")
    image = deliver(citizen, {"type": "event", "event": "CLICK", "key": "code"})["reply"]
    assert image["MsgType"] == "image"
    png = emulator.http.get(f"{emulator.base}/_emulator/media/{image['Image']['MediaId']}", timeout=10)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert emulator.requests_to("cgi-bin/media/upload") == 1

    # The organisation's admin asks for a clerk invite: a parametric QR code made by qrcode/create.
    admin = app.login("orgadmin-westlake")
    org = next(r["organisation_id"] for r in app.call("GET", "/api/v1/me", token=admin).json()["roles"]
               if r["role"] == "org_admin")
    r = app.call("POST", f"/api/v1/organisations/{org}/clerk-invites", token=admin)
    assert r.status_code == 201, r.text
    ticket = r.json()["qrcode"]["ticket"]
    assert emulator.requests_to("cgi-bin/qrcode/create") == 1
    assert emulator.get(f"/_emulator/qrcodes/{ticket}")["scene"].startswith("ci_")

    # A newcomer scans it with WeChat: follows the account through it, and is bound as a clerk.
    assert "还没有绑定" in says(newcomer, "信用码")
    bound = deliver(newcomer, {"type": "event", "event": "subscribe", "ticket": ticket})["reply"]["Content"]
    assert "西湖景区观光车" in bound and "核销员" in bound
    assert "西湖观光车免费乘坐（当前）" in says(newcomer, "核销")

    # The clerk scans the green citizen's code from the menu: redeemed. WeChat retries: the same answer, once.
    def code_of(login: str) -> str:
        r = app.call("POST", "/api/v1/codes", token=app.login(login))
        assert r.status_code == 200, r.text
        return r.json()["tokens"][0]["token"]

    def scan(token: str, **extra) -> dict:
        return deliver(newcomer, {"type": "event", "event": "scancode_waitmsg", "key": "scan",
                                  "scan_result": token}, **extra)

    first = scan(code_of("citizen-green"), times=3)
    assert len({t["reply_xml"] for t in first["tries"]}) == 1
    verdict = first["reply"]["Content"]
    assert verdict.startswith("✅") and "西湖观光车免费乘坐" in verdict and "陈*明（绿码）" in verdict
    assert "今日还可使用0次" in verdict

    # A red citizen's code: refused, with the reason; the green citizen again today: the quota is used up.
    red = scan(code_of("citizen-red"))["reply"]["Content"]
    assert red.startswith("❌") and "黄*强（红码）" in red and "颜色不符合" in red
    again = scan(code_of("citizen-green"))["reply"]["Content"]
    assert again.startswith("❌") and "上限" in again

    with app.session() as s:
        statuses = s.scalars(select(Redemption.status).order_by(Redemption.id)).all()
        assert [str(x) for x in statuses] == ["redeemed", "rejected", "rejected"]  # three scans, one use
        clerk = s.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == newcomer)).account
        assert clerk.login.startswith("wx_") and clerk.active
    assert "最近使用" in says(citizen, "我的权益")  # the citizen sees the use
