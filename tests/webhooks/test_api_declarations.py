"""Declarations over HTTP, their review turning blue to green, and who may read which subject."""
from datetime import timedelta

import pytest

from handlers import checks
from handlers.models import HonourDeclaration, Role, Status

from ..conftest import add_record, auth_headers, count, create_account, create_subject

TODAY = checks.today()


def _body(**kw):
    body = {"category": "star_volunteer", "title": "五星级志愿者", "issued_by": "惠州市志愿者联合会",
            "awarded_on": "2024-03-05", "evidence": "证书编号 HZV-2024-0305", **kw}
    return {k: v for k, v in body.items() if v is not None}


def test_declaration_approved_turns_blue_green_in_me_subject(client, db, citizen, platform_admin):
    mine, admin = auth_headers(db, citizen), auth_headers(db, platform_admin)
    assert client.get("/api/v1/me/subject", headers=mine).json["colour"] == "blue"
    r = client.post("/api/v1/declarations", headers=mine, json=_body(valid_until=(TODAY + timedelta(days=30)).isoformat()))
    assert r.status_code == 201, r.json
    d = r.json
    assert d["status"] == "pending" and d["subject"]["id"] == citizen.subject_id
    queue = client.get("/api/v1/admin/declarations?status=pending", headers=admin).json["items"]
    assert d["id"] in [x["id"] for x in queue]
    r = client.post(f"/api/v1/admin/declarations/{d['id']}/review", headers=admin, json={"decision": "approve"})
    assert r.status_code == 200 and r.json["status"] == "approved" and r.json["record_id"]
    me = client.get("/api/v1/me/subject", headers=mine).json
    assert me["colour"] == "green"
    assert [(x["source"], x["category"]) for x in me["records"]] == [("declaration", "star_volunteer")]
    r = client.post(f"/api/v1/admin/declarations/{d['id']}/review", headers=admin,
                    json={"decision": "reject", "reason": "x"})
    assert (r.status_code, r.json["error"]["code"]) == (409, "illegal_transition")
    assert r.json["error"]["detail"]["status"] == "approved"
    own = client.get("/api/v1/me/declarations", headers=mine).json
    assert [x["id"] for x in own["items"]] == [d["id"]] and own["items"][0]["status"] == "approved"


def test_reject_needs_reason(client, db, citizen, platform_admin):
    d = client.post("/api/v1/declarations", headers=auth_headers(db, citizen), json=_body()).json
    admin = auth_headers(db, platform_admin)
    r = client.post(f"/api/v1/admin/declarations/{d['id']}/review", headers=admin, json={"decision": "reject"})
    assert (r.status_code, r.json["error"]["code"]) == (422, "reason_required")
    r = client.post(f"/api/v1/admin/declarations/{d['id']}/review", headers=admin,
                    json={"decision": "reject", "reason": "证书无法核实"})
    assert r.json["status"] == "rejected" and r.json["review_reason"] == "证书无法核实"


def _bad_cases():
    return [
        ("dates out of order", _body(valid_until="2024-03-04"), 422, "dates_out_of_order"),
        ("future award", _body(awarded_on=(TODAY + timedelta(days=1)).isoformat()), 422, "date_in_future"),
        ("bad date", _body(awarded_on="05/03/2024"), 422, "validation_failed"),
        ("bad record category", _body(category="serious_dishonesty"), 422, "not_an_honour_category"),
        ("unknown category", _body(category="space_hero"), 422, "unknown_category"),
        ("enterprise category", _body(category="a_grade_taxpayer"), 422, "category_kind_mismatch"),
        ("evidence too long", _body(evidence="证" * 2001), 422, "bad_text"),
        ("blank evidence", _body(evidence="  "), 422, "bad_text"),
        ("missing evidence", {k: v for k, v in _body().items() if k != "evidence"}, 422, "validation_failed"),
        ("someone else's subject", _body(subject_id=-1), 404, "subject_not_found"),
        ("unknown field", _body(status="approved"), 422, "validation_failed"),
    ]


@pytest.mark.parametrize("case, body, status, code", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_declarations_write_nothing(client, db, citizen, case, body, status, code):
    if body.get("subject_id") == -1:
        body["subject_id"] = create_subject(db).id
    before = count(db, HonourDeclaration)
    r = client.post("/api/v1/declarations", headers=auth_headers(db, citizen), json=body)
    assert (r.status_code, r.json["error"]["code"]) == (status, code)
    assert count(db, HonourDeclaration) == before


def test_declarations_need_an_active_account_with_a_subject(client, db):
    r = client.post("/api/v1/declarations", json=_body())
    assert (r.status_code, r.json["error"]["code"]) == (401, "not_authenticated")
    pending = create_account(db, subject=create_subject(db), status=Status.pending)
    r = client.post("/api/v1/declarations", headers=auth_headers(db, pending), json=_body())
    assert (r.status_code, r.json["error"]["code"]) == (403, "account_not_active")
    clerk = create_account(db, role=Role.clerk)
    r = client.post("/api/v1/declarations", headers=auth_headers(db, clerk), json=_body())
    assert (r.status_code, r.json["error"]["code"]) == (409, "no_subject")


def test_enterprise_agent_declares_for_its_enterprise(client, db):
    ent = create_subject(db, kind="enterprise")
    agent = create_account(db, role=Role.enterprise_agent, subject=ent)
    r = client.post("/api/v1/declarations", headers=auth_headers(db, agent),
                    json=_body(category="honest_enterprise", title="诚信企业", subject_id=ent.id))
    assert r.status_code == 201 and r.json["subject"]["id"] == ent.id


# --- GET /api/v1/subjects/{id} ---------------------------------------------------------------------

def test_subject_read_matrix(client, db, citizen, platform_admin):
    ent = create_subject(db, kind="enterprise")
    add_record(db, ent, kind="honour", category="a_grade_taxpayer")
    db.flush()
    agent = create_account(db, role=Role.enterprise_agent, subject=ent)
    stranger_subject = create_subject(db)
    own = citizen.subject_id

    def get(account, subject_id):
        return client.get(f"/api/v1/subjects/{subject_id}", headers=auth_headers(db, account) if account else {})

    assert get(None, own).status_code == 401
    assert get(citizen, own).status_code == 200
    r = get(agent, ent.id)
    assert r.status_code == 200 and r.json["colour"] == "green" and r.json["records"][0]["category"] == "a_grade_taxpayer"
    assert "*" in r.json["name"] and "*" in r.json["identifier"]
    for who, sid in [(citizen, stranger_subject.id), (citizen, ent.id), (agent, own), (citizen, 999999)]:
        r = get(who, sid)
        assert (r.status_code, r.json["error"]["code"]) == (404, "subject_not_found")
    assert get(platform_admin, stranger_subject.id).status_code == 200
    r = get(platform_admin, 999999)
    assert (r.status_code, r.json["error"]["code"]) == (404, "subject_not_found")


def test_openapi_lists_the_new_paths(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/api/v1/accounts", "/api/v1/organisations/{organisation_id}/members/{account_id}",
                 "/api/v1/declarations", "/api/v1/me/declarations", "/api/v1/subjects/{subject_id}",
                 "/api/v1/admin/subjects/lookup", "/api/v1/admin/records/{record_id}/lift-suspension",
                 "/api/v1/categories", "/api/v1/admin/categories"):
        assert path in paths, path
    lookup = paths["/api/v1/admin/subjects/lookup"]
    assert set(lookup) == {"post"} and lookup["post"]["security"] == [{"bearer": []}]
    assert "422" in lookup["post"]["responses"] and "403" in lookup["post"]["responses"]
