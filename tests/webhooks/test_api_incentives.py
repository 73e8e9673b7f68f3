"""/api/v1 incentives: the role matrix, bad input that writes nothing, the catalogue and the measures for me."""
import uuid

import pytest

from handlers import redemptions
from handlers.models import Incentive, IncentiveClerk, Role, Status

from ..conftest import (
    add_record, auth_headers, count, create_account, create_incentive, create_organisation, create_subject,
    issue_token,
)

SHUTTLE = {"title": "西湖观光车免费乘坐", "scenario": "tourism", "eligible_colours": ["green"],
           "eligible_kinds": ["person"], "limit_count": 1, "limit_period": "day", "venues": ["西湖东门"]}


@pytest.fixture
def clerk_a(db, org_a):
    return create_account(db, "clerk-a", role=Role.clerk, organisation_id=org_a.id)


@pytest.fixture
def measure(db, org_a):
    return create_incentive(db, org_a)


def rows(db):
    return count(db, Incentive), count(db, IncentiveClerk)


def error(r):
    return r.status_code, r.json["error"]["code"]


def test_publish_show_edit_close_reopen(client, db, admin_a, org_a, clerk_a):
    h = auth_headers(db, admin_a)
    r = client.post(f"/api/v1/organisations/{org_a.id}/incentives", headers=h,
                    json={**SHUTTLE, "stock_total": 100, "valid_from": "2026-01-01", "clerk_ids": [clerk_a.id]})
    assert r.status_code == 201, r.json
    body = r.json
    assert body["organisation"] == {"id": org_a.id, "name": "西湖景区管理处"}
    assert (body["scenario"], body["scenario_name"], body["status"]) == ("tourism", "景点旅游", "open")
    assert (body["limit_count"], body["limit_period"]) == (1, "day")
    assert (body["stock_total"], body["stock_remaining"]) == (100, 100)
    assert body["valid_from"] == "2026-01-01" and body["valid_until"] is None
    assert body["venues"] == ["西湖东门"] and body["clerk_ids"] == [clerk_a.id] and body["stock_used"] == 0
    iid = body["id"]

    public = client.get(f"/api/v1/incentives/{iid}").json
    assert public["title"] == SHUTTLE["title"] and public["stock_remaining"] == 100
    assert "clerk_ids" not in public and "stock_used" not in public
    assert "clerk_ids" not in client.get(f"/api/v1/incentives/{iid}", headers=auth_headers(db, clerk_a)).json

    r = client.patch(f"/api/v1/incentives/{iid}", headers=h,
                     json={"title": "观光车", "stock_total": None, "clerk_ids": [], "valid_from": None})
    assert r.status_code == 200, r.json
    assert (r.json["title"], r.json["stock_total"], r.json["stock_remaining"], r.json["clerk_ids"]) == (
        "观光车", None, None, [])
    assert r.json["limit_count"] == 1  # untouched fields stay

    r = client.post(f"/api/v1/incentives/{iid}/close", headers=h)
    assert (r.status_code, r.json["status"], r.json["open_now"]) == (200, "closed", False)
    assert client.post(f"/api/v1/incentives/{iid}/close", headers=h).json["status"] == "closed"
    r = client.post(f"/api/v1/incentives/{iid}/reopen", headers=h)
    assert (r.status_code, r.json["status"], r.json["open_now"]) == (200, "open", True)
    db.expire_all()
    assert db.get(Incentive, iid).title == "观光车"


def test_anonymous_writes_are_401_and_write_nothing(client, db, org_a, measure):
    before = rows(db)
    assert error(client.post(f"/api/v1/organisations/{org_a.id}/incentives", json=SHUTTLE)) == (
        401, "not_authenticated")
    assert error(client.patch(f"/api/v1/incentives/{measure.id}", json={"title": "x"})) == (401, "not_authenticated")
    assert error(client.post(f"/api/v1/incentives/{measure.id}/close")) == (401, "not_authenticated")
    assert error(client.post(f"/api/v1/incentives/{measure.id}/reopen")) == (401, "not_authenticated")
    assert error(client.get(f"/api/v1/organisations/{org_a.id}/incentives")) == (401, "not_authenticated")
    assert error(client.get("/api/v1/me/incentives")) == (401, "not_authenticated")
    assert rows(db) == before


@pytest.mark.parametrize("who", ["citizen", "admin_b", "clerk_a"])
def test_outsiders_and_clerks_are_403_and_write_nothing(client, db, request, org_a, org_b, measure, who):
    h = auth_headers(db, request.getfixturevalue(who))
    before = rows(db)
    assert error(client.post(f"/api/v1/organisations/{org_a.id}/incentives", headers=h, json=SHUTTLE)) == (
        403, "forbidden")
    assert error(client.patch(f"/api/v1/incentives/{measure.id}", headers=h, json={"title": "x"})) == (
        403, "forbidden")
    assert error(client.post(f"/api/v1/incentives/{measure.id}/close", headers=h)) == (403, "forbidden")
    assert rows(db) == before
    db.expire_all()
    assert db.get(Incentive, measure.id).status.value == "open"


def test_a_platform_admin_may_publish_anywhere(client, db, org_a, platform_admin):
    r = client.post(f"/api/v1/organisations/{org_a.id}/incentives", headers=auth_headers(db, platform_admin),
                    json=SHUTTLE)
    assert r.status_code == 201 and "clerk_ids" in r.json


@pytest.mark.parametrize("status", [Status.pending, Status.suspended])
def test_an_organisation_not_approved_is_refused(client, db, admin_a, status):
    org = create_organisation(db, "待审核", status=status, admin=admin_a)
    before = rows(db)
    r = client.post(f"/api/v1/organisations/{org.id}/incentives", headers=auth_headers(db, admin_a), json=SHUTTLE)
    assert error(r) == (409, "organisation_not_active") and rows(db) == before


def test_pending_account_and_unknown_ids(client, db, admin_a, org_a):
    pending = create_account(db, status=Status.pending)
    r = client.post(f"/api/v1/organisations/{org_a.id}/incentives", headers=auth_headers(db, pending), json=SHUTTLE)
    assert error(r) == (403, "account_not_active")
    h = auth_headers(db, admin_a)
    assert error(client.post("/api/v1/organisations/999999/incentives", headers=h, json=SHUTTLE)) == (
        404, "organisation_not_found")
    assert error(client.patch("/api/v1/incentives/999999", headers=h, json={"title": "x"})) == (
        404, "incentive_not_found")
    assert error(client.get("/api/v1/incentives/999999")) == (404, "incentive_not_found")


BAD_BODIES = [
    ({"scenario": "shopping"}, 422, "bad_scenario"),
    ({"eligible_colours": []}, 422, "bad_eligible_colours"),
    ({"eligible_colours": ["purple"]}, 422, "bad_eligible_colours"),
    ({"eligible_kinds": ["alien"]}, 422, "bad_eligible_kinds"),
    ({"min_grade": "Z", "eligible_kinds": ["enterprise"]}, 422, "bad_grade"),
    ({"min_grade": "A"}, 422, "min_grade_not_applicable"),
    ({"limit_period": None}, 422, "limit_incomplete"),
    ({"limit_count": None}, 422, "limit_incomplete"),
    ({"limit_count": 0}, 422, "bad_limit_count"),
    ({"limit_period": "fortnight"}, 422, "bad_limit_period"),
    ({"stock_total": -5}, 422, "bad_stock"),
    ({"valid_from": "2026-06-01", "valid_until": "2026-05-01"}, 422, "dates_out_of_order"),
    ({"valid_from": "01/06/2026"}, 422, "validation_failed"),
    ({"venues": ["地点"] * 51}, 422, "bad_venues"),
    ({"venues": ["长" * 101]}, 422, "bad_venues"),
    ({"title": ""}, 422, "bad_text"),
    ({"title": "长" * 101}, 422, "bad_text"),
    ({"limit_count": "1"}, 422, "validation_failed"),
    ({"status": "closed"}, 422, "validation_failed"),
    ({"clerk_ids": [999999]}, 422, "bad_incentive_clerk"),
]


@pytest.mark.parametrize("change, status, code", BAD_BODIES)
def test_bad_bodies_on_create_write_nothing(client, db, admin_a, org_a, change, status, code):
    before = rows(db)
    r = client.post(f"/api/v1/organisations/{org_a.id}/incentives", headers=auth_headers(db, admin_a),
                    json={**SHUTTLE, **change})
    assert error(r) == (status, code)
    assert rows(db) == before


@pytest.mark.parametrize("change, status, code", BAD_BODIES)
def test_bad_bodies_on_edit_change_nothing(client, db, admin_a, org_a, measure, change, status, code):
    before = client.get(f"/api/v1/incentives/{measure.id}").json
    r = client.patch(f"/api/v1/incentives/{measure.id}", headers=auth_headers(db, admin_a), json=change)
    assert error(r) == (status, code)
    assert client.get(f"/api/v1/incentives/{measure.id}").json == before


@pytest.mark.parametrize("missing", ["title", "scenario", "eligible_colours", "eligible_kinds"])
def test_missing_fields(client, db, admin_a, org_a, missing):
    body = {k: v for k, v in SHUTTLE.items() if k != missing}
    r = client.post(f"/api/v1/organisations/{org_a.id}/incentives", headers=auth_headers(db, admin_a), json=body)
    assert error(r) == (422, "validation_failed") and missing in r.json["error"]["fields"]
    assert rows(db) == (0, 0)


def test_wrong_content_type_and_malformed_json(client, db, admin_a, org_a, measure):
    h = auth_headers(db, admin_a)
    url = f"/api/v1/organisations/{org_a.id}/incentives"
    before = rows(db)
    r = client.post(url, headers=h, data="title=x", content_type="application/x-www-form-urlencoded")
    assert error(r) == (415, "unsupported_media_type")
    r = client.patch(f"/api/v1/incentives/{measure.id}", headers=h, data="title=x", content_type="text/plain")
    assert error(r) == (415, "unsupported_media_type")
    r = client.post(url, headers=h, data="{not json", content_type="application/json")
    assert error(r) == (400, "malformed_json")
    assert rows(db) == before


def test_stock_below_used_is_a_conflict(client, db, admin_a, org_a):
    i = create_incentive(db, org_a, stock_total=10, stock_used=6)
    r = client.patch(f"/api/v1/incentives/{i.id}", headers=auth_headers(db, admin_a), json={"stock_total": 5})
    assert error(r) == (409, "stock_below_used") and r.json["error"]["detail"] == {"stock_used": 6}
    db.expire_all()
    assert db.get(Incentive, i.id).stock_total == 10


def test_a_clerk_of_another_organisation_is_refused(client, db, admin_a, org_a, org_b):
    other = create_account(db, role=Role.clerk, organisation_id=org_b.id)
    r = client.post(f"/api/v1/organisations/{org_a.id}/incentives", headers=auth_headers(db, admin_a),
                    json={**SHUTTLE, "clerk_ids": [other.id]})
    assert error(r) == (422, "bad_incentive_clerk") and rows(db) == (0, 0)


def test_an_admin_of_b_cannot_touch_a_but_manages_b(client, db, admin_b, org_a, org_b, measure):
    h = auth_headers(db, admin_b)
    assert error(client.post(f"/api/v1/incentives/{measure.id}/reopen", headers=h)) == (403, "forbidden")
    assert error(client.get(f"/api/v1/organisations/{org_a.id}/incentives", headers=h)) == (403, "forbidden")
    assert client.post(f"/api/v1/organisations/{org_b.id}/incentives", headers=h, json=SHUTTLE).status_code == 201


def test_the_organisation_list_for_its_clerks(client, db, admin_a, org_a, clerk_a):
    everyone = create_incentive(db, org_a)
    others_only = create_incentive(db, org_a, title="仅限指定核销员")
    others_only.clerks.append(IncentiveClerk(account_id=admin_a.id))
    closed = create_incentive(db, org_a, title="已关闭", status="closed")
    db.flush()
    r = client.get(f"/api/v1/organisations/{org_a.id}/incentives", headers=auth_headers(db, clerk_a))
    assert r.status_code == 200 and r.json["total"] == 3
    assert [(i["id"], i["can_redeem"]) for i in r.json["items"]] == [
        (everyone.id, True), (others_only.id, False), (closed.id, True)]
    assert "clerk_ids" not in r.json["items"][0]
    r = client.get(f"/api/v1/organisations/{org_a.id}/incentives?status=closed", headers=auth_headers(db, admin_a))
    assert [i["id"] for i in r.json["items"]] == [closed.id] and r.json["items"][0]["clerk_ids"] == []


def test_the_public_catalogue(client, db, org_a):
    shuttle = create_incentive(db, org_a)
    library = create_incentive(db, org_a, title="慈云图书馆一次借15本", scenario="library")
    create_incentive(db, org_a, title="已关闭", status="closed")
    create_incentive(db, create_organisation(db, "待审核", status=Status.pending), title="待审核机构的")
    r = client.get("/api/v1/incentives")
    assert r.status_code == 200 and [i["id"] for i in r.json["items"]] == [shuttle.id, library.id]
    assert "clerk_ids" not in r.json["items"][0]
    assert [i["id"] for i in client.get("/api/v1/incentives?scenario=library").json["items"]] == [library.id]
    assert error(client.get("/api/v1/incentives?scenario=shopping")) == (422, "bad_scenario")
    assert error(client.get("/api/v1/incentives?limit=0")) == (422, "validation_failed")


def test_a_measure_of_a_pending_organisation_is_not_public(client, db, admin_a):
    org = create_organisation(db, "待审核", status=Status.pending, admin=admin_a)
    i = create_incentive(db, org)
    assert error(client.get(f"/api/v1/incentives/{i.id}")) == (404, "incentive_not_found")
    assert client.get(f"/api/v1/incentives/{i.id}", headers=auth_headers(db, admin_a)).status_code == 200


# --- measures for me -----------------------------------------------------------------------------------

@pytest.fixture
def town(db, org_a, clerk_a):
    park = create_organisation(db, "产业园", kind="enterprise")
    return {
        "shuttle": create_incentive(db, org_a),
        "library": create_incentive(db, org_a, title="慈云图书馆一次借15本", scenario="library",
                                    limit_count=None, limit_period=None),
        "rent": create_incentive(db, park, title="入园租金减免", scenario="housing", eligible_colours=["green", "blue"],
                                 eligible_kinds=["enterprise"], min_grade="A", limit_count=None, limit_period=None,
                                 stock_total=3),
    }


def _titles(entries):
    return [(e["incentive"]["title"], e["reason"]) for e in entries]


def test_for_a_green_citizen(client, db, keyring, town, clerk_a):
    subject = create_subject(db)
    add_record(db, subject, kind="honour")
    me = create_account(db, subject=subject)
    v = redemptions.redeem(db, keyring, clerk_a, issue_token(db, keyring, subject), town["shuttle"].id,
                           idempotency_key=uuid.uuid4().hex, venue="西湖东门")
    assert v.status == "redeemed"
    r = client.get("/api/v1/me/incentives", headers=auth_headers(db, me))
    assert r.status_code == 200, r.json
    assert r.json["subject"]["colour"] == "green" and r.json["subject"]["kind"] == "person"
    assert _titles(r.json["usable"]) == [("慈云图书馆一次借15本", None)]
    assert _titles(r.json["not_usable"]) == [("西湖观光车免费乘坐", "limit_reached"), ("入园租金减免", "kind_not_eligible")]
    shuttle = r.json["not_usable"][0]
    assert shuttle["usable"] is False and shuttle["message"]
    assert shuttle["remaining"] == {"quota": 0, "period": "day", "stock": None}
    [recent] = shuttle["recent_redemptions"]
    assert (recent["id"], recent["status"], recent["venue"]) == (v.redemption_id, "redeemed", "西湖东门")
    r = client.get("/api/v1/me/incentives?scenario=library", headers=auth_headers(db, me))
    assert _titles(r.json["usable"]) == [("慈云图书馆一次借15本", None)] and r.json["not_usable"] == []


def test_for_a_red_citizen(client, db, town):
    subject = create_subject(db)
    add_record(db, subject, kind="bad")
    r = client.get("/api/v1/me/incentives", headers=auth_headers(db, create_account(db, subject=subject)))
    assert r.json["subject"]["colour"] == "red" and r.json["usable"] == []
    assert {e["reason"] for e in r.json["not_usable"]} == {"colour_not_eligible"}


def test_for_an_a_grade_enterprise(client, db, town):
    ent = create_subject(db, kind="enterprise", grade="A")
    agent = create_account(db, role=Role.enterprise_agent, subject=ent)
    h = auth_headers(db, agent)
    r = client.get(f"/api/v1/me/incentives?subject_id={ent.id}", headers=h)
    assert r.status_code == 200, r.json
    assert r.json["subject"] == {"id": ent.id, "kind": "enterprise", "name": ent.name_masked, "colour": "blue",
                                 "grade": "A"}
    assert _titles(r.json["usable"]) == [("入园租金减免", None)]
    assert r.json["usable"][0]["remaining"] == {"quota": None, "period": None, "stock": 3}
    assert {e["reason"] for e in r.json["not_usable"]} == {"colour_not_eligible"}
    # without subject_id an agent has no subject of their own; someone else's enterprise is not found
    assert error(client.get("/api/v1/me/incentives", headers=h)) == (409, "no_subject")
    other = create_subject(db, kind="enterprise")
    assert error(client.get(f"/api/v1/me/incentives?subject_id={other.id}", headers=h)) == (404, "subject_not_found")
    assert error(client.get("/api/v1/me/incentives?scenario=shopping",
                            headers=auth_headers(db, create_account(db, subject=create_subject(db))))) == (
        422, "bad_scenario")


def test_openapi_documents_the_incentive_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json
    assert {"/api/v1/organisations/{organisation_id}/incentives", "/api/v1/incentives",
            "/api/v1/incentives/{incentive_id}", "/api/v1/incentives/{incentive_id}/close",
            "/api/v1/incentives/{incentive_id}/reopen", "/api/v1/me/incentives"} <= set(spec["paths"])
    post = spec["paths"]["/api/v1/organisations/{organisation_id}/incentives"]["post"]
    assert post["security"] == [{"bearer": []}] and {"401", "403", "409", "422"} <= set(post["responses"])
    assert "security" not in spec["paths"]["/api/v1/incentives"]["get"]
