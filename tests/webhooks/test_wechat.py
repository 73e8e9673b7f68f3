"""The WeChat webhook against hand-built XML of every message and event we handle, in plaintext,
compatible and safe (AES) mode: signatures, retries, and every kind of bad input."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import xmltodict
from click.testing import CliRunner
from sqlalchemy.orm import Session

from handlers import migrate, timeutil, wechat_users
from handlers.db import make_engine
from handlers.models import WeChatBindingCode, WeChatInbound
from tests.conftest import count, create_account
from tests.wechat_webhook_support import MODES, WECHAT_SETTINGS, event, fields, post, text
from webhooks import wechat as wechat_webhook
from webhooks.cli import main
from webhooks.wechat import _render
from webhooks.wechat_emulator import DEMO_TOKEN, build_xml, signature

OPENID = "oTestUser0000000000000000001"


@pytest.fixture
def app(make_app):
    return make_app(**WECHAT_SETTINGS)  # no secret: the webhook answers, nothing calls WeChat


def test_handshake_answers_the_echostr_only_when_signed(client):
    ts, nonce = "1700000000", "42"
    good = {"signature": signature(DEMO_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "abc123"}
    r = client.get("/webhooks/wechat", query_string=good)
    assert r.status_code == 200 and r.get_data(as_text=True) == "abc123"
    assert client.get("/webhooks/wechat", query_string=good | {"signature": "0" * 40}).status_code == 403
    assert client.get("/webhooks/wechat", query_string={"echostr": "x"}).status_code == 403


def test_without_a_token_the_webhook_is_off(make_app):
    r = make_app().test_client().get("/webhooks/wechat", query_string={"echostr": "x"})
    assert r.status_code == 404


HELP_WORDS = "帮助"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("xml, expect", [
    pytest.param(lambda: text(OPENID, "帮助"), "可用指令|以下指令", id="text-help"),
    pytest.param(lambda: text(OPENID, "HELP"), "以下指令", id="text-alias"),
    pytest.param(lambda: text(OPENID, "随便说点什么"), "没有听懂", id="text-unknown"),
    pytest.param(lambda: text(OPENID, "信用码"), "绑定信码账号", id="text-code-unbound"),
    pytest.param(lambda: text(OPENID, "我的权益"), "绑定信码账号", id="text-incentives-unbound"),
    pytest.param(lambda: build_xml(fields(OPENID, "image", PicUrl="http://x/1.jpg", MediaId="m1")), "文字指令",
                 id="image"),
    pytest.param(lambda: build_xml(fields(OPENID, "voice", MediaId="m1", Format="amr")), "文字指令", id="voice"),
    pytest.param(lambda: build_xml(fields(OPENID, "location", Location_X="23.1", Location_Y="114.4", Scale="15",
                                          Label="惠州")), "文字指令", id="location-message"),
    pytest.param(lambda: build_xml(fields(OPENID, "hologram", Content="?")), "文字指令", id="unknown-type"),
    pytest.param(lambda: event(OPENID, "subscribe"), "欢迎关注", id="subscribe"),
    pytest.param(lambda: event(OPENID, "subscribe", EventKey="qrscene_poster", Ticket="t"), "欢迎关注",
                 id="subscribe-scene"),
    pytest.param(lambda: event(OPENID, "SCAN", EventKey="poster", Ticket="t"), None, id="scan"),
    pytest.param(lambda: event(OPENID, "unsubscribe"), None, id="unsubscribe"),
    pytest.param(lambda: event(OPENID, "CLICK", EventKey="help"), "以下指令", id="click"),
    pytest.param(lambda: event(OPENID, "CLICK", EventKey="incentives"), "绑定信码账号", id="click-incentives"),
    pytest.param(lambda: event(OPENID, "VIEW", EventKey="https://example.org/"), None, id="view"),
    pytest.param(lambda: event(OPENID, "scancode_waitmsg", EventKey="scan",
                               ScanCodeInfo={"ScanType": "qrcode", "ScanResult": "XM1.abc"}), "不是核销员",
                 id="scancode-not-a-clerk"),
    pytest.param(lambda: event(OPENID, "TEMPLATESENDJOBFINISH", MsgID=7, Status="success"), None,
                 id="template-finish"),
    pytest.param(lambda: event(OPENID, "LOCATION", Latitude="23.1", Longitude="114.4", Precision="30"), None,
                 id="location-event"),
    pytest.param(lambda: event(OPENID, "made_up_event"), None, id="unknown-event"),
])
def test_every_message_type_in_every_mode(client, mode, xml, expect):
    r, reply, encrypted = post(client, xml(), mode)
    assert r.status_code == 200, r.get_data(as_text=True)
    if expect is None:
        assert reply is None and r.get_data(as_text=True) == "success"
        return
    assert encrypted == (mode != "plain")
    assert reply["MsgType"] == "text" and reply["ToUserName"] == OPENID and reply["FromUserName"] == "gh_xinma_test"
    assert any(word in reply["Content"] for word in expect.split("|"))


@pytest.mark.parametrize("mode", MODES)
def test_a_retry_gets_the_same_reply_and_is_stored_once(client, db, mode):
    before = count(db, WeChatInbound)
    xml = text(OPENID, "随便", msg_id=998877665544)
    first = post(client, xml, mode)
    again = post(client, xml, mode)
    assert first[1] == again[1] and first[1]["Content"]
    assert count(db, WeChatInbound) == before + 1
    # Events have no MsgId: the sender and CreateTime identify a retry.
    ev = event(OPENID, "subscribe", create_time=1_800_000_000)
    assert post(client, ev, mode)[1] == post(client, ev, mode)[1]
    assert count(db, WeChatInbound) == before + 2


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_or_missing_signature_is_refused(client, mode):
    xml = text(OPENID, "帮助")
    assert post(client, xml, mode, token="not-our-token")[0].status_code == 403
    assert post(client, xml, mode, params={"signature": ""})[0].status_code == 403
    if mode != "plain":
        assert post(client, xml, mode, params={"msg_signature": "0" * 40})[0].status_code == 403
        assert post(client, xml, mode, params={"msg_signature": ""})[0].status_code == 403


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""
EXTERNAL = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body, status", [
    pytest.param("<xml><MsgType>text</MsgType", 400, id="truncated"),
    pytest.param("not xml at all", 400, id="not-xml"),
    pytest.param("<xml></xml>", 400, id="empty-xml"),
    pytest.param("<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName></xml>", 400, id="no-type"),
    pytest.param(BILLION_LAUGHS, 400, id="billion-laughs"),
    pytest.param(EXTERNAL, 400, id="external-entity"),
    pytest.param("<!doctype xml><xml/>", 400, id="doctype-lowercase"),
])
def test_malformed_and_entity_bodies_get_a_clean_400(client, db, mode, body, status):
    if mode == "compat" and not body.rstrip().endswith("</xml>"):
        mode = "aes"  # compat appends to the XML; a body that is not XML can only travel encrypted
    before = count(db, WeChatInbound)
    r = post(client, body, mode)[0]
    assert r.status_code == status
    assert count(db, WeChatInbound) == before


def test_entities_outside_the_encryption_are_refused_too(client):
    ts, nonce = "1700000000", "7"
    query = {"signature": signature(DEMO_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    r = client.post("/webhooks/wechat", query_string=query | {"encrypt_type": "aes", "msg_signature": "x" * 40},
                    data=BILLION_LAUGHS.encode(), content_type="text/xml")
    assert r.status_code == 400


def test_garbage_ciphertext_is_a_400(client):
    ts, nonce = "1700000000", "7"
    garbage = "bm90IHJlYWxseSBjaXBoZXJ0ZXh0"
    query = {"signature": signature(DEMO_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
             "msg_signature": signature(DEMO_TOKEN, ts, nonce, garbage)}
    r = client.post("/webhooks/wechat", query_string=query, data=build_xml({"Encrypt": garbage}).encode(),
                    content_type="text/xml")
    assert r.status_code == 400


def test_a_body_over_64_kib_is_refused_unread(client):
    r = post(client, text(OPENID, "x" * (65 * 1024)))[0]
    assert r.status_code == 413


def test_reply_text_with_cdata_end_survives():
    class Msg:
        source, target, time = OPENID, "gh", int(time.time())
    xml = _render(__import__("bot").Text("a]]>b<c>&"), Msg())
    assert xmltodict.parse(xml)["xml"]["Content"] == "a]]>b<c>&"


def test_two_codes_scanned_within_one_second_are_two_scans(client, db):
    at = 1_800_000_100
    first = event(OPENID, "scancode_waitmsg", EventKey="scan", create_time=at,
                  ScanCodeInfo={"ScanType": "qrcode", "ScanResult": "XM1.first"})
    second = event(OPENID, "scancode_waitmsg", EventKey="scan", create_time=at,
                   ScanCodeInfo={"ScanType": "qrcode", "ScanResult": "XM1.second"})
    before = count(db, WeChatInbound)
    post(client, first), post(client, first), post(client, second)
    assert count(db, WeChatInbound) == before + 2  # the retry of the first is not a third


# --- pruning what is kept for WeChat's retries ---------------------------------------------------------

def _old_and_new(db, *, hours: float = 25) -> tuple[str, str]:
    now = timeutil.now()
    old, new = f"msg:old-{time.time_ns()}", f"msg:new-{time.time_ns()}"
    db.add_all([WeChatInbound(key=old, reply={"type": "none"}, created_at=now - timedelta(hours=hours)),
                WeChatInbound(key=new, reply={"type": "none"}, created_at=now - timedelta(hours=1))])
    db.flush()
    return old, new


def test_prune_deletes_what_is_past_the_retry_window_only(db):
    account = create_account(db)
    old, new = _old_and_new(db)
    now = timeutil.now()
    db.add_all([WeChatBindingCode(code_hash="a" * 64, account_id=account.id, created_at=now - timedelta(days=2),
                                  expires_at=now - timedelta(days=2) + timedelta(minutes=10)),
                WeChatBindingCode(code_hash="b" * 64, account_id=account.id, created_at=now,
                                  expires_at=now + timedelta(minutes=10))])
    db.flush()
    assert wechat_users.prune(db) == (1, 1)
    assert db.get(WeChatInbound, old) is None and db.get(WeChatInbound, new) is not None
    assert [c.code_hash for c in db.query(WeChatBindingCode).filter_by(account_id=account.id)] == ["b" * 64]
    assert wechat_users.prune(db, keep=timedelta(minutes=30)) == (1, 0)  # a shorter window reaches further
    assert db.get(WeChatInbound, new) is None


def test_the_webhook_prunes_now_and_then(client, db, monkeypatch):
    old, new = _old_and_new(db)
    post(client, text(OPENID, "帮助"))
    assert db.get(WeChatInbound, old) is None and db.get(WeChatInbound, new) is not None
    again, _ = _old_and_new(db)
    post(client, text(OPENID, "帮助"))
    assert db.get(WeChatInbound, again) is not None  # not on every message: once per PRUNE_EVERY
    monkeypatch.setattr(wechat_webhook, "PRUNE_EVERY", 0.0)
    post(client, text(OPENID, "帮助"))
    assert db.get(WeChatInbound, again) is None


def test_the_prune_window_is_a_setting(make_app, db):
    client = make_app(**WECHAT_SETTINGS, WECHAT_INBOUND_KEEP_HOURS=48).test_client()
    old, _ = _old_and_new(db, hours=25)
    older, _ = _old_and_new(db, hours=49)
    post(client, text(OPENID, "帮助"))
    assert db.get(WeChatInbound, old) is not None and db.get(WeChatInbound, older) is None


def test_xinma_wechat_prune(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'prune.sqlite3'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        _, new = _old_and_new(s)
    monkeypatch.setenv("XINMA_DATABASE_URL", url)
    monkeypatch.setenv("XINMA_INSTANCE_PATH", str(tmp_path / "instance"))
    result = CliRunner().invoke(main, ["wechat", "prune"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 inbound messages and 0 binding codes" in result.output
    with Session(engine) as s:
        assert [k for (k,) in s.query(WeChatInbound.key)] == [new]
    result = CliRunner().invoke(main, ["wechat", "prune", "--keep-hours", "0.5"])
    assert "pruned 1 inbound messages" in result.output
    engine.dispose()
