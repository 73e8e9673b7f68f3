"""/api/v1 policies: the role matrix, writing and publishing, matching, the public notice (公示) and objections,
enterprise profiles, and bad input that writes nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest

from handlers import checks, policies
from handlers.models import EnterpriseProfile, EnterpriseTag, Notice, Objection, Offer, Policy, Role

from ..conftest import auth_headers, count, create_account, create_organisation, create_subject

TODAY = checks.today()
SUBSIDY = {"title": "研发投入奖励", "amount_rule": {"base": "last_year_tax", "rate_bp": 500, "cap_fen": 200_000_00},
           "conditions": {"min_grade": "B", "industry_prefixes": ["C"], "region_prefixes": ["441300"],
                          "registered_before": "2024-01-01", "tags_all": ["高新技术企业"]},
           "budget_fen": 1_000_000_00, "notice_from": TODAY.isoformat(),
           "notice_until": (TODAY + timedelta(days=14)).isoformat(),
           "confirm_until": (TODAY + timedelta(days=30)).isoformat()}


def error(r):
    return r.status_code, r.json["error"]["code"]


@pytest.fixture
def h(db, dept_admin):
    return auth_headers(db, dept_admin)


def rows(db):
    return (count(db, Policy), count(db, Offer), count(db, Notice), count(db, Objection), count(db, EnterpriseProfile),
            count(db, EnterpriseTag))


def profiled(client, db, admin_h, *, grade="A", tax=1_000_000_00, **profile):
    s = create_subject(db, kind="enterprise", grade=grade)
    body = {"industry_code": "C3982", "region_code": "441302", "registered_on": "2015-06-01",
            "last_year_tax_fen": tax, "tax_year": TODAY.year - 1, "tags": ["高新技术企业"], **profile}
    r = client.put(f"/api/v1/admin/enterprises/{s.id}/profile", headers=admin_h, json=body)
    assert r.status_code == 200, r.json
    return s


def test_write_preview_publish_and_the_public_notice(client, db, dept, h, platform_admin):
    admin_h = auth_headers(db, platform_admin)
    a = profiled(client, db, admin_h, grade="A", tax=2_860_000_00)   # 143,000 yuan
    b = profiled(client, db, admin_h, grade="B", tax=6_000_000_00)   # 300,000 -> capped at 200,000
    profiled(client, db, admin_h, grade="C")                         # below the minimum grade
    profiled(client, db, admin_h, industry_code="G5431")             # not manufacturing
    profiled(client, db, admin_h, tags=[])                           # not high-tech
    r = client.post("/api/v1/admin/policies", headers=h, json={**SUBSIDY, "organisation_id": dept.id})
    assert r.status_code == 201, r.json
    p = r.json
    assert (p["state"], p["organisation"]["name"], p["match_runs"]) == ("draft", "惠州市工业和信息化局", 0)
    assert p["conditions"]["region_prefixes"] == ["4413"] and p["conditions"]["registered_before"] == "2024-01-01"
    assert p["conditions"]["colours"] == ["green", "blue"] and p["conditions"]["kinds"] == ["enterprise"]
    pid = p["id"]
    assert client.get(f"/api/v1/policies/{pid}").status_code == 404          # a draft is not public
    assert all(i["id"] != pid for i in client.get("/api/v1/policies").json["items"])

    preview = client.post(f"/api/v1/admin/policies/{pid}/match", headers=h)
    assert preview.status_code == 200, preview.json
    assert (preview.json["state"], preview.json["offered"], preview.json["notified"]) == ("draft", 2, 0)
    assert preview.json["offered_fen"] == 343_000_00 and preview.json["remaining_fen"] == 657_000_00

    r = client.patch(f"/api/v1/admin/policies/{pid}", headers=h, json={"budget_fen": 200_000_00})
    assert r.status_code == 200 and r.json["budget_fen"] == 200_000_00
    r = client.post(f"/api/v1/admin/policies/{pid}/publish", headers=h)
    assert r.status_code == 200, r.json
    m = r.json["match"]
    # The budget covers one: A-grade first (143,000), the B-grade one (200,000) does not fit any more.
    assert (m["eligible"], m["offered"], m["over_budget"], m["notified"], m["previews_dropped"]) == (2, 1, 1, 1, 2)
    offers_page = client.get(f"/api/v1/admin/policies/{pid}/offers", headers=h).json
    assert [(o["subject"]["id"], o["amount"], o["state"]) for o in offers_page["items"]] == [
        (a.id, "143000.00", "notified")]
    assert b.id not in [o["subject"]["id"] for o in offers_page["items"]]

    public = client.get(f"/api/v1/policies/{pid}").json
    assert public["state"] == "published" and "match_runs" not in public
    assert client.get(f"/api/v1/policies/{pid}/notice").json["total"] == 0  # nobody confirmed yet

    r = client.patch(f"/api/v1/admin/policies/{pid}", headers=h, json={"conditions": {"min_grade": "A"}})
    assert (error(r), r.json["error"]["detail"]) == ((409, "policy_locked"), {"fields": ["conditions"]})
    r = client.post(f"/api/v1/admin/policies/{pid}/publish", headers=h)
    assert (error(r), r.json["error"]["detail"]) == ((409, "illegal_transition"),
                                                    {"state": "published", "action": "publish"})
    r = client.post(f"/api/v1/admin/policies/{pid}/close", headers=h)
    assert r.json["state"] == "closed"
    assert client.get(f"/api/v1/admin/policies/{pid}/stats", headers=h).json["counts"]["expired"] == 1


def test_the_role_matrix(client, db, dept, h, dept_admin, platform_admin, admin_a):
    r = client.post("/api/v1/admin/policies", headers=h, json={**SUBSIDY, "organisation_id": dept.id})
    pid = r.json["id"]
    other = auth_headers(db, admin_a)
    agent = auth_headers(db, create_account(db, role=Role.enterprise_agent,
                                            subject=create_subject(db, kind="enterprise")))
    before = rows(db)
    for method, path, body in (("post", "/api/v1/admin/policies", {**SUBSIDY, "organisation_id": dept.id}),
                               ("get", "/api/v1/admin/policies", None),
                               ("post", f"/api/v1/admin/policies/{pid}/match", None),
                               ("post", f"/api/v1/admin/policies/{pid}/publish", None)):
        assert error(getattr(client, method)(path, json=body)) == (401, "not_authenticated")
    assert error(client.post("/api/v1/admin/policies", headers=other,
                             json={**SUBSIDY, "organisation_id": dept.id})) == (403, "forbidden")
    for who in (other, agent):  # a draft is invisible to those who do not manage it
        assert error(client.post(f"/api/v1/admin/policies/{pid}/publish", headers=who)) == (404, "policy_not_found")
        assert error(client.get(f"/api/v1/admin/policies/{pid}/stats", headers=who)) == (404, "policy_not_found")
    assert client.get("/api/v1/admin/policies", headers=other).json["total"] == 0
    assert rows(db) == before
    assert client.post(f"/api/v1/admin/policies/{pid}/publish", headers=auth_headers(db, platform_admin)).status_code \
        == 200
    for who in (other, agent):
        assert error(client.post(f"/api/v1/admin/policies/{pid}/match", headers=who)) == (403, "forbidden")
        assert error(client.get(f"/api/v1/admin/policies/{pid}/objections", headers=who)) == (403, "forbidden")
        assert error(client.post(f"/api/v1/admin/policies/{pid}/approve", headers=who,
                                 json={"all_confirmed": True})) == (403, "forbidden")
    assert client.get("/api/v1/admin/policies", headers=h).json["total"] == 1
    park = create_organisation(db, "仲恺高新区产业园", kind="enterprise", admin=dept_admin)
    assert error(client.post("/api/v1/admin/policies", headers=h, json={**SUBSIDY, "organisation_id": park.id})) == (
        422, "issuer_not_a_department")
    # Profiles are the platform admin's.
    s = create_subject(db, kind="enterprise")
    assert error(client.put(f"/api/v1/admin/enterprises/{s.id}/profile", headers=h, json={})) == (403, "forbidden")
    assert error(client.get(f"/api/v1/admin/enterprises/{s.id}/profile", headers=h)) == (403, "forbidden")


@pytest.mark.parametrize("change, expected", [
    ({"title": ""}, (422, "bad_text")),
    ({"title": 5}, (422, "validation_failed")),
    ({"amount_rule": {"fixed_fen": -5}}, (422, "bad_amount_rule")),
    ({"amount_rule": {"fixed_fen": "100"}}, (422, "validation_failed")),
    ({"amount_rule": {"fixed_fen": 100, "rate_bp": 5}}, (422, "bad_amount_rule")),
    ({"amount_rule": {"formula": "tax*0.05"}}, (422, "validation_failed")),
    ({"amount_rule": {"base": "profit", "rate_bp": 500, "cap_fen": 100}}, (422, "bad_amount_rule")),
    ({"conditions": {"colours": ["red"]}}, (422, "red_never_eligible")),
    ({"conditions": {"min_grade": "D"}}, (422, "d_grade_never_eligible")),
    ({"conditions": {"industry_prefixes": ["Z9"]}}, (422, "bad_industry_code")),
    ({"conditions": {"region_prefixes": ["4413x"]}}, (422, "bad_region_code")),
    ({"conditions": {"kinds": ["person"]}}, (422, "bad_policy_kinds")),
    ({"conditions": {"registered_before": "2024-02-30"}}, (422, "validation_failed")),
    ({"conditions": {"unknown": 1}}, (422, "validation_failed")),
    ({"budget_fen": 0}, (422, "bad_budget")),
    ({"budget_fen": 1.5}, (422, "validation_failed")),
    ({"notice_until": (TODAY - timedelta(days=1)).isoformat()}, (422, "dates_out_of_order")),
    ({"notice_from": None}, (422, "validation_failed")),
    ({"organisation_id": 999_999}, (404, "organisation_not_found")),
])
def test_bad_policies_write_nothing(client, db, dept, h, change, expected):
    before = rows(db)
    body = {**SUBSIDY, "organisation_id": dept.id, **change}
    r = client.post("/api/v1/admin/policies", headers=h, json=body)
    assert error(r) == expected, r.json
    assert r.json["error"]["message"]
    assert rows(db) == before


def test_unknown_and_malformed(client, db, h):
    assert error(client.get("/api/v1/policies/999999")) == (404, "policy_not_found")
    assert error(client.get("/api/v1/policies/999999/notice")) == (404, "policy_not_found")
    assert error(client.post("/api/v1/admin/policies/999999/match", headers=h)) == (404, "policy_not_found")
    assert error(client.post("/api/v1/admin/policies", headers=h, data="{", content_type="application/json")) == (
        400, "malformed_json")
    assert error(client.post("/api/v1/admin/policies", headers=h, data="x", content_type="text/plain")) == (
        415, "unsupported_media_type")
    huge = 2**40  # beyond the 32-bit ids: names nothing, and must not reach the database
    # in a path, a number beyond any id matches no route (webhooks.RowId): a plain 404
    assert error(client.get(f"/api/v1/policies/{huge}")) == (404, "not_found")
    assert error(client.post(f"/api/v1/offers/{huge}/confirm", headers=h)) == (404, "not_found")
    assert error(client.get(f"/api/v1/admin/policies?organisation_id={huge}", headers=h)) == (422, "validation_failed")
    assert error(client.post("/api/v1/admin/policies", headers=h, json={**SUBSIDY, "organisation_id": huge})) == (
        404, "organisation_not_found")


def test_notice_period_and_objections(client, db, dept, h, platform_admin):
    admin_h = auth_headers(db, platform_admin)
    s = profiled(client, db, admin_h)
    agent = create_account(db, role=Role.enterprise_agent, subject=s)
    body = {**SUBSIDY, "organisation_id": dept.id, "notice_from": (TODAY + timedelta(days=1)).isoformat()}
    pid = client.post("/api/v1/admin/policies", headers=h, json=body).json["id"]
    client.post(f"/api/v1/admin/policies/{pid}/publish", headers=h)
    oid = client.get("/api/v1/me/offers", headers=auth_headers(db, agent)).json["items"][0]["id"]
    client.post(f"/api/v1/offers/{oid}/confirm", headers=auth_headers(db, agent))
    citizen = auth_headers(db, create_account(db, subject=create_subject(db)))
    before = rows(db)
    r = client.get(f"/api/v1/policies/{pid}/notice")
    assert error(r) == (409, "not_in_notice_period")
    assert r.json["error"]["detail"]["notice_from"] == (TODAY + timedelta(days=1)).isoformat()
    assert error(client.post(f"/api/v1/policies/{pid}/objections", headers=citizen, json={"reason": "x"})) == (
        409, "not_in_notice_period")
    assert rows(db) == before

    assert client.patch(f"/api/v1/admin/policies/{pid}", headers=h,
                        json={"notice_from": TODAY.isoformat()}).status_code == 200
    notice = client.get(f"/api/v1/policies/{pid}/notice").json
    assert [(i["offer_id"], i["amount"]) for i in notice["items"]] == [(oid, "50000.00")]
    assert notice["items"][0]["enterprise"] == s.name_masked and notice["items"][0]["identifier"] == s.id_masked
    before = rows(db)
    assert error(client.post(f"/api/v1/policies/{pid}/objections", json={"reason": "x"})) == (401, "not_authenticated")
    assert error(client.post(f"/api/v1/policies/{pid}/objections", headers=citizen, json={"reason": " "})) == (
        422, "bad_text")
    assert error(client.post(f"/api/v1/policies/{pid}/objections", headers=citizen, json={})) == (
        422, "validation_failed")
    assert error(client.post(f"/api/v1/policies/{pid}/objections", headers=citizen,
                             json={"reason": "该企业去年已停产", "offer_id": 999_999})) == (404, "offer_not_found")
    assert rows(db) == before
    r = client.post(f"/api/v1/policies/{pid}/objections", headers=citizen,
                    json={"reason": "该企业去年已停产", "offer_id": oid})
    assert r.status_code == 201 and r.json["offer_id"] == oid
    listed = client.get(f"/api/v1/admin/policies/{pid}/objections", headers=h).json
    assert [(o["reason"], o["offer_id"]) for o in listed["items"]] == [("该企业去年已停产", oid)]


def test_profiles(client, db, platform_admin):
    admin_h = auth_headers(db, platform_admin)
    s = create_subject(db, kind="enterprise")
    r = client.get(f"/api/v1/admin/enterprises/{s.id}/profile", headers=admin_h)
    assert r.json["industry_code"] is None and r.json["tags"] == []
    r = client.put(f"/api/v1/admin/enterprises/{s.id}/profile", headers=admin_h,
                   json={"industry_code": "3982", "region_code": "441302", "tags": ["专精特新"]})
    assert (r.json["industry_code"], r.json["tags"]) == ("C3982", ["专精特新"])
    before = rows(db)
    for body, expected in (({"industry_code": "Q9"}, (422, "bad_industry_code")),
                           ({"region_code": "99999"}, (422, "bad_region_code")),
                           ({"last_year_tax_fen": -1}, (422, "bad_tax_amount")),
                           ({"last_year_tax_fen": "1"}, (422, "validation_failed")),
                           ({"tags": ["x"] * 21}, (422, "validation_failed")),
                           ({"registered_on": (TODAY + timedelta(days=1)).isoformat()}, (422, "date_in_future"))):
        assert error(client.put(f"/api/v1/admin/enterprises/{s.id}/profile", headers=admin_h, json=body)) == expected
    person = create_subject(db)
    assert error(client.put(f"/api/v1/admin/enterprises/{person.id}/profile", headers=admin_h, json={})) == (
        422, "bad_subject_kind")
    assert error(client.put("/api/v1/admin/enterprises/999999/profile", headers=admin_h, json={})) == (
        404, "subject_not_found")
    assert rows(db) == before
    assert policies.profile_of(db, s.id).tags == ("专精特新",)
