"""/api/v1/admin: the authorisation matrix, reviews, records, categories and the look-up."""
from datetime import date, timedelta

import pytest

from handlers import checks
from handlers.models import Category, CreditRecord, Role, Status

from ..conftest import (
    add_record, auth_headers, count, create_account, create_organisation, create_subject, wrong_check_digit,
)

TODAY = checks.today()

# Every admin endpoint: method, path (ids need not exist: the role check comes first), body.
ADMIN_ENDPOINTS = [
    ("get", "/api/v1/admin/organisations", None),
    ("post", "/api/v1/admin/organisations/1/review", {"decision": "approve"}),
    ("get", "/api/v1/admin/accounts", None),
    ("post", "/api/v1/admin/accounts/1/review", {"decision": "approve"}),
    ("get", "/api/v1/admin/declarations", None),
    ("post", "/api/v1/admin/declarations/1/review", {"decision": "approve"}),
    ("post", "/api/v1/admin/subjects/lookup", {"identifier": "11010519491231002X"}),
    ("post", "/api/v1/admin/records", {"subject_id": 1, "category": "utility_arrears", "source": "s",
                                       "external_id": "e", "effective_on": "2024-01-01"}),
    ("post", "/api/v1/admin/records/1/repair", {"repaired_on": "2024-01-01", "reason": "r"}),
    ("post", "/api/v1/admin/records/1/suspend", {"suspended_on": "2024-01-01", "reason": "r"}),
    ("post", "/api/v1/admin/records/1/lift-suspension", None),
    ("post", "/api/v1/admin/categories", {"code": "xx", "name": "x", "kind": "bad", "applies_to": "any"}),
]


def _call(client, method, path, body, headers=None):
    kw = {"headers": headers or {}}
    if body is not None:
        kw["json"] = body
    return getattr(client, method)(path, **kw)


@pytest.mark.parametrize("method, path, body", ADMIN_ENDPOINTS)
def test_anonymous_gets_401(client, method, path, body):
    r = _call(client, method, path, body)
    assert (r.status_code, r.json["error"]["code"]) == (401, "not_authenticated")


@pytest.mark.parametrize("method, path, body", ADMIN_ENDPOINTS)
@pytest.mark.parametrize("role", [Role.citizen, Role.clerk, Role.org_admin, Role.enterprise_agent])
def test_everyone_but_platform_admins_gets_403(client, db, method, path, body, role):
    who = create_account(db, role=role, organisation_id=create_organisation(db).id
                         if role in (Role.clerk, Role.org_admin) else None)
    r = _call(client, method, path, body, auth_headers(db, who))
    assert (r.status_code, r.json["error"]["code"]) == (403, "forbidden")


def test_a_suspended_platform_admin_is_refused(client, db):
    admin = create_account(db, role=Role.platform_admin, status=Status.suspended)
    r = client.get("/api/v1/admin/accounts", headers=auth_headers(db, admin))
    assert (r.status_code, r.json["error"]["code"]) == (403, "account_not_active")


@pytest.fixture
def admin_headers(db, platform_admin):
    return auth_headers(db, platform_admin)


# --- onboarding reviews --------------------------------------------------------------------------

def test_organisation_review_queue_and_decisions(client, db, admin_headers, platform_admin):
    first = create_organisation(db, name="甲", status=Status.pending)
    second = create_organisation(db, name="乙", status=Status.pending)
    create_organisation(db, name="丙", status=Status.approved)
    r = client.get("/api/v1/admin/organisations?status=pending", headers=admin_headers)
    assert r.status_code == 200
    ids = [o["id"] for o in r.json["items"]]
    assert ids.index(first.id) < ids.index(second.id) and r.json["total"] == len(ids)
    assert {o["status"] for o in r.json["items"]} == {"pending"}
    base = f"/api/v1/admin/organisations/{first.id}/review"
    r = client.post(base, headers=admin_headers, json={"decision": "suspend", "reason": "x"})
    assert (r.status_code, r.json["error"]["code"]) == (409, "illegal_transition")
    assert r.json["error"]["detail"]["status"] == "pending"
    r = client.post(base, headers=admin_headers, json={"decision": "reject"})
    assert (r.status_code, r.json["error"]["code"]) == (422, "reason_required")
    r = client.post(base, headers=admin_headers, json={"decision": "approve"})
    assert r.status_code == 200 and r.json["status"] == "approved" and r.json["reviewed_at"]
    db.refresh(first)
    assert first.reviewed_by_id == platform_admin.id
    r = client.post(base, headers=admin_headers, json={"decision": "suspend", "reason": "投诉核实"})
    assert r.json["status"] == "suspended" and r.json["status_reason"] == "投诉核实"


@pytest.mark.parametrize("query, code", [
    ("status=sleeping", "bad_status"),
    ("limit=0", "validation_failed"),
    ("limit=201", "validation_failed"),
    ("offset=-1", "validation_failed"),
    ("limit=abc", "validation_failed"),
])
def test_bad_list_arguments(client, admin_headers, query, code):
    for path in ("organisations", "accounts", "declarations"):
        r = client.get(f"/api/v1/admin/{path}?{query}", headers=admin_headers)
        assert (r.status_code, r.json["error"]["code"]) == (422, code), path


def test_account_review(client, db, admin_headers):
    pending = create_account(db, status=Status.pending)
    r = client.get("/api/v1/admin/accounts?status=pending", headers=admin_headers)
    assert pending.id in [a["id"] for a in r.json["items"]]
    base = f"/api/v1/admin/accounts/{pending.id}/review"
    r = client.post(base, headers=admin_headers, json={"decision": "promote"})
    assert (r.status_code, r.json["error"]["code"]) == (422, "bad_review_decision")
    r = client.post(base, headers=admin_headers, json={"decision": "reject", "reason": "材料不全"})
    assert r.status_code == 200 and r.json["status"] == "rejected"
    r = client.post(base, headers=admin_headers, json={"decision": "suspend", "reason": "x"})
    assert (r.status_code, r.json["error"]["code"]) == (409, "illegal_transition")
    r = client.post(base, headers=admin_headers, json={"decision": "approve"})  # re-review
    assert r.json["status"] == "approved"
    r = client.post("/api/v1/admin/accounts/999999/review", headers=admin_headers, json={"decision": "approve"})
    assert (r.status_code, r.json["error"]["code"]) == (404, "account_not_found")
    r = client.post(base, headers=admin_headers, json={})
    assert (r.status_code, r.json["error"]["code"]) == (422, "validation_failed")


def test_a_suspended_account_stops_working_at_once(client, db, admin_headers, citizen):
    headers = auth_headers(db, citizen)
    assert client.get("/api/v1/me/subject", headers=headers).status_code == 200
    client.post(f"/api/v1/admin/accounts/{citizen.id}/review", headers=admin_headers,
                json={"decision": "suspend", "reason": "冒用身份"})
    r = client.get("/api/v1/me/subject", headers=headers)
    assert (r.status_code, r.json["error"]["code"]) == (403, "account_not_active")
    assert client.get("/api/v1/me", headers=headers).json["status_reason"] == "冒用身份"


# --- look-up ---------------------------------------------------------------------------------------

def test_lookup_by_identifier_in_the_body(client, db, admin_headers):
    s = create_subject(db, name="钱七星")
    add_record(db, s)
    db.flush()  # add_record leaves the refreshed colour unflushed
    r = client.post("/api/v1/admin/subjects/lookup", headers=admin_headers, json={"identifier": s.identifier_for_test})
    assert r.status_code == 200
    assert (r.json["id"], r.json["colour"], r.json["full_name"], r.json["name"]) == (s.id, "red", "钱七星", "钱*星")
    assert len(r.json["records"]) == 1
    assert s.identifier_for_test not in r.get_data(as_text=True)


@pytest.mark.parametrize("identifier, status, code", [
    ("bad-check", 422, "bad_check_digit"),
    ("12345", 422, "bad_identifier"),
    ("11010519491231002X", 404, "subject_not_found"),
    (None, 422, "validation_failed"),
])
def test_lookup_errors(client, db, admin_headers, identifier, status, code):
    if identifier == "bad-check":
        identifier = wrong_check_digit(create_subject(db).identifier_for_test)
    r = client.post("/api/v1/admin/subjects/lookup", headers=admin_headers, json={"identifier": identifier})
    assert (r.status_code, r.json["error"]["code"]) == (status, code)


def test_lookup_is_not_a_get(client, admin_headers):
    assert client.get("/api/v1/admin/subjects/lookup", headers=admin_headers).status_code == 405


# --- records -------------------------------------------------------------------------------------

def _record_body(subject, **kw):
    return {"subject_id": subject.id, "category": "administrative_penalty", "source": "market-regulation",
            "external_id": "HZ-2024-1", "effective_on": "2024-01-01", **kw}


def test_add_record_then_repair_turns_red_to_blue(client, db, admin_headers, citizen):
    subject_id = citizen.subject_id
    r = client.post("/api/v1/admin/records", headers=admin_headers, json=_record_body(citizen.subject))
    assert r.status_code == 201 and r.json["subject_colour"] == "red" and r.json["kind"] == "bad"
    mine = auth_headers(db, citizen)
    assert client.get("/api/v1/me/subject", headers=mine).json["colour"] == "red"
    r = client.post(f"/api/v1/admin/records/{r.json['id']}/repair", headers=admin_headers,
                    json={"repaired_on": TODAY.isoformat(), "reason": "已缴清罚款"})
    assert r.status_code == 200 and r.json["subject_colour"] == "blue"
    me = client.get("/api/v1/me/subject", headers=mine).json
    assert (me["id"], me["colour"], me["records"][0]["repair_reason"]) == (subject_id, "blue", "已缴清罚款")


def _bad_record_cases():
    return [
        ("dates out of order", {"published_until": "2023-12-31"}, 422, "dates_out_of_order"),
        ("bad date", {"effective_on": "2024-02-30"}, 422, "validation_failed"),
        ("unknown category", {"category": "nope"}, 422, "unknown_category"),
        ("category for organisations", {"category": "a_grade_taxpayer"}, 422, "category_kind_mismatch"),
        ("reserved source", {"source": "declaration"}, 422, "reserved_source"),
        ("duplicate", {"external_id": "dup"}, 409, "record_exists"),
        ("unknown subject", {"subject_id": 999999}, 404, "subject_not_found"),
        ("missing field", {"source": None}, 422, "validation_failed"),
    ]


@pytest.mark.parametrize("case, kw, status, code", _bad_record_cases(), ids=[c[0] for c in _bad_record_cases()])
def test_bad_records_write_nothing(client, db, admin_headers, case, kw, status, code):
    s = create_subject(db)
    client.post("/api/v1/admin/records", headers=admin_headers, json=_record_body(s, external_id="dup"))
    before = count(db, CreditRecord)
    body = {k: v for k, v in _record_body(s, **kw).items() if v is not None}
    r = client.post("/api/v1/admin/records", headers=admin_headers, json=body)
    assert (r.status_code, r.json["error"]["code"]) == (status, code)
    assert count(db, CreditRecord) == before


def test_suspend_and_lift_over_http(client, db, admin_headers):
    s = create_subject(db)
    record = add_record(db, s)
    base = f"/api/v1/admin/records/{record.id}"
    r = client.post(base + "/suspend", headers=admin_headers,
                    json={"suspended_on": TODAY.isoformat(), "suspended_until": (TODAY - timedelta(days=1)).isoformat(),
                          "reason": "承诺履行"})
    assert (r.status_code, r.json["error"]["code"]) == (422, "dates_out_of_order")
    r = client.post(base + "/suspend", headers=admin_headers, json={"suspended_on": TODAY.isoformat(), "reason": ""})
    assert (r.status_code, r.json["error"]["code"]) == (422, "reason_required")
    r = client.post(base + "/suspend", headers=admin_headers,
                    json={"suspended_on": (TODAY - timedelta(days=3)).isoformat(), "reason": "承诺履行"})
    assert r.status_code == 200 and r.json["subject_colour"] == "blue"
    assert r.json["suspension_reason"] == "承诺履行"
    r = client.post(base + "/lift-suspension", headers=admin_headers)
    assert r.status_code == 200 and r.json["subject_colour"] == "red"
    r = client.post(base + "/lift-suspension", headers=admin_headers)
    assert (r.status_code, r.json["error"]["code"]) == (409, "not_suspended")
    r = client.post("/api/v1/admin/records/999999/repair", headers=admin_headers,
                    json={"repaired_on": "2024-01-01", "reason": "x"})
    assert (r.status_code, r.json["error"]["code"]) == (404, "record_not_found")


def test_repairing_an_honour_is_a_conflict(client, db, admin_headers):
    record = add_record(db, create_subject(db), kind="honour")
    r = client.post(f"/api/v1/admin/records/{record.id}/repair", headers=admin_headers,
                    json={"repaired_on": date(2024, 1, 1).isoformat(), "reason": "x"})
    assert (r.status_code, r.json["error"]["code"]) == (409, "not_a_bad_record")


# --- categories ----------------------------------------------------------------------------------

def test_categories(client, db, admin_headers):
    r = client.get("/api/v1/categories?limit=200")
    assert r.status_code == 200 and r.json["total"] >= 17
    keys = [(c["kind"], c["code"]) for c in r.json["items"]]
    assert keys == sorted(keys)
    r = client.post("/api/v1/admin/categories", headers=admin_headers,
                    json={"code": "blood_donor", "name": "无偿献血者", "kind": "honour", "applies_to": "person"})
    assert r.status_code == 201 and r.json["code"] == "blood_donor"
    codes = [c["code"] for c in client.get("/api/v1/categories?limit=200").json["items"]]
    assert "blood_donor" in codes


@pytest.mark.parametrize("kw, status, code", [
    ({"code": "Bad Code"}, 422, "bad_category_code"),
    ({"kind": "great"}, 422, "bad_record_kind"),
    ({"applies_to": "pets"}, 422, "bad_applies_to"),
    ({"code": "star_volunteer"}, 409, "category_exists"),
    ({"name": None}, 422, "validation_failed"),
])
def test_bad_categories_write_nothing(client, db, admin_headers, kw, status, code):
    body = {k: v for k, v in {"code": "new_cat", "name": "新", "kind": "honour", "applies_to": "any", **kw}.items()
            if v is not None}
    before = count(db, Category)
    r = client.post("/api/v1/admin/categories", headers=admin_headers, json=body)
    assert (r.status_code, r.json["error"]["code"]) == (status, code)
    assert count(db, Category) == before
