"""My notices, my contact points, and the admin's outbox, over HTTP."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import accounts, outbox, timeutil
from handlers.models import Channel, ContactPoint, Notice, OutboxAttempt, OutboxMessage, OutboxState, Role
from tests.conftest import KEYS, auth_headers, count, create_account, create_subject


@pytest.fixture
def person(db):
    return create_subject(db)


@pytest.fixture
def me(db, person):
    return create_account(db, "me-citizen", subject=person, password=None)


def _notices(db, subject_id, n, *, start=None, kind="redemption"):
    start = start or timeutil.now() - timedelta(hours=1)
    out = []
    for i in range(n):
        notice = outbox.notify(db, subject_id, kind, f"消息{i}", {"i": i})
        notice.created_at = start + timedelta(minutes=i)
        out.append(notice)
    db.flush()
    return out


# --- /me/notices ---

def test_my_notices_newest_first_paged_with_unread_count(client, db, me, person):
    firm = create_subject(db, kind="enterprise")
    accounts.grant(db, me, Role.enterprise_agent, subject_id=firm.id)
    stranger = create_subject(db)
    own = _notices(db, person.id, 3)
    firms = _notices(db, firm.id, 2, start=timeutil.now() - timedelta(minutes=30), kind="offer_matched")
    _notices(db, stranger.id, 2)
    h = auth_headers(db, me)
    r = client.get("/api/v1/me/notices?limit=2", headers=h)
    assert r.status_code == 200, r.json
    body = r.json
    assert (body["total"], body["unread"], body["limit"], body["offset"]) == (5, 5, 2, 0)
    assert [i["id"] for i in body["items"]] == [firms[1].id, firms[0].id]
    assert body["items"][0]["subject_id"] == firm.id and body["items"][0]["read_at"] is None
    r2 = client.get("/api/v1/me/notices?limit=2&offset=2", headers=h).json
    r3 = client.get("/api/v1/me/notices?limit=2&offset=4", headers=h).json
    assert [i["id"] for i in r2["items"] + r3["items"]] == [own[2].id, own[1].id, own[0].id]

    r = client.post(f"/api/v1/me/notices/{own[0].id}/read", headers=h)
    assert r.status_code == 200 and r.json["read_at"] is not None
    first = r.json["read_at"]
    assert client.post(f"/api/v1/me/notices/{own[0].id}/read", headers=h).json["read_at"] == first
    body = client.get("/api/v1/me/notices?unread=true&limit=50", headers=h).json
    assert body["unread"] == 4 and body["total"] == 4 and own[0].id not in [i["id"] for i in body["items"]]

    assert client.post("/api/v1/me/notices/read", headers=h).json == {"marked": 4}
    assert client.get("/api/v1/me/notices", headers=h).json["unread"] == 0


def test_someone_elses_notice_is_not_found(client, db, me):
    stranger = create_subject(db)
    theirs = _notices(db, stranger.id, 1)[0]
    h = auth_headers(db, me)
    for nid in (theirs.id, 999999):
        r = client.post(f"/api/v1/me/notices/{nid}/read", headers=h)
        assert r.status_code == 404 and r.json["error"]["code"] == "notice_not_found"
    assert db.get(Notice, theirs.id).read_at is None


def test_notices_need_a_signed_in_account_and_good_paging(client, db, me):
    assert client.get("/api/v1/me/notices").json["error"]["code"] == "not_authenticated"
    h = auth_headers(db, me)
    for q in ("limit=0", "limit=201", "offset=-1", "limit=abc", "unread=maybe"):
        r = client.get(f"/api/v1/me/notices?{q}", headers=h)
        assert r.status_code == 422 and r.json["error"]["code"] == "validation_failed", q


def test_an_account_without_subject_sees_no_notices(client, db):
    a = create_account(db, "no-subject", role=None, password=None)
    body = client.get("/api/v1/me/notices", headers=auth_headers(db, a)).json
    assert body["items"] == [] and body["total"] == 0 and body["unread"] == 0


# --- /me/contacts ---

def test_add_list_replace_remove_contacts(client, db, me):
    h = auth_headers(db, me)
    r = client.get("/api/v1/me/contacts", headers=h)
    assert r.json["items"] == [] and set(r.json["consent"]) == {"email", "mobile"}
    r = client.post("/api/v1/me/contacts", headers=h,
                    json={"kind": "email", "address": "Chen@Example.com", "consent": True})
    assert r.status_code == 201, r.json
    assert r.json["address"] == "c***@example.com" and r.json["consent_text"] == r.json["consent_text"].strip()
    r = client.post("/api/v1/me/contacts", headers=h,
                    json={"kind": "mobile", "address": "+86 138 0013 8000", "consent": True})
    assert r.json["address"] == "138****8000"
    mobile_id = r.json["id"]
    r = client.post("/api/v1/me/contacts", headers=h,
                    json={"kind": "mobile", "address": "13900139000", "consent": True})
    assert r.json["id"] == mobile_id and r.json["address"] == "139****9000"
    items = client.get("/api/v1/me/contacts", headers=h).json["items"]
    assert sorted(i["address"] for i in items) == ["139****9000", "c***@example.com"]
    assert "chen@example.com" not in str(client.get("/api/v1/me/contacts", headers=h).data)
    assert client.delete(f"/api/v1/me/contacts/{mobile_id}", headers=h).status_code == 204
    assert [i["kind"] for i in client.get("/api/v1/me/contacts", headers=h).json["items"]] == ["email"]
    r = client.delete(f"/api/v1/me/contacts/{mobile_id}", headers=h)
    assert r.status_code == 404 and r.json["error"]["code"] == "contact_not_found"


@pytest.mark.parametrize("body,status,code", [
    ({"kind": "email", "address": "x@example.com", "consent": False}, 422, "consent_required"),
    ({"kind": "email", "address": "x@example.com"}, 422, "validation_failed"),
    ({"kind": "fax", "address": "x@example.com", "consent": True}, 422, "bad_contact_kind"),
    ({"kind": "email", "address": "no at sign", "consent": True}, 422, "bad_email"),
    ({"kind": "email", "address": "a@b.cn\nBcc: c@d.cn", "consent": True}, 422, "bad_email"),
    ({"kind": "mobile", "address": "12345", "consent": True}, 422, "bad_mobile"),
    ({"kind": "mobile", "address": 13800138000, "consent": True}, 422, "validation_failed"),
    ({"kind": "mobile", "address": "1" * 5000, "consent": True}, 422, "bad_mobile"),
])
def test_bad_contacts_are_refused_and_nothing_is_written(client, db, me, body, status, code):
    h = auth_headers(db, me)
    before = count(db, ContactPoint)
    r = client.post("/api/v1/me/contacts", headers=h, json=body)
    assert r.status_code == status and r.json["error"]["code"] == code
    assert count(db, ContactPoint) == before


def test_someone_elses_contact_cannot_be_removed(client, db, me):
    other = create_account(db, "other", password=None)
    from handlers import contacts
    p = contacts.set_contact(db, KEYS, other, "email", "other@example.com", consent=True)
    r = client.delete(f"/api/v1/me/contacts/{p.id}", headers=auth_headers(db, me))
    assert r.status_code == 404 and count(db, ContactPoint) == 1


# --- /admin/outbox ---

def _message(db, *, state=OutboxState.dead, kind="redemption", channels=("template", "email")):
    m = OutboxMessage(dedupe_key=f"test:{count(db, OutboxMessage)}:{kind}", kind=kind, payload={"title": "已核销"},
                      channels=list(channels), channel_index=len(channels) - 1, channel=Channel(channels[-1]),
                      state=state, attempts=3, next_attempt_at=timeutil.now(),
                      dead_at=timeutil.now() if state == OutboxState.dead else None, last_error="email: 550")
    db.add(m)
    db.flush()
    db.add(OutboxAttempt(message_id=m.id, number=1, channel=Channel(channels[0]), outcome="next_channel",
                         errcode=43101, reply="user refuse to accept the msg", worker="w1"))
    db.flush()
    return m


def test_admin_lists_dead_messages_with_attempts_and_retries_them(client, db, platform_admin):
    dead = _message(db)
    _message(db, state=OutboxState.sent)
    h = auth_headers(db, platform_admin)
    r = client.get("/api/v1/admin/outbox?state=dead", headers=h)
    assert r.status_code == 200
    assert [i["id"] for i in r.json["items"]] == [dead.id] and r.json["items"][0]["state"] == "dead"
    assert r.json["total"] == 1
    assert client.get("/api/v1/admin/outbox", headers=h).json["total"] == 2
    d = client.get(f"/api/v1/admin/outbox/{dead.id}", headers=h).json
    assert d["attempt_log"][0]["errcode"] == 43101 and d["attempt_log"][0]["channel"] == "template"
    r = client.post(f"/api/v1/admin/outbox/{dead.id}/retry", headers=h)
    assert r.status_code == 200, r.json
    assert (r.json["state"], r.json["channel"], r.json["attempts"]) == ("pending", "template", 0)
    r = client.post(f"/api/v1/admin/outbox/{dead.id}/retry", headers=h)
    assert r.status_code == 409 and r.json["error"]["code"] == "outbox_not_retryable"
    r = client.post("/api/v1/admin/outbox/999999/retry", headers=h)
    assert r.status_code == 404 and r.json["error"]["code"] == "outbox_message_not_found"
    st = client.get("/api/v1/admin/outbox/stats", headers=h).json
    assert st["states"] == {"pending": 1, "sent": 1, "dead": 0}


def test_admin_outbox_is_for_platform_admins_only(client, db, me):
    dead = _message(db)
    h = auth_headers(db, me)
    for method, url in (("get", "/api/v1/admin/outbox?state=dead"), ("post", f"/api/v1/admin/outbox/{dead.id}/retry"),
                        ("get", f"/api/v1/admin/outbox/{dead.id}"), ("get", "/api/v1/admin/outbox/stats")):
        r = getattr(client, method)(url, headers=h)
        assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert db.scalar(select(OutboxMessage.state).where(OutboxMessage.id == dead.id)) == OutboxState.dead


def test_admin_outbox_filters_are_validated(client, db, platform_admin):
    h = auth_headers(db, platform_admin)
    for q in ("state=lost", "channel=pigeon", "limit=0"):
        r = client.get(f"/api/v1/admin/outbox?{q}", headers=h)
        assert r.status_code == 422 and r.json["error"]["code"] == "validation_failed", q


def test_ids_beyond_the_column_are_not_found(client, db, me, platform_admin):
    huge = 2**40  # beyond an INTEGER column: no route matches (webhooks.RowId), 404, not an overflow in the driver
    h, admin = auth_headers(db, me), auth_headers(db, platform_admin)
    for method, url, headers, code in (
            ("post", f"/api/v1/me/notices/{huge}/read", h, "not_found"),
            ("delete", f"/api/v1/me/contacts/{huge}", h, "not_found"),
            ("get", f"/api/v1/admin/outbox/{huge}", admin, "not_found"),
            ("post", f"/api/v1/admin/outbox/{huge}/retry", admin, "not_found"),
            ("post", f"/api/v1/me/notices/{2**31 - 1}/read", h, "notice_not_found")):
        r = getattr(client, method)(url, headers=headers)
        assert r.status_code == 404 and r.json["error"]["code"] == code, (url, r.json)
