"""The bot end to end: WeChat's XML into the webhook (Flask test client), every outbound call to the running
emulator through handlers/wechat.py: codes as images, measures, honours, notices, and a clerk bound through an
invite QR who scans a citizen's code from the menu."""
from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from handlers import timeutil, wechat_users
from handlers.models import ClerkInvite, Notice, Redemption, Role, Status, WeChatBindingCode, WeChatIdentity
from tests.conftest import (
    add_record, auth_headers, count, create_account, create_incentive, create_organisation, create_subject,
    issue_token,
)
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures
from tests.wechat_webhook_support import MODES, event, post, text, with_emulator
from webhooks.cli import main

CITIZEN = "oCitizen000000000000000000001"
CLERK = "oClerk00000000000000000000001"


@pytest.fixture
def app(make_app, emulator):
    return with_emulator(make_app, emulator, WECHAT_CODE_URL="https://xinma.example/m/code")


@pytest.fixture
def citizen_openid(db, app):
    """A citizen (green: a star volunteer) whose official-account openid is bound to their account."""
    subject = create_subject(db, name="陈志明")
    add_record(db, subject, kind="honour")
    account = create_account(db, "chen", subject=subject)
    wechat_users.bind(db, account, app.config["WECHAT_APPID"], CITIZEN)
    db.flush()
    return CITIZEN


def say(client, openid, content, mode="plain"):
    r, reply, _ = post(client, text(openid, content), mode)
    assert r.status_code == 200, r.get_data(as_text=True)
    return reply


@pytest.mark.parametrize("mode", MODES)
def test_code_is_an_uploaded_image(client, emulator, citizen_openid, mode):
    reply = say(client, citizen_openid, "信用码", mode)
    assert reply["MsgType"] == "image"
    png = emulator.http.get(f"{emulator.base}/_emulator/media/{reply['Image']['MediaId']}", timeout=10)
    assert png.content.startswith(b"\x89PNG")
    assert say(client, citizen_openid, "code")["MsgType"] == "image"  # the English alias


def test_code_falls_back_to_a_link_card_when_the_upload_fails(client, emulator, citizen_openid):
    emulator.fault("cgi-bin/media/upload", status=502)
    reply = say(client, citizen_openid, "信用码")
    assert reply["MsgType"] == "news"
    article = reply["Articles"]["item"]
    assert article["Url"] == "https://xinma.example/m/code" and "绿码" in article["Description"]


def test_incentives_honours_and_notices(client, db, citizen_openid):
    org = create_organisation(db)
    create_incentive(db, org, title="西湖观光车免费乘坐")
    create_incentive(db, org, title="红码专属", eligible_colours=["red"])
    listing = say(client, citizen_openid, "我的权益")["Content"]
    assert "西湖观光车免费乘坐" in listing and "红码专属" not in listing and "绿码" in listing
    assert "今日还可使用1次" in listing
    clicked = post(client, event(citizen_openid, "CLICK", EventKey="incentives"))[1]["Content"]
    assert clicked == listing
    assert "星级志愿者" in say(client, citizen_openid, "荣誉")["Content"]
    assert "暂无消息" in say(client, citizen_openid, "notices")["Content"]


def test_an_unbound_user_is_told_how_to_bind(client):
    for words in ("信用码", "荣誉", "消息", "我的权益"):
        assert "小程序" in say(client, "oStranger00000000000000000001", words)["Content"]
    welcome = post(client, event("oStranger00000000000000000001", "subscribe"))[1]["Content"]
    assert "欢迎关注" in welcome and "实名绑定" in welcome


@pytest.fixture
def org_admin(db):
    admin = create_account(db, "org-admin", role=None)
    org = create_organisation(db, admin=admin)
    return admin, org


def invite_scene(client, db, emulator, admin, org) -> str:
    r = client.post(f"/api/v1/organisations/{org.id}/clerk-invites", headers=auth_headers(db, admin))
    assert r.status_code == 201, r.get_json()
    ticket = r.get_json()["qrcode"]["ticket"]
    assert r.get_json()["qrcode"]["image_url"].startswith(emulator.base)
    return emulator.get(f"/_emulator/qrcodes/{ticket}")["scene"]


@pytest.mark.parametrize("mode", MODES)
def test_clerk_invite_bind_then_scan_a_citizens_code_from_the_menu(client, db, emulator, keyring, org_admin,
                                                                    citizen_openid, mode):
    admin, org = org_admin
    measure = create_incentive(db, org, title="图书免押金借阅", limit_count=2)
    scene = invite_scene(client, db, emulator, admin, org)

    bound = post(client, event(CLERK, "subscribe", EventKey="qrscene_" + scene, Ticket="t"), mode)[1]
    assert org.name in bound["Content"]
    clerk = db.query(WeChatIdentity).filter_by(openid=CLERK).one().account
    assert clerk.has_role(Role.clerk, organisation_id=org.id) and clerk.active

    citizen = db.query(WeChatIdentity).filter_by(openid=citizen_openid).one().account
    token = issue_token(db, keyring, citizen.subject)
    scan = event(CLERK, "scancode_waitmsg", EventKey="scan",
                 ScanCodeInfo={"ScanType": "qrcode", "ScanResult": token})
    before = count(db, Redemption)
    first = post(client, scan, mode)[1]["Content"]
    assert first.startswith("✅") and "陈*明" in first and "绿码" in first and "今日还可使用1次" in first
    assert measure.title in first
    assert post(client, scan, mode)[1]["Content"] == first  # WeChat's retry: same answer, nothing twice
    assert count(db, Redemption) == before + 1
    assert count(db, Notice) >= 1

    again = event(CLERK, "scancode_waitmsg", EventKey="scan", create_time=1_900_000_000,
                  ScanCodeInfo={"ScanType": "qrcode", "ScanResult": token})
    replayed = post(client, again, mode)[1]["Content"]
    assert replayed.startswith("❌") and "已使用过" in replayed and "陈*明" in replayed


def test_a_clerk_with_several_measures_chooses_one(client, db, emulator, keyring, org_admin, citizen_openid):
    admin, org = org_admin
    books = create_incentive(db, org, title="图书免押金借阅")
    bus = create_incentive(db, org, title="公交半价", eligible_colours=["blue"])
    scene = invite_scene(client, db, emulator, admin, org)
    post(client, event(CLERK, "SCAN", EventKey=scene, Ticket="t"))
    token = issue_token(db, keyring, db.query(WeChatIdentity).filter_by(openid=citizen_openid).one().account.subject)
    scan = event(CLERK, "scancode_waitmsg", EventKey="scan", ScanCodeInfo={"ScanType": "qrcode", "ScanResult": token})

    asked = post(client, scan)[1]["Content"]
    assert f"【{books.id}】" in asked and f"【{bus.id}】" in asked and "核销 编号" in asked
    assert count(db, Redemption) == 0
    assert str(bus.id) in say(client, CLERK, f"核销 {bus.id}")["Content"]
    assert "未找到" in say(client, CLERK, "核销 999999")["Content"]
    verdict = post(client, event(CLERK, "scancode_waitmsg", EventKey="scan", create_time=1_900_000_001,
                                 ScanCodeInfo={"ScanType": "qrcode", "ScanResult": token}))[1]["Content"]
    assert verdict.startswith("❌") and "公交半价" in verdict and "颜色不符合" in verdict
    assert "（当前）" in say(client, CLERK, "核销")["Content"]


def test_invites_are_single_use_and_expire(client, db, emulator, org_admin):
    admin, org = org_admin
    scene = invite_scene(client, db, emulator, admin, org)
    assert org.name in post(client, event(CLERK, "SCAN", EventKey=scene))[1]["Content"]
    other = "oSomeoneElse0000000000000001"
    assert "已被使用" in post(client, event(other, "subscribe", EventKey="qrscene_" + scene))[1]["Content"]
    assert db.query(WeChatIdentity).filter_by(openid=other).count() == 0  # refused: nothing half-done

    late = invite_scene(client, db, emulator, admin, org)
    for invite in db.query(ClerkInvite).filter(ClerkInvite.used_at.is_(None)):
        invite.expires_at = timeutil.now() - timedelta(seconds=1)
    db.flush()
    assert "已过期" in post(client, event(other, "SCAN", EventKey=late))[1]["Content"]
    assert "无效" in post(client, event(other, "SCAN", EventKey="ci_forged"))[1]["Content"]


def test_only_an_org_admin_may_invite(client, db, emulator, org_admin, citizen_openid):
    _, org = org_admin
    stranger = create_account(db, "stranger")
    r = client.post(f"/api/v1/organisations/{org.id}/clerk-invites", headers=auth_headers(db, stranger))
    assert r.status_code == 403
    assert client.post(f"/api/v1/organisations/{org.id}/clerk-invites").status_code == 401


def test_xinma_wechat_menu_creates_the_menu(emulator, monkeypatch, database_url):
    for name, value in {"WECHAT_APPID": emulator.config.appid, "WECHAT_SECRET": emulator.config.secret,
                        "WECHAT_API_BASE": emulator.base, "DATABASE_URL": database_url}.items():
        monkeypatch.setenv("XINMA_" + name, value)
    result = CliRunner().invoke(main, ["wechat", "menu", "--code-url", "https://xinma.example/m/code"])
    assert result.exit_code == 0, result.output
    buttons = emulator.get("/_emulator/menus")[emulator.config.appid]["button"]
    assert [(b["type"], b["name"]) for b in buttons] == [
        ("view", "我的信用码"), ("click", "我的权益"), ("scancode_waitmsg", "扫码核销")]
    assert CliRunner().invoke(main, ["wechat", "menu"]).exit_code != 0  # no page to open


# --- binding an official-account follower to an existing account -------------------------------------

NEWCOMER = "oNewcomer00000000000000000001"


def binding_code(client, db, account) -> str:
    r = client.post("/api/v1/me/wechat-binding-code", headers=auth_headers(db, account))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["expires_in"] == 600 and body["code"] in body["message"]
    return body["code"]


@pytest.fixture
def green(db):
    subject = create_subject(db, name="陈志明")
    add_record(db, subject, kind="honour")
    return create_account(db, "chen-unbound", subject=subject)


def identities(db, openid: str) -> list[WeChatIdentity]:
    return db.query(WeChatIdentity).filter_by(openid=openid).all()


@pytest.mark.parametrize("mode", MODES)
def test_a_follower_binds_an_existing_account_with_a_code(client, db, emulator, green, mode):
    assert "绑定码" in say(client, NEWCOMER, "信用码", mode)["Content"]  # told how to bind
    code = binding_code(client, db, green)
    assert len(code) == 8 and code.isalnum() and code.isupper()
    stored = db.query(WeChatBindingCode).filter_by(account_id=green.id).one()
    assert stored.code_hash != code and code not in stored.code_hash  # kept as a keyed hash only

    bound = say(client, NEWCOMER, f"绑定 {code}", mode)["Content"]
    assert "绑定成功" in bound and "陈*明" in bound
    assert [i.account_id for i in identities(db, NEWCOMER)] == [green.id]
    assert say(client, NEWCOMER, "信用码", mode)["MsgType"] == "image"
    assert "绑定成功" in say(client, NEWCOMER, f"绑定 {code}", mode)["Content"]  # sent again: still fine

    stranger = "oStranger00000000000000000002"
    assert "不正确" in say(client, stranger, f"绑定 {code}", mode)["Content"]  # single use
    assert identities(db, stranger) == []


def test_binding_codes_are_forgiving_to_type_and_strict_to_guess(client, db, emulator, green):
    code = binding_code(client, db, green)
    for wrong in ("12345678", "ZZZZZZZZ", "AB23", "绑定码"):
        assert "不正确" in say(client, NEWCOMER, f"绑定 {wrong}", "plain")["Content"]
    assert "绑定码" in say(client, NEWCOMER, "绑定")["Content"]  # no code: how to get one
    assert identities(db, NEWCOMER) == []
    typed = f"绑定{code[:4].lower()}-{code[4:].lower()}"  # no space, lower case, a dash
    assert "绑定成功" in say(client, NEWCOMER, typed)["Content"]


def test_asking_again_withdraws_the_earlier_code_and_codes_expire(client, db, emulator, green):
    first = binding_code(client, db, green)
    second = binding_code(client, db, green)
    assert "不正确" in say(client, NEWCOMER, f"绑定 {first}")["Content"]
    row = db.query(WeChatBindingCode).filter_by(account_id=green.id).one()
    row.expires_at = timeutil.now() - timedelta(seconds=1)
    db.flush()
    assert "已过期" in say(client, NEWCOMER, f"绑定 {second}")["Content"]
    assert identities(db, NEWCOMER) == []


def test_an_openid_bound_elsewhere_stays_and_the_code_stays_usable(client, db, emulator, green, citizen_openid):
    code = binding_code(client, db, green)
    refused = say(client, citizen_openid, f"绑定 {code}")["Content"]
    assert "已绑定另一个" in refused
    assert [i.account.login for i in identities(db, citizen_openid)] == ["chen"]
    assert "绑定成功" in say(client, NEWCOMER, f"绑定 {code}")["Content"]  # not used up by the refusal


def test_binding_a_new_wechat_unbinds_the_old_one(client, db, emulator, green):
    old = "oOldPhone00000000000000000001"
    wechat_users.bind(db, green, emulator.config.appid, old)
    db.flush()
    code = binding_code(client, db, green)
    assert "绑定成功" in say(client, NEWCOMER, f"绑定 {code}")["Content"]
    assert identities(db, old) == []  # a phone given away stops showing the code
    assert "绑定码" in say(client, old, "信用码")["Content"]


def test_only_a_signed_in_active_account_gets_a_binding_code(client, db):
    assert client.post("/api/v1/me/wechat-binding-code").status_code == 401
    pending = create_account(db, "waiting", status=Status.pending)
    r = client.post("/api/v1/me/wechat-binding-code", headers=auth_headers(db, pending))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "account_not_active"
    assert count(db, WeChatBindingCode) == 0


def test_binding_tries_are_limited_per_sender(make_app, emulator, db, green):
    client = with_emulator(make_app, emulator, RATELIMIT_ENABLED=True, RATELIMIT_WECHAT_BIND="2/10 minutes",
                           RATELIMIT_STORAGE_URI="memory://").test_client()
    code = binding_code(client, db, green)
    for _ in range(2):
        assert "不正确" in say(client, NEWCOMER, "绑定 ZZZZZZZZ")["Content"]
    assert "次数过多" in say(client, NEWCOMER, f"绑定 {code}")["Content"]  # even the right one, now
    assert identities(db, NEWCOMER) == []
    other = "oOtherSender0000000000000001"
    assert "绑定成功" in say(client, other, f"绑定 {code}")["Content"]  # counted per sender


def test_prefixes_and_words(client, citizen_openid):
    assert "以下指令" in say(client, citizen_openid, "帮助我")["Content"]  # a Chinese keyword runs on
    assert "没有听懂" in say(client, citizen_openid, "codes")["Content"]  # an English word must end
    assert say(client, citizen_openid, "code please")["MsgType"] == "image"
