"""POST /api/v1/accounts: registration over HTTP, and what bad input does (and does not) write."""
import json

import pytest

from handlers.models import Account, Subject

from ..conftest import auth_headers, count, create_subject, new_credit_code, new_resident_id, wrong_check_digit


def _body(**kw):
    return {"login": "wang.wu", "password": "long enough", "identifier": new_resident_id(), "name": "王五", **kw}


def test_register_then_sign_in_as_pending(client):
    r = client.post("/api/v1/accounts", json=_body())
    assert r.status_code == 201, r.json
    assert r.json["status"] == "pending"
    assert r.json["roles"] == [{"role": "citizen", "organisation_id": None, "subject_id": None}]
    assert r.json["subject"]["name"] == "王*"  # masked, even to its owner, as in /me
    s = client.post("/api/v1/session", json={"login": "wang.wu", "password": "long enough"})
    assert s.status_code == 201
    headers = {"Authorization": f"Bearer {s.json['token']}"}
    assert client.get("/api/v1/me", headers=headers).json["status"] == "pending"
    r = client.get("/api/v1/me/subject", headers=headers)
    assert r.status_code == 403 and r.json["error"]["code"] == "account_not_active"


def test_register_as_enterprise_agent(client):
    r = client.post("/api/v1/accounts", json=_body(identifier=new_credit_code(), name="惠州市某某有限公司"))
    assert r.status_code == 201
    assert r.json["roles"][0]["role"] == "enterprise_agent" and r.json["subject"] is None


def test_identifier_never_comes_back(client):
    rid = new_resident_id()
    r = client.post("/api/v1/accounts", json=_body(identifier=rid))
    assert rid not in r.get_data(as_text=True)


def _bad_cases():
    rid = new_resident_id()
    return [
        ("bad check digit", _body(identifier=wrong_check_digit(rid)), 422, "bad_check_digit"),
        ("bad identifier", _body(identifier="12345"), 422, "bad_identifier"),
        ("short login", _body(login="ab"), 422, "bad_login"),
        ("weak password", _body(password="1234567"), 422, "weak_password"),
        ("blank name", _body(name=" "), 422, "bad_name"),
        ("missing name", {k: v for k, v in _body().items() if k != "name"}, 422, "validation_failed"),
        ("wrong type", _body(login=123), 422, "validation_failed"),
        ("unknown field", _body(role="platform_admin"), 422, "validation_failed"),
    ]


@pytest.mark.parametrize("case, body, status, code", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_registrations_write_nothing(client, db, case, body, status, code):
    before = count(db, Account), count(db, Subject)
    r = client.post("/api/v1/accounts", json=body)
    assert (r.status_code, r.json["error"]["code"]) == (status, code)
    assert (count(db, Account), count(db, Subject)) == before


def test_wrong_content_type_and_oversized_body(client, db, app):
    before = count(db, Account)
    r = client.post("/api/v1/accounts", data="login=x", content_type="application/x-www-form-urlencoded")
    assert (r.status_code, r.json["error"]["code"]) == (415, "unsupported_media_type")
    big = json.dumps(_body(name="名" * app.config["MAX_CONTENT_LENGTH"]))
    r = client.post("/api/v1/accounts", data=big, content_type="application/json")
    assert (r.status_code, r.json["error"]["code"]) == (413, "payload_too_large")
    r = client.post("/api/v1/accounts", data="{oops", content_type="application/json")
    assert (r.status_code, r.json["error"]["code"]) == (400, "malformed_json")
    assert count(db, Account) == before


def test_name_must_match_a_known_subject(client, db):
    s = create_subject(db, name="赵六")
    r = client.post("/api/v1/accounts", json=_body(identifier=s.identifier_for_test, name="赵七"))
    assert (r.status_code, r.json["error"]["code"]) == (422, "identity_mismatch")
    assert "赵六" not in r.get_data(as_text=True)
    assert client.post("/api/v1/accounts", json=_body(identifier=s.identifier_for_test, name="赵六")).status_code == 201
    r = client.post("/api/v1/accounts", json=_body(login="zhao.again", identifier=s.identifier_for_test, name="赵六"))
    assert (r.status_code, r.json["error"]["code"]) == (409, "identity_taken")


def test_login_taken(client, db, citizen):
    r = client.post("/api/v1/accounts", json=_body(login="citizen"))
    assert (r.status_code, r.json["error"]["code"]) == (409, "login_taken")


def test_registration_is_rate_limited_like_login(make_app):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2/minute").test_client()
    codes = [client.post("/api/v1/accounts", json=_body(login="ab")).status_code for _ in range(3)]
    assert codes == [422, 422, 429]


def test_write_endpoints_are_rate_limited(make_app, db, citizen):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_WRITE="2/minute").test_client()
    headers = auth_headers(db, citizen)
    body = {"name": "某机构", "kind": "bank", "contact": "x"}
    codes = [client.post("/api/v1/organisations", json=body, headers=headers).status_code for _ in range(3)]
    assert codes == [422, 422, 429]


def test_session_writes_share_the_write_limit(make_app, db, citizen):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_WRITE="2/minute", RATELIMIT_LOGIN="100/minute").test_client()
    headers = auth_headers(db, citizen)
    codes = [client.delete("/api/v1/session", headers=headers).status_code for _ in range(3)]
    assert codes == [204, 204, 429]
