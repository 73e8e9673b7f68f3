"""/api/v1 offers: the demo's whole story over HTTP (免申即享 from publishing to receipt), one-click answers, who
may click, illegal moves as 409 naming the state, and bad input that writes nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import checks, demo, demo_policies, policies
from handlers.models import Disbursement, Notice, Offer, Policy, Role

from ..conftest import KEYS, auth_headers, count, create_account, create_organisation, create_subject

TODAY = checks.today()


def error(r):
    return r.status_code, r.json["error"]["code"]


def login(client, account: str) -> dict:
    r = client.post("/api/v1/session/demo", json={"account": account})
    assert r.status_code == 201, r.json
    return {"Authorization": f"Bearer {r.json['token']}"}


def test_the_demo_story(make_app, db):
    """An admin publishes a subsidy, the matched enterprises get the push, an enterprise confirms with one click,
    the admin disburses, the enterprise confirms receipt with one click."""
    world = demo.seed(db, KEYS)
    db.flush()
    client = make_app(DEMO=True).test_client()
    admin, agent, d_agent = login(client, "admin"), login(client, "enterprise-a"), login(client, "enterprise-d")
    a_grade = world.subjects["pengcheng-electronics"]
    b_grade = world.subjects["dongjiang-materials"]

    # The seeded subsidy is a draft: not public yet, and nobody has an offer.
    [listed] = [p for p in client.get("/api/v1/admin/policies", headers=admin).json["items"]
                if p["title"] == demo_policies.TITLE]
    pid = listed["id"]
    assert listed["state"] == "draft" and client.get(f"/api/v1/policies/{pid}").status_code == 404
    assert client.get("/api/v1/me/offers", headers=agent).json["total"] == 0

    # 1. The admin publishes it: matching runs at once and every matched enterprise is pushed a notice.
    r = client.post(f"/api/v1/admin/policies/{pid}/publish", headers=admin)
    assert r.status_code == 200, r.json
    assert r.json["policy"]["state"] == "published"
    assert (r.json["match"]["offered"], r.json["match"]["notified"]) == (2, 2)
    pushed = {n.subject_id: n for n in db.scalars(select(Notice).where(Notice.kind == "offer_matched"))}
    assert set(pushed) == {a_grade.id, b_grade.id}  # not the D-grade red chemicals maker, not the logistics firm
    assert pushed[a_grade.id].body["amount"] == "143000.00"
    assert pushed[b_grade.id].body["amount"] == "47000.00"

    # 2. The enterprise sees its offer and confirms with one click (a second click changes nothing).
    mine = client.get("/api/v1/me/offers", headers=agent).json
    assert mine["total"] == 1
    offer = mine["items"][0]
    oid = offer["id"]
    assert (offer["state"], offer["amount"], offer["actions"]) == ("notified", "143000.00", ["confirm", "decline"])
    assert pushed[a_grade.id].page == f"/app/#/offers/{oid}"
    assert error(client.post(f"/api/v1/offers/{oid}/confirm", headers=d_agent)) == (403, "not_your_offer")
    r = client.post(f"/api/v1/offers/{oid}/confirm", headers=agent)
    assert r.status_code == 200, r.json
    assert (r.json["state"], r.json["repeated"]) == ("confirmed", False)
    again = client.post(f"/api/v1/offers/{oid}/confirm", headers=agent)
    assert (again.status_code, again.json["state"], again.json["repeated"]) == (200, "confirmed", True)

    # The public notice (公示) lists it, masked, without signing in.
    notice = client.get(f"/api/v1/policies/{pid}/notice").json
    assert [(i["offer_id"], i["amount"]) for i in notice["items"]] == [(oid, "143000.00")]
    assert "**" in notice["items"][0]["enterprise"] and "*" in notice["items"][0]["identifier"]

    # 3. The admin approves and pays in one batch with the payment's reference.
    r = client.post(f"/api/v1/admin/policies/{pid}/approve", headers=admin, json={"all_confirmed": True})
    assert (r.status_code, r.json["moved"], r.json["held"]) == (200, 1, 0)
    r = client.post(f"/api/v1/admin/policies/{pid}/disbursements", headers=admin,
                    json={"payment_reference": "HZGX-2026-0001", "all_approved": True})
    assert r.status_code == 201, r.json
    assert (r.json["moved"], r.json["total_fen"], r.json["payment_reference"]) == (1, 143_000_00, "HZGX-2026-0001")
    shown = client.get(f"/api/v1/offers/{oid}", headers=agent).json
    assert (shown["state"], shown["payment_reference"], shown["actions"]) == ("disbursed", "HZGX-2026-0001",
                                                                              ["receipt"])

    # 4. The enterprise confirms receipt with one click.
    r = client.post(f"/api/v1/offers/{oid}/receipt", headers=agent)
    assert (r.status_code, r.json["state"]) == (200, "received")

    # Every step told the enterprise, in order, with the offer's id and page.
    told = db.scalars(select(Notice).where(Notice.subject_id == a_grade.id, Notice.kind.like("offer_%"))
                      .order_by(Notice.id)).all()
    assert [n.kind for n in told] == ["offer_matched", "offer_confirmed", "offer_approved", "offer_disbursed",
                                      "offer_receipt"]
    assert all(n.body["offer_id"] == oid and n.page == f"/app/#/offers/{oid}" for n in told)
    assert told[3].body["payment_reference"] == "HZGX-2026-0001"
    assert told[-1].body["state"] == "received"

    # And the admin sees where the money stands.
    stats = client.get(f"/api/v1/admin/policies/{pid}/stats", headers=admin).json
    assert stats["counts"]["received"] == 1 and stats["counts"]["notified"] == 1
    assert (stats["committed_fen"], stats["confirmed_fen"], stats["disbursed_fen"], stats["received_fen"]) == (
        190_000_00, 143_000_00, 143_000_00, 143_000_00)
    assert stats["remaining_fen"] == 1_000_000_00 - 190_000_00


# --- one world for the rest -------------------------------------------------------------------------------

@pytest.fixture
def world(db, platform_admin):
    dept_admin = create_account(db, "dept-admin", role=None)
    dept = create_organisation(db, "惠州市工业和信息化局", kind="department", admin=dept_admin)
    subject = create_subject(db, kind="enterprise", grade="A")
    agent = create_account(db, role=Role.enterprise_agent, subject=subject)
    p = policies.create_policy(db, dept_admin, dept.id, title="研发奖励", amount_rule={"fixed_fen": 5_000_00},
                               notice_from=TODAY, notice_until=TODAY + timedelta(days=7),
                               confirm_until=TODAY + timedelta(days=30))
    policies.publish_policy(db, dept_admin, p.id)
    offer = db.scalar(select(Offer).where(Offer.policy_id == p.id))
    return type("World", (), {"dept_admin": dept_admin, "dept": dept, "subject": subject, "agent": agent, "policy": p,
                                  "offer": offer, "admin": platform_admin})


def rows(db):
    return count(db, Offer), count(db, Notice), count(db, Disbursement), count(db, Policy)


def test_anonymous_and_strangers(client, db, world):
    oid = world.offer.id
    for path in (f"/api/v1/offers/{oid}/confirm", f"/api/v1/offers/{oid}/decline", f"/api/v1/offers/{oid}/receipt"):
        assert error(client.post(path)) == (401, "not_authenticated")
    assert error(client.get("/api/v1/me/offers")) == (401, "not_authenticated")
    stranger = create_account(db, role=Role.enterprise_agent, subject=create_subject(db, kind="enterprise"))
    h = auth_headers(db, stranger)
    before = rows(db)
    assert error(client.post(f"/api/v1/offers/{oid}/confirm", headers=h)) == (403, "not_your_offer")
    assert error(client.get(f"/api/v1/offers/{oid}", headers=h)) == (403, "not_your_offer")
    assert error(client.post(f"/api/v1/offers/{oid}/confirm", headers=auth_headers(db, world.dept_admin))) == (
        403, "not_your_offer")
    assert error(client.post(f"/api/v1/admin/offers/{oid}/cancel", headers=h, json={"note": "x"})) == (
        403, "forbidden")
    assert error(client.post("/api/v1/offers/999999/confirm", headers=h)) == (404, "offer_not_found")
    assert rows(db) == before
    assert client.get("/api/v1/me/offers", headers=h).json["total"] == 0


def test_illegal_moves_are_409_with_the_state(client, db, world):
    h = auth_headers(db, world.agent)
    oid = world.offer.id
    before = rows(db)
    r = client.post(f"/api/v1/offers/{oid}/receipt", headers=h)
    assert error(r) == (409, "illegal_transition")
    assert r.json["error"]["detail"] == {"state": "notified", "action": "receipt"}
    assert rows(db) == before
    assert client.post(f"/api/v1/offers/{oid}/decline", headers=h, json={"note": "今年不需要"}).json["state"] == (
        "declined")
    r = client.post(f"/api/v1/offers/{oid}/confirm", headers=h)
    assert (error(r), r.json["error"]["detail"]) == ((409, "illegal_transition"),
                                                    {"state": "declined", "action": "confirm"})
    admin = auth_headers(db, world.dept_admin)
    r = client.post(f"/api/v1/admin/policies/{world.policy.id}/approve", headers=admin, json={"offer_ids": [oid]})
    assert error(r) == (409, "offers_not_ready")
    assert r.json["error"]["detail"]["offers"] == [{"id": oid, "state": "declined"}]


def test_an_expired_offer(client, db, world):
    world.policy.confirm_until = TODAY - timedelta(days=1)
    db.flush()
    h = auth_headers(db, world.agent)
    before = rows(db)
    r = client.post(f"/api/v1/offers/{world.offer.id}/confirm", headers=h)
    assert error(r) == (409, "offer_expired")
    assert r.json["error"]["detail"]["confirm_until"] == (TODAY - timedelta(days=1)).isoformat()
    assert rows(db) == before
    assert client.get(f"/api/v1/offers/{world.offer.id}", headers=h).json["deadline_passed"] is True


def test_bad_input(client, db, world):
    h = auth_headers(db, world.agent)
    admin = auth_headers(db, world.dept_admin)
    oid, pid = world.offer.id, world.policy.id
    before = rows(db)
    cases = [
        (client.post(f"/api/v1/offers/{oid}/decline", headers=h, json={"note": "x" * 501}), (422, "bad_text")),
        (client.post(f"/api/v1/offers/{oid}/decline", headers=h, json={"note": 5}), (422, "validation_failed")),
        (client.post(f"/api/v1/offers/{oid}/decline", headers=h, data="{", content_type="application/json"),
         (400, "malformed_json")),
        (client.get("/api/v1/me/offers?state=paid", headers=h), (422, "bad_status")),
        (client.get("/api/v1/me/offers?limit=0", headers=h), (422, "validation_failed")),
        (client.post(f"/api/v1/admin/offers/{oid}/cancel", headers=admin, json={}), (422, "validation_failed")),
        (client.post(f"/api/v1/admin/offers/{oid}/cancel", headers=admin, json={"note": " "}), (422, "bad_text")),
        (client.post(f"/api/v1/admin/offers/{oid}/release", headers=admin), (409, "illegal_transition")),
        (client.post(f"/api/v1/admin/policies/{pid}/approve", headers=admin, json={}), (422, "bad_offer_selection")),
        (client.post(f"/api/v1/admin/policies/{pid}/approve", headers=admin, json={"offer_ids": ["1"]}),
         (422, "validation_failed")),
        (client.post(f"/api/v1/admin/policies/{pid}/disbursements", headers=admin,
                     json={"payment_reference": "P 1", "all_approved": True}), (422, "bad_payment_reference")),
        (client.post(f"/api/v1/admin/policies/{pid}/disbursements", headers=admin, json={"all_approved": True}),
         (422, "validation_failed")),
        (client.post(f"/api/v1/admin/policies/{pid}/disbursements", headers=admin,
                     json={"payment_reference": "P1", "all_approved": True}), (409, "offers_not_ready")),
    ]
    for r, expected in cases:
        assert error(r) == expected, (r.request.path, r.json)
        assert r.json["error"]["message"]
    assert rows(db) == before


def test_my_offers_by_state_and_admin_actions(client, db, world):
    h = auth_headers(db, world.agent)
    oid = world.offer.id
    assert client.get("/api/v1/me/offers?state=notified", headers=h).json["total"] == 1
    assert client.get("/api/v1/me/offers?state=confirmed", headers=h).json["total"] == 0
    from handlers.colours import refresh
    from handlers.models import CreditRecord
    db.add(CreditRecord(subject_id=world.subject.id, kind="bad", category_code="administrative_penalty",
                        source="test", external_id="p-1", effective_on=TODAY))
    refresh(db, world.subject)
    db.flush()
    r = client.post(f"/api/v1/offers/{oid}/confirm", headers=h)
    assert (r.json["state"], r.json["reason"], r.json["reason_text"]) == ("held", "credit_red",
                                                                          "信用码为红码（存在失信记录）")
    admin = auth_headers(db, world.dept_admin)
    assert client.get(f"/api/v1/offers/{oid}", headers=admin).json["actions"] == ["release", "cancel"]
    assert error(client.post(f"/api/v1/admin/offers/{oid}/release", headers=admin)) == (409, "still_ineligible")
    r = client.post(f"/api/v1/admin/offers/{oid}/cancel", headers=admin, json={"note": "经核实不符合条件"})
    assert (r.status_code, r.json["state"], r.json["note"]) == (200, "cancelled", "经核实不符合条件")
    page = client.get(f"/api/v1/admin/policies/{world.policy.id}/offers?state=cancelled", headers=admin).json
    assert [i["id"] for i in page["items"]] == [oid]
