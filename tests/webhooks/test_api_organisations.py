"""/api/v1/organisations: applying, viewing, editing and members; who may touch which organisation."""
import pytest

from handlers.models import Organisation, Role, RoleGrant, Status

from ..conftest import (
    auth_headers, count, create_account, create_organisation, new_credit_code, wrong_check_digit,
)


@pytest.fixture
def admin_a(db):
    return create_account(db, "admin-a")


@pytest.fixture
def org_a(db, admin_a):
    return create_organisation(db, name="机构甲", admin=admin_a)


@pytest.fixture
def org_b(db):
    return create_organisation(db, name="机构乙", admin=create_account(db, "admin-b"))


def test_apply_then_see_it_pending(client, db, citizen):
    headers = auth_headers(db, citizen)
    r = client.post("/api/v1/organisations", headers=headers,
                    json={"name": "惠州西湖景区管理处", "kind": "institution", "contact": "0752-1",
                          "credit_code": new_credit_code()})
    assert r.status_code == 201, r.json
    assert r.json["status"] == "pending" and r.json["subject"]["colour"] == "blue"
    org_id = r.json["id"]
    assert client.get(f"/api/v1/organisations/{org_id}", headers=headers).json["status"] == "pending"
    r = client.post(f"/api/v1/organisations/{org_id}/members", headers=headers,
                    json={"login": "citizen", "role": "clerk"})
    assert (r.status_code, r.json["error"]["code"]) == (409, "organisation_not_active")


@pytest.mark.parametrize("body, code", [
    ({"name": "x", "kind": "bank", "contact": "y"}, "bad_organisation_kind"),
    ({"name": "x", "kind": "merchant", "contact": "y", "credit_code": "BAD"}, "bad_identifier"),
    ({"name": "x", "kind": "merchant", "contact": ""}, "bad_text"),
    ({"name": "x" * 101, "kind": "merchant", "contact": "y"}, "bad_name"),
    ({"kind": "merchant", "contact": "y"}, "validation_failed"),
    ({"name": "x", "kind": "merchant", "contact": "y", "status": "approved"}, "validation_failed"),
])
def test_bad_applications_write_nothing(client, db, citizen, body, code):
    headers = auth_headers(db, citizen)
    before = count(db, Organisation), count(db, RoleGrant)
    r = client.post("/api/v1/organisations", headers=headers, json=body)
    assert (r.status_code, r.json["error"]["code"]) == (422, code)
    assert (count(db, Organisation), count(db, RoleGrant)) == before


def test_bad_check_digit_in_credit_code(client, db, citizen):
    r = client.post("/api/v1/organisations", headers=auth_headers(db, citizen),
                    json={"name": "x", "kind": "merchant", "contact": "y",
                          "credit_code": wrong_check_digit(new_credit_code())})
    assert (r.status_code, r.json["error"]["code"]) == (422, "bad_check_digit")


def test_apply_needs_an_approved_account(client, db):
    r = client.post("/api/v1/organisations", json={"name": "x", "kind": "merchant", "contact": "y"})
    assert (r.status_code, r.json["error"]["code"]) == (401, "not_authenticated")
    pending = create_account(db, status=Status.pending)
    r = client.post("/api/v1/organisations", headers=auth_headers(db, pending),
                    json={"name": "x", "kind": "merchant", "contact": "y"})
    assert (r.status_code, r.json["error"]["code"]) == (403, "account_not_active")


def test_members_over_http(client, db, admin_a, org_a):
    headers = auth_headers(db, admin_a)
    clerk = create_account(db, "clerk-x")
    base = f"/api/v1/organisations/{org_a.id}/members"
    r = client.post(base, headers=headers, json={"login": "clerk-x", "role": "clerk"})
    assert r.status_code == 201 and r.json == {"account_id": clerk.id, "login": "clerk-x", "role": "clerk",
                                               "status": "approved"}
    r = client.get(base + "?limit=1", headers=headers)
    assert r.status_code == 200 and r.json["total"] == 2 and len(r.json["items"]) == 1
    assert r.json["items"][0]["login"] == "admin-a"
    assert client.get(base + "?limit=1&offset=1", headers=headers).json["items"][0]["login"] == "clerk-x"
    r = client.get(f"/api/v1/organisations/{org_a.id}", headers=auth_headers(db, clerk))
    assert r.status_code == 200  # a clerk sees the organisation …
    r = client.get(base, headers=auth_headers(db, clerk))
    assert r.status_code == 403  # … but not manage it
    assert client.delete(f"{base}/{clerk.id}", headers=headers).status_code == 204
    r = client.delete(f"{base}/{clerk.id}", headers=headers)
    assert (r.status_code, r.json["error"]["code"]) == (404, "not_a_member")
    r = client.delete(f"{base}/{admin_a.id}", headers=headers)
    assert (r.status_code, r.json["error"]["code"]) == (409, "last_org_admin")


@pytest.mark.parametrize("body, status, code", [
    ({"login": "nobody", "role": "clerk"}, 404, "account_not_found"),
    ({"login": "sleepy", "role": "clerk"}, 409, "member_not_active"),
    ({"login": "clerk-y", "role": "platform_admin"}, 422, "bad_member_role"),
    ({"login": "clerk-y"}, 422, "validation_failed"),
])
def test_bad_members_write_nothing(client, db, admin_a, org_a, body, status, code):
    create_account(db, "sleepy", status=Status.suspended)
    create_account(db, "clerk-y")
    headers = auth_headers(db, admin_a)
    before = count(db, RoleGrant)
    r = client.post(f"/api/v1/organisations/{org_a.id}/members", headers=headers, json=body)
    assert (r.status_code, r.json["error"]["code"]) == (status, code)
    assert count(db, RoleGrant) == before


def test_admin_of_a_cannot_touch_b(client, db, admin_a, org_a, org_b):
    headers = auth_headers(db, admin_a)
    create_account(db, "clerk-z")
    before = count(db, RoleGrant)
    calls = [
        client.get(f"/api/v1/organisations/{org_b.id}", headers=headers),
        client.patch(f"/api/v1/organisations/{org_b.id}", headers=headers, json={"name": "被改了"}),
        client.get(f"/api/v1/organisations/{org_b.id}/members", headers=headers),
        client.post(f"/api/v1/organisations/{org_b.id}/members", headers=headers,
                    json={"login": "clerk-z", "role": "clerk"}),
        client.delete(f"/api/v1/organisations/{org_b.id}/members/{admin_a.id}", headers=headers),
    ]
    assert [(r.status_code, r.json["error"]["code"]) for r in calls] == [(403, "forbidden")] * 5
    assert count(db, RoleGrant) == before
    db.refresh(org_b)
    assert org_b.name == "机构乙"


def test_edit(client, db, admin_a, org_a):
    headers = auth_headers(db, admin_a)
    r = client.patch(f"/api/v1/organisations/{org_a.id}", headers=headers, json={"contact": "0752-9"})
    assert r.status_code == 200 and (r.json["name"], r.json["contact"]) == ("机构甲", "0752-9")
    r = client.patch(f"/api/v1/organisations/{org_a.id}", headers=headers, json={"name": ""})
    assert (r.status_code, r.json["error"]["code"]) == (422, "bad_name")
    db.refresh(org_a)
    assert org_a.name == "机构甲"


def test_unknown_organisation(client, db, platform_admin):
    r = client.get("/api/v1/organisations/999999", headers=auth_headers(db, platform_admin))
    assert (r.status_code, r.json["error"]["code"]) == (404, "organisation_not_found")


def test_platform_admin_manages_any_organisation(client, db, platform_admin, org_b):
    create_account(db, "clerk-p")
    r = client.post(f"/api/v1/organisations/{org_b.id}/members", headers=auth_headers(db, platform_admin),
                    json={"login": "clerk-p", "role": "clerk"})
    assert r.status_code == 201
    assert Role.clerk.value == r.json["role"]
