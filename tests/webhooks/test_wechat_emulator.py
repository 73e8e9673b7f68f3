"""The WeChat emulator on a real port: WeChat's errcodes, its own API (faults, inbox, stats) and playing
WeChat's side against a tiny webhook that checks signatures and decrypts exactly as ours will have to."""
from __future__ import annotations

import time

import pytest
import requests
import xmltodict
from click.testing import CliRunner
from flask import Flask, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from tests.wechat_support import emulator, emulator_server, serve_in_thread  # noqa: F401 - fixtures
from webhooks.cli import main


def wx(emulator, method: str, path: str, **kwargs) -> dict:
    r = emulator.http.request(method, emulator.base + path, timeout=10, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()


def token_for(emulator, appid=None, secret=None) -> str:
    cfg = emulator.config
    return wx(emulator, "GET", "/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": appid or cfg.appid, "secret": secret or cfg.secret})["access_token"]


# --- WeChat's API ----------------------------------------------------------------------------------

@pytest.mark.parametrize("params, errcode", [
    ({"appid": "wx-unknown"}, 40013),
    ({"secret": "wrong"}, 40125),
    ({"grant_type": "password"}, 40002),
])
def test_token_errors(emulator, params, errcode):
    cfg = emulator.config
    query = {"grant_type": "client_credential", "appid": cfg.appid, "secret": cfg.secret, **params}
    body = wx(emulator, "GET", "/cgi-bin/token", params=query)
    assert body["errcode"] == errcode and body["errmsg"]
    assert emulator.fetches(cfg.appid) == 0


def test_tokens_expire_and_are_superseded_like_wechats(emulator):
    emulator.post("/_emulator/config", {"token_grace": 0})
    send = {"touser": emulator.user(), "msgtype": "text", "text": {"content": "x"}}

    def errcode(token):
        params = {"access_token": token} if token else {}
        return wx(emulator, "POST", "/cgi-bin/message/custom/send", params=params, json=send)["errcode"]

    old = token_for(emulator)
    assert errcode(old) == 0
    assert errcode(None) == 41001
    assert errcode("made-up") == 40001
    new = token_for(emulator)
    assert errcode(old) == 40001  # superseded, grace over
    assert errcode(new) == 0
    emulator.post("/_emulator/tokens/expire", {})
    assert errcode(new) == 42001
    assert emulator.fetches(emulator.config.appid) == 2


def test_a_superseded_token_works_during_the_grace_period(emulator):
    old = token_for(emulator)
    token_for(emulator)
    body = wx(emulator, "POST", "/cgi-bin/menu/create", params={"access_token": old},
              json={"button": [{"type": "click", "name": "帮助", "key": "help"}]})
    assert body["errcode"] == 0


def test_bad_bodies_and_unknown_users(emulator):
    token = token_for(emulator)
    follower = emulator.user()
    url = "/cgi-bin/message/custom/send"
    assert wx(emulator, "POST", url, params={"access_token": token}, data=b"{not json")["errcode"] == 47001
    assert wx(emulator, "POST", url, params={"access_token": token},
              json={"touser": follower, "msgtype": "text"})["errcode"] == 47001
    assert wx(emulator, "POST", url, params={"access_token": token},
              json={"touser": "o-stranger", "msgtype": "text", "text": {"content": "x"}})["errcode"] == 40003
    assert wx(emulator, "POST", "/cgi-bin/media/upload", params={"access_token": token, "type": "image"})[
        "errcode"] == 41005
    assert wx(emulator, "POST", "/cgi-bin/message/template/send", params={"access_token": token},
              json={"touser": follower, "data": {}})["errcode"] == 40037
    assert wx(emulator, "POST", "/cgi-bin/qrcode/create", params={"access_token": token},
              json={"action_name": "QR_SCENE"})["errcode"] == 40053


def test_login_codes_are_single_use_and_belong_to_their_app(emulator):
    cfg = emulator.config
    login = emulator.post("/_emulator/login-code", {"openid": "o-person-1"})
    assert login["openid"] == "o-person-1" and login["appid"] == cfg.miniprogram_appid

    def exchange(code, appid=cfg.miniprogram_appid, secret=cfg.miniprogram_secret):
        return wx(emulator, "GET", "/sns/jscode2session", params={
            "appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"})

    assert exchange(login["code"], cfg.appid, cfg.secret)["errcode"] == 40029  # another app's code
    ok = exchange(login["code"])
    assert ok["openid"] == "o-person-1" and ok["session_key"] and "errcode" not in ok
    assert exchange(login["code"])["errcode"] == 40163
    assert exchange("bogus")["errcode"] == 40029
    assert exchange(login["code"], secret="wrong")["errcode"] == 40125


# --- the emulator's own API ------------------------------------------------------------------------

def test_faults_fire_the_given_number_of_times(emulator):
    follower, token = emulator.user(), token_for(emulator)
    emulator.fault("cgi-bin/message/custom/send", times=2, errcode=45009)
    emulator.fault("*", status=503)
    assert len(emulator.get("/_emulator/faults")) == 2
    send = {"touser": follower, "msgtype": "text", "text": {"content": "x"}}
    url = emulator.base + "/cgi-bin/message/custom/send"
    codes = [requests.post(url, params={"access_token": token}, json=send, timeout=10) for _ in range(4)]
    assert [r.json()["errcode"] for r in codes[:2]] == [45009, 45009]
    assert codes[2].status_code == 503  # the wildcard, once
    assert codes[3].json()["errcode"] == 0
    assert emulator.get("/_emulator/faults") == []
    assert emulator.requests_to("cgi-bin/message/custom/send") == 4
    r = requests.post(emulator.base + "/_emulator/faults", json={"path": "x", "errcode": 1, "status": 500}, timeout=10)
    assert r.status_code == 400


def test_a_timeout_fault_delays_the_answer(emulator):
    emulator.fault("cgi-bin/token", timeout=0.5)
    started = time.monotonic()
    token_for(emulator)
    assert time.monotonic() - started >= 0.5


def test_inbox_lists_what_was_sent_and_can_be_cleared(emulator):
    follower, token = emulator.user(), token_for(emulator)
    for text in ("一", "二"):
        wx(emulator, "POST", "/cgi-bin/message/custom/send", params={"access_token": token},
           json={"touser": follower, "msgtype": "text", "text": {"content": text}})
    items = emulator.inbox(follower)
    assert [i["text"]["content"] for i in items] == ["一", "二"]
    assert [i["text"]["content"] for i in emulator.get(f"/_emulator/inbox/{follower}", after=items[0]["id"])] == ["二"]
    assert follower in emulator.get("/_emulator/inbox")
    requests.delete(f"{emulator.base}/_emulator/inbox/{follower}", timeout=10)
    assert emulator.inbox(follower) == []


def test_own_api_refuses_webhooks_off_loopback(emulator):
    r = requests.post(emulator.base + "/_emulator/deliver",
                      json={"openid": "o1", "message": {"type": "text", "content": "x"},
                            "webhook": "http://example.org/hook"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(emulator.base + "/_emulator/config", json={"webhook_url": "http://10.0.0.1/"}, timeout=10)
    assert r.status_code == 400


def test_cli_refuses_to_serve_off_loopback():
    result = CliRunner().invoke(main, ["wechat-emulator", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code != 0 and "loopback" in result.output


# --- playing WeChat's side ---------------------------------------------------------------------------

@pytest.fixture
def webhook(emulator):
    """A tiny webhook that does what ours must: check the signature, decrypt, parse, echo, re-encrypt."""
    cfg = emulator.config
    seen: list = []
    app = Flask("tiny-webhook")

    @app.route("/hook", methods=["GET", "POST"])
    def hook():
        a = request.args
        check_signature(cfg.token, a["signature"], a["timestamp"], a["nonce"])
        if request.method == "GET":
            return a["echostr"]
        body = request.get_data(as_text=True)
        crypto = None
        if a.get("encrypt_type") == "aes":
            crypto = WeChatCrypto(cfg.token, cfg.aes_key, cfg.appid)
            body = crypto.decrypt_message(body, a["msg_signature"], a["timestamp"], a["nonce"])
        msg = parse_message(body)
        seen.append((dict(a), msg))
        if msg.type != "text":
            return "success"
        # wechatpy puts text into CDATA as it is: a "]]>" in it must be split, or the reply is broken XML.
        content = ("回声: " + msg.content).replace("]]>", "]]]]><![CDATA[>")
        reply = TextReply(message=msg, content=content).render()
        return crypto.encrypt_message(reply, a["nonce"], a["timestamp"]) if crypto else reply

    running = serve_in_thread(app)
    emulator.post("/_emulator/config", {"webhook_url": running.base + "/hook"})
    yield seen
    running.stop()


@pytest.mark.parametrize("mode", ["plain", "compat", "aes"])
def test_deliver_signs_encrypts_and_decrypts_the_reply(emulator, webhook, mode):
    out = emulator.post("/_emulator/deliver", {"openid": "o-reader", "mode": mode,
                                               "message": {"type": "text", "content": "信用码 ]]> <b>"}})
    assert out["status"] == 200 and "error" not in out
    assert out["encrypted"] is (mode != "plain")
    assert out["reply"]["MsgType"] == "text" and out["reply"]["Content"] == "回声: 信用码 ]]> <b>"
    assert out["reply"]["ToUserName"] == "o-reader"
    [(params, msg)] = webhook
    assert msg.source == "o-reader" and msg.target == emulator.config.original_id
    assert params["openid"] == "o-reader"
    assert ("msg_signature" in params) is (mode != "plain")
    kinds = [i["kind"] for i in emulator.inbox("o-reader")]
    assert kinds == ["user", "reply"]


def test_deliver_with_encrypt_true_is_safe_mode(emulator, webhook):
    out = emulator.post("/_emulator/deliver", {"openid": "o-reader", "encrypt": True,
                                               "message": {"type": "text", "content": "hi"}})
    assert out["encrypted"] and out["reply"]["Content"] == "回声: hi"
    assert webhook[0][0]["encrypt_type"] == "aes"


def test_deliver_events_and_repeats(emulator, webhook):
    token = token_for(emulator)
    qr = wx(emulator, "POST", "/cgi-bin/qrcode/create", params={"access_token": token},
            json={"expire_seconds": 60, "action_name": "QR_STR_SCENE",
                  "action_info": {"scene": {"scene_str": "invite:7"}}})
    out = emulator.post("/_emulator/deliver", {"openid": "o-clerk", "encrypt": True, "message": {
        "type": "event", "event": "subscribe", "ticket": qr["ticket"]}})
    assert out["status"] == 200 and out["reply"] is None and out["body"] == "success"
    emulator.post("/_emulator/deliver", {"openid": "o-clerk", "message": {
        "type": "event", "event": "scancode_waitmsg", "key": "scan", "scan_result": "XM1:abc"}})
    emulator.post("/_emulator/deliver", {"openid": "o-clerk", "times": 3,
                                         "message": {"type": "text", "content": "again", "msg_id": 42}})
    subscribe, scan, *texts = [m for _, m in webhook]
    assert subscribe.event == "subscribe_scan" and subscribe.scene_id == "invite:7" and subscribe.ticket == qr["ticket"]
    assert scan.event == "scancode_waitmsg" and scan.scan_result == "XM1:abc" and scan.key == "scan"
    assert [(m.id, m.content) for m in texts] == [(42, "again")] * 3  # WeChat's retries: same MsgId


def test_deliver_raw_xml_and_handshake(emulator, webhook):
    xml = ("<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[o-raw]]></FromUserName>"
           "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           "<Content><![CDATA[raw]]></Content><MsgId>7</MsgId></xml>")
    out = emulator.post("/_emulator/deliver", {"openid": "o-raw", "xml": xml})
    assert xmltodict.parse(out["reply_xml"])["xml"]["Content"] == "回声: raw"
    assert emulator.post("/_emulator/handshake", {})["ok"] is True


def test_deliver_reports_a_webhook_that_is_down(emulator):
    emulator.post("/_emulator/config", {"webhook_url": "http://127.0.0.1:9/nothing"})
    out = emulator.post("/_emulator/deliver", {"openid": "o1", "message": {"type": "text", "content": "x"}})
    assert out["status"] is None and out["error"]
