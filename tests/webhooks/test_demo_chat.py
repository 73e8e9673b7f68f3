"""The demo chat page (/demo/chat): demo mode only; every message goes through the emulator to our webhook
(signed, AES when asked) and the page reads back what the user saw: replies, images, pushed messages."""
from __future__ import annotations

from pathlib import Path

import pytest

from handlers import wechat
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures
from tests.wechat_webhook_support import MemoryTokenStore, served_app
from webhooks.demo_chat import DEMO_PEOPLE, display, seed_people

GREEN = next(p.openid for p in DEMO_PEOPLE if p.login == "citizen-green")
CLERK = next(p.openid for p in DEMO_PEOPLE if p.login == "clerk-westlake")


@pytest.fixture
def demo(tmp_path, emulator):
    with served_app(tmp_path, emulator, demo=True) as app:
        yield app


@pytest.fixture
def page_client(make_app, emulator):
    """The page's endpoints through the test client (enough where nothing reaches the webhook)."""
    return make_app(DEMO=True, WECHAT_API_BASE=emulator.base).test_client()


def send(app, openid: str, message: dict, **extra):
    return app.call("POST", "/demo/chat/send", json={"openid": openid, "message": message, **extra})


def inbox(app, openid: str, after: int | None = None) -> dict:
    r = app.call("GET", f"/demo/chat/inbox/{openid}", params={"after": after} if after else None)
    assert r.status_code == 200, r.text
    return r.json()


def test_only_in_demo_mode(make_app):
    client = make_app(DEMO=False).test_client()
    for path in ("/demo/chat", "/demo/chat/chat.js", "/demo/chat/inbox/oAbc"):
        assert client.get(path).status_code == 404
    assert client.post("/demo/chat/send", json={}).status_code == 404


def test_without_an_emulator_the_page_says_so(make_app):
    client = make_app(DEMO=True).test_client()  # XINMA_WECHAT_API_BASE unset: WeChat itself, not for a demo
    page = client.get("/demo/chat")
    assert page.status_code == 200 and "xinma serve --demo" in page.get_data(as_text=True)
    r = client.post("/demo/chat/send", json={"openid": GREEN, "message": {"type": "text", "content": "帮助"}})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "wechat_unavailable"


def test_the_page_and_its_files(demo):
    page = demo.call("GET", "/demo/chat")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    for person in DEMO_PEOPLE:
        assert person.openid in html and person.label in html
    assert "扫码核销" in html and "我的权益" in html and "演示助手" in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in html  # no inline script: the page's own CSP would refuse it
    assert demo.call("GET", "/demo/chat/chat.js").headers["Content-Type"].startswith("text/javascript")
    assert demo.call("GET", "/demo/chat/chat.css").headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize("encrypt", [True, False])
def test_typing_as_a_wechat_user_goes_through_the_emulator(demo, emulator, encrypt):
    r = send(demo, GREEN, {"type": "text", "content": "帮助"}, encrypt=encrypt)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 200 and body["encrypted"] is encrypt and body["error"] is None
    assert body["reply"]["side"] == "bot" and "信用码" in body["reply"]["text"]
    seen = [(e["side"], e.get("text", "")[:2]) for e in inbox(demo, GREEN)["entries"]]
    assert seen == [("me", "帮助"), ("bot", "您可")]


def test_the_menu_shows_the_code_image_and_the_incentives(demo, emulator):
    send(demo, GREEN, {"type": "event", "event": "CLICK", "key": "code"})
    send(demo, GREEN, {"type": "event", "event": "CLICK", "key": "incentives"})
    entries = inbox(demo, GREEN)["entries"]
    assert [(e["side"], e.get("type")) for e in entries] == [
        ("system", None), ("bot", "image"), ("system", None), ("bot", "text")]
    assert entries[0]["text"] == "点击了菜单“我的信用码”"
    assert "陈*明（绿码）" in entries[3]["text"]
    png = demo.call("GET", f"/demo/chat/media/{entries[1]['media_id']}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert demo.call("GET", "/demo/chat/media/no-such-media").status_code == 404
    later = inbox(demo, GREEN, after=entries[1]["id"])["entries"]
    assert [e["id"] for e in later] == [entries[2]["id"], entries[3]["id"]]


def test_a_clerk_scans_a_pasted_code_from_the_menu(demo):
    token = demo.call("POST", "/api/v1/codes", token=demo.login("citizen-red")).json()["tokens"][0]["token"]
    r = send(demo, CLERK, {"type": "event", "event": "scancode_waitmsg", "key": "scan", "scan_result": token})
    verdict = r.json()["reply"]["text"]
    assert verdict.startswith("❌") and "黄*强（红码）" in verdict
    scanned = inbox(demo, CLERK)["entries"][0]
    assert scanned["side"] == "system" and scanned["text"].startswith("点击“扫码核销”，扫到：XM")


def test_an_invite_qr_and_a_newcomer_who_scans_it(demo):
    admin = demo.login("orgadmin-westlake")
    org = next(r["organisation_id"] for r in demo.call("GET", "/api/v1/me", token=admin).json()["roles"]
               if r["role"] == "org_admin")
    ticket = demo.call("POST", f"/api/v1/organisations/{org}/clerk-invites", token=admin).json()["qrcode"]["ticket"]
    qr = demo.call("GET", "/demo/chat/qrcode", params={"ticket": ticket})
    assert qr.status_code == 200 and qr.content.startswith(b"\x89PNG")
    assert demo.call("GET", "/demo/chat/qrcode", params={"ticket": "unknown"}).status_code == 404
    newcomer = "oPageNewcomer000000000000001"
    r = send(demo, newcomer, {"type": "event", "event": "subscribe", "ticket": ticket})
    assert "西湖景区观光车" in r.json()["reply"]["text"]
    assert inbox(demo, newcomer)["entries"][0]["text"] == "扫码关注了公众号"


def test_pushed_messages_show_up(demo, emulator):
    emulator.user(openid=GREEN)  # a follower (`xinma serve --demo` makes every demo person one)
    oa = wechat.official_account(demo.app.config, MemoryTokenStore())
    oa.send_custom_text(GREEN, "您的荣誉申报已通过")
    oa.send_template(GREEN, "TPL-notice", {"first": {"value": "信用信息变更"}, "keyword1": {"value": "绿码"}},
                     url="https://xinma.example/notices/1")
    oa.close()
    entries = inbox(demo, GREEN)["entries"]
    assert entries[0] | {"id": 0, "at": 0} == {"side": "bot", "type": "text", "text": "您的荣誉申报已通过",
                                               "pushed": "客服消息", "id": 0, "at": 0}
    assert entries[1]["type"] == "notice" and entries[1]["pushed"] == "模板消息"
    assert entries[1]["fields"] == [["first", "信用信息变更"], ["keyword1", "绿码"]]
    assert entries[1]["url"] == "https://xinma.example/notices/1"
    assert demo.call("DELETE", f"/demo/chat/inbox/{GREEN}").status_code == 200
    assert inbox(demo, GREEN)["entries"] == []


@pytest.mark.parametrize("body", [
    pytest.param({"openid": "o b", "message": {"type": "text", "content": "帮助"}}, id="bad-openid"),
    pytest.param({"openid": "x" * 65, "message": {"type": "text", "content": "帮助"}}, id="long-openid"),
    pytest.param({"openid": GREEN, "message": {"type": "text", "content": " "}}, id="blank"),
    pytest.param({"openid": GREEN, "message": {"type": "text", "content": "字" * 601}}, id="too-long"),
    pytest.param({"openid": GREEN, "message": {"type": "voice"}}, id="voice"),
    pytest.param({"openid": GREEN, "message": {"type": "event", "event": "TEMPLATESENDJOBFINISH"}}, id="not-a-user's"),
    pytest.param({"openid": GREEN, "message": {"type": "event", "event": "CLICK", "key": 7}}, id="key-not-text"),
    pytest.param({"openid": GREEN, "message": "帮助"}, id="message-not-object"),
])
def test_what_a_wechat_user_cannot_send_is_refused(page_client, emulator, body):
    r = page_client.post("/demo/chat/send", json=body)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "validation_failed"
    assert emulator.inbox(GREEN) == []  # nothing was delivered


def test_bad_requests_to_the_page(page_client):
    r = page_client.post("/demo/chat/send", data="not json", content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_request"
    assert page_client.get("/demo/chat/inbox/o%20b").status_code == 422
    assert page_client.get("/demo/chat/qrcode").status_code == 404


def test_display_of_what_the_emulator_records():
    assert display({"id": 1, "kind": "user", "xml": "<xml><MsgType>text</MsgType><Content>hi</Content></xml>"})[
        "text"] == "hi"
    assert display({"id": 2, "kind": "user", "xml": "<broken"})["text"] == "（无法显示的消息）"
    news = display({"id": 3, "kind": "reply", "reply": {"MsgType": "news", "Articles": {"item": {
        "Title": "我的信用码", "Description": "绿码", "Url": "https://x", "PicUrl": ""}}}})
    assert news["type"] == "cards" and news["cards"][0]["title"] == "我的信用码"
    sub = display({"id": 4, "kind": "subscribe", "template_id": "T", "data": {"thing1": {"value": "到期"}},
                   "page": "pages/notices/index"})
    assert sub["pushed"] == "订阅消息" and sub["url"] == "pages/notices/index"
    assert display({"id": 5, "kind": "reply", "reply": {"MsgType": "music"}}) is None


def test_seeding_the_people_is_idempotent(demo):
    with demo.session() as s:
        assert seed_people(s, demo.app.config["WECHAT_APPID"]) == 0  # bound when the demo was seeded
        assert seed_people(s, None) == 0


# --- the page itself, in a browser ----------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def page(demo):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-wqy-microhei (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"])
        context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
        tab = context.new_page()
        tab.set_default_timeout(20000)
        tab.errors = []
        tab.on("pageerror", lambda e: tab.errors.append(str(e)))
        tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        tab.goto(demo.base + "/demo/chat")
        yield tab
        browser.close()


def last_bot_text(page) -> str:
    return page.locator(".msg.bot .bubble").last.inner_text()


@pytest.mark.slow
def test_in_a_browser_the_story_of_the_demo(page):
    # 陈志明 presses 我的信用码: the code image the bot uploaded, shown from the emulator's media store.
    page.click("[data-click=code]")
    image = page.locator(".msg.bot img.image").last
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())

    # A new WeChat user follows, then scans the West Lake admin's clerk invite.
    page.select_option("#person", "__new")
    page.click("#follow")
    page.wait_for_function("() => document.querySelector('#messages').innerText.includes('欢迎关注')")
    page.click("#invite")
    page.locator("#invite-qr").wait_for()
    page.click("#invite-scan")
    page.wait_for_function("() => document.querySelector('#messages').innerText.includes('的核销员')")

    # and scans 陈志明's code from the menu: the verdict, in one glance.
    page.select_option("#holder", "citizen-green")
    page.click("#holder-code")
    page.wait_for_function("() => document.querySelector('#holder-token').value.startsWith('XM')")
    page.click("#holder-scan")
    page.wait_for_function("() => document.querySelector('#messages').innerText.includes('核销成功')")
    assert "陈*明（绿码）" in last_bot_text(page)

    # Typing works too, through the keyboard.
    page.click("#toggle")
    page.fill("#text", "核销")
    page.press("#text", "Enter")
    page.wait_for_function("() => document.querySelector('#messages').innerText.includes('（当前）')")
    assert page.errors == []
