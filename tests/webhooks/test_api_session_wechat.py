"""Mini-program login on POST /api/v1/session {"code"}, against the emulator; password login unchanged."""
from __future__ import annotations

import pytest

from handlers.models import Account, Status, WeChatIdentity
from tests.conftest import count, create_account
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures
from tests.wechat_webhook_support import with_emulator


@pytest.fixture
def app(make_app, emulator):
    return with_emulator(make_app, emulator)


def code_for(emulator, openid=None) -> dict:
    return emulator.post("/_emulator/login-code", {"openid": openid})


def test_first_login_creates_a_pending_unbound_account_and_the_next_finds_it(client, db, emulator):
    wx = code_for(emulator)
    r = client.post("/api/v1/session", json={"code": wx["code"]})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["token"] and body["account"]["status"] == "pending" and body["account"]["subject"] is None
    assert "session_key" not in r.get_data(as_text=True)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.get_json()["id"] == body["account"]["id"]

    again = client.post("/api/v1/session", json={"code": code_for(emulator, wx["openid"])["code"]})
    assert again.status_code == 201 and again.get_json()["account"]["id"] == body["account"]["id"]
    ident = db.query(WeChatIdentity).filter_by(openid=wx["openid"]).one()
    assert ident.appid == emulator.config.miniprogram_appid and ident.account.status == Status.pending


@pytest.mark.parametrize("reuse, errcode", [(True, 40163), (False, 40029)])
def test_a_bad_or_reused_code_is_401_with_wechats_errcode(client, db, emulator, reuse, errcode):
    code = code_for(emulator)["code"]
    if reuse:
        assert client.post("/api/v1/session", json={"code": code}).status_code == 201
    else:
        code = "made-up-code"
    accounts_before = count(db, Account)
    r = client.post("/api/v1/session", json={"code": code})
    assert r.status_code == 401
    err = r.get_json()["error"]
    assert err["code"] == "wechat_login_failed" and err["detail"] == {"errcode": errcode}
    assert count(db, Account) == accounts_before


def test_wechat_unreachable_is_503(client, emulator):
    emulator.fault("sns/jscode2session", status=502)
    r = client.post("/api/v1/session", json={"code": code_for(emulator)["code"]})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "wechat_unavailable"


def test_password_login_still_works_and_the_shapes_do_not_mix(client, db):
    create_account(db, "pat", password="correct horse battery")
    ok = client.post("/api/v1/session", json={"login": "pat", "password": "correct horse battery"})
    assert ok.status_code == 201
    assert client.post("/api/v1/session", json={"login": "pat", "password": "wrong one!"}).status_code == 401
    mixed = client.post("/api/v1/session", json={"login": "pat", "password": "x" * 9, "code": "abc"})
    assert mixed.status_code == 422
    assert client.post("/api/v1/session", json={"login": "pat"}).status_code == 422
    assert client.post("/api/v1/session", json={}).status_code == 422


def test_the_openapi_documents_both_shapes(client):
    op = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/session"]["post"]
    shapes = op["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [s["required"] for s in shapes] == [["login", "password"], ["code"]]
    assert "503" in op["responses"]
