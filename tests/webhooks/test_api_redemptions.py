"""Redemption over HTTP: verdicts as 200s that are committed, idempotency, voiding, bad input, the lists."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from handlers import redemptions, signing, timeutil
from handlers.models import Notice, Redemption, RedemptionStatus, Role

# Accounts sign in with bearer tokens here: no password, no slow hashing.
from ..conftest import (
    add_record, auth_headers, count, create_account, create_incentive, create_organisation, create_subject,
)


class World:
    """The West Lake shuttle: its organisation, admin and clerk, a green and a red citizen."""

    def __init__(self, db, client):
        self.db, self.client = db, client
        self.org = create_organisation(db, "西湖景区观光车")
        self.admin = create_account(db, password=None, role=Role.org_admin, organisation_id=self.org.id)
        self.clerk = create_account(db, password=None, role=Role.clerk, organisation_id=self.org.id)
        self.clerk_headers = auth_headers(db, self.clerk)
        self.incentive = create_incentive(db, self.org)  # green persons, once a day
        self.green = create_subject(db, name="李四海")
        add_record(db, self.green, kind="honour")
        self.red = create_subject(db, name="王五洋")
        add_record(db, self.red, kind="bad")
        self.green_headers = auth_headers(db, create_account(db, password=None, subject=self.green))
        self.red_headers = auth_headers(db, create_account(db, password=None, subject=self.red))

    def token(self, headers=None) -> str:
        r = self.client.post("/api/v1/codes", headers=headers or self.green_headers)
        assert r.status_code == 200, r.json
        return r.json["tokens"][0]["token"]

    def redeem(self, token, *, headers=None, incentive_id=None, key=None, **extra):
        return self.client.post("/api/v1/redemptions", headers=headers or self.clerk_headers, json={
            "token": token, "incentive_id": incentive_id or self.incentive.id,
            "idempotency_key": key or uuid.uuid4().hex, **extra})


@pytest.fixture
def world(db, client):
    return World(db, client)


def verdicts(status, reason):
    return REGISTRY.get_sample_value("xinma_redemptions_total", {"status": status, "reason": reason}) or 0


def stored(db, redemption_id) -> Redemption:
    return db.scalar(select(Redemption).where(Redemption.id == redemption_id).execution_options(populate_existing=True))


def test_a_green_citizen_rides_the_shuttle(world, db):
    before = verdicts("redeemed", "none")
    r = world.redeem(world.token(), venue="断桥站")
    assert r.status_code == 200, r.json
    v = r.json
    assert (v["status"], v["reason"], v["message"]) == ("redeemed", None, "核销成功")
    # A clerk sees a masked name, the colour now, the kind and grade: nothing more.
    assert v["subject"] == {"name": world.green.name_masked, "colour": "green", "kind": "person", "grade": None}
    assert v["incentive"]["title"] == "西湖观光车免费乘坐" and v["incentive"]["organisation"] == "西湖景区观光车"
    assert v["remaining"] == {"quota": 0, "period": "day", "stock": None}
    row = stored(db, v["redemption_id"])
    assert (row.status, row.venue, row.clerk_id) == (RedemptionStatus.redeemed, "断桥站", world.clerk.id)
    assert db.scalar(select(Notice).where(Notice.subject_id == world.green.id)).kind == "redemption"
    assert verdicts("redeemed", "none") == before + 1
    assert REGISTRY.get_sample_value("xinma_redeem_duration_seconds_count") >= 1


def test_a_red_citizen_is_refused_and_the_refusal_is_committed(world, db):
    before = verdicts("rejected", "colour_not_eligible")
    r = world.redeem(world.token(world.red_headers))
    assert r.status_code == 200
    assert (r.json["status"], r.json["reason"]) == ("rejected", "colour_not_eligible")
    assert r.json["message"] == redemptions.REASONS["colour_not_eligible"]
    assert r.json["subject"]["colour"] == "red"
    assert stored(db, r.json["redemption_id"]).status == RedemptionStatus.rejected
    assert verdicts("rejected", "colour_not_eligible") == before + 1


def test_a_code_used_once_is_replayed_the_second_time(world):
    world.incentive.limit_count = 5
    token = world.token()
    assert world.redeem(token).json["status"] == "redeemed"
    r = world.redeem(token)
    assert (r.status_code, r.json["status"], r.json["reason"]) == (200, "rejected", "replayed")


def test_a_retry_with_the_same_key_returns_the_first_verdict_and_writes_nothing(world, db):
    token = world.token()
    first = world.redeem(token, key="scan-0001")
    rows = count(db, Redemption)
    again = world.redeem(token, key="scan-0001")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["redemption_id"] == first.json["redemption_id"]
    assert (again.json["status"], again.json["reason"]) == ("redeemed", None)
    assert count(db, Redemption) == rows


def test_void_within_ten_minutes_gives_the_ride_back(world, db):
    v = world.redeem(world.token()).json
    r = world.client.post(f"/api/v1/redemptions/{v['redemption_id']}/void", headers=world.clerk_headers)
    assert r.status_code == 200, r.json
    assert r.json["status"] == "voided" and r.json["voided_at"]
    assert stored(db, v["redemption_id"]).voided_by_id == world.clerk.id
    assert world.redeem(world.token()).json["status"] == "redeemed"  # the day's quota came back

    again = world.client.post(f"/api/v1/redemptions/{v['redemption_id']}/void", headers=world.clerk_headers)
    assert (again.status_code, again.json["error"]["code"]) == (409, "not_voidable")
    other = create_organisation(db, "慈云图书馆")
    stranger = auth_headers(db, create_account(db, password=None, role=Role.clerk, organisation_id=other.id))
    r = world.client.post(f"/api/v1/redemptions/{v['redemption_id']}/void", headers=stranger)
    assert (r.status_code, r.json["error"]["code"]) == (404, "redemption_not_found")
    r = world.client.post(f"/api/v1/redemptions/{v['redemption_id']}/void", headers=world.green_headers)
    assert (r.status_code, r.json["error"]["code"]) == (403, "not_a_clerk")
    assert world.client.post("/api/v1/redemptions/999999999/void", headers=world.clerk_headers).status_code == 404


def test_void_after_ten_minutes_is_refused(world, db):
    v = world.redeem(world.token()).json
    row = stored(db, v["redemption_id"])
    row.created_at = timeutil.now() - timedelta(minutes=11)
    db.flush()
    r = world.client.post(f"/api/v1/redemptions/{v['redemption_id']}/void", headers=world.clerk_headers)
    assert (r.status_code, r.json["error"]["code"]) == (409, "void_window_passed")


@pytest.mark.parametrize("path", ["/api/v1/redemptions", "/api/v1/scans/check"])
def test_only_clerks_scan(world, db, path):
    body = {"token": world.token(), "incentive_id": world.incentive.id}
    if path.endswith("redemptions"):
        body["idempotency_key"] = "k"
    for headers in (world.green_headers, auth_headers(db, create_account(db, password=None, role=Role.platform_admin))):
        r = world.client.post(path, headers=headers, json=body)
        assert (r.status_code, r.json["error"]["code"]) == (403, "not_a_clerk")
    assert world.client.post(path, json=body).status_code == 401
    assert count(db, Redemption) == 0


def test_an_org_admin_may_scan_too(world, db):
    r = world.redeem(world.token(), headers=auth_headers(db, world.admin))
    assert r.json["status"] == "redeemed"


def test_a_clerk_of_another_organisation_gets_not_your_incentive(world, db):
    other = create_organisation(db, "慈云图书馆")
    stranger = auth_headers(db, create_account(db, password=None, role=Role.clerk, organisation_id=other.id))
    r = world.redeem(world.token(), headers=stranger)
    assert (r.status_code, r.json["status"], r.json["reason"]) == (200, "rejected", "not_your_incentive")


def test_unknown_incentive_is_404(world):
    r = world.redeem(world.token(), incentive_id=987654321)
    assert (r.status_code, r.json["error"]["code"]) == (404, "incentive_not_found")


def _flipped(token: str) -> str:
    from base45 import b45decode, b45encode
    raw = bytearray(b45decode(token[3:]))
    raw[40] ^= 0x01
    return "XM:" + b45encode(bytes(raw)).decode()


GARBAGE = [
    lambda t: "", lambda t: "garbage", lambda t: "XM:", lambda t: t[:-1], lambda t: t[:60], lambda t: t + "AB",
    lambda t: "XM:" + "A" * 132, lambda t: "XM:" + ":" * 132, lambda t: t.lower(), lambda t: "\x00" * 100,
    lambda t: "绿码" * 100, lambda t: t * 3, lambda t: "x" * 600, lambda t: "X" * 1_000_000, _flipped,
    lambda t: 12345, lambda t: None, lambda t: [t], lambda t: {"token": t},
]


def test_garbage_and_huge_tokens_are_a_verdict_or_a_422_never_a_500(world):
    valid = world.token()
    for i, make in enumerate(GARBAGE):
        token = make(valid)
        r = world.redeem(token)
        assert r.status_code in (200, 413, 422), (i, r.json)
        if r.status_code == 200:
            assert r.json["status"] == "rejected" and r.json["reason"] in redemptions.REASONS, (i, r.json)
            assert r.json["subject"] is None
        else:
            assert r.json["error"]["code"] in ("validation_failed", "payload_too_large"), (i, r.json)
        check = world.client.post("/api/v1/scans/check", headers=world.clerk_headers, json={"token": token})
        assert check.status_code in (200, 413, 422), (i, check.json)
        if check.status_code == 200:
            assert check.json["status"] == "invalid"
    assert world.redeem(valid).json["status"] == "redeemed"  # none of that used the real code


def test_huge_tokens_are_refused_by_the_schema(world):
    r = world.redeem("XM:" + "A" * 1000)
    assert (r.status_code, r.json["error"]["code"]) == (422, "validation_failed")
    assert "token" in r.json["error"]["fields"]


def test_a_scanner_line_end_is_ignored(world):
    assert world.redeem(world.token() + "\r\n").json["status"] == "redeemed"


def test_missing_fields_wrong_type_and_bad_keys(world):
    r = world.client.post("/api/v1/redemptions", headers=world.clerk_headers, json={})
    assert (r.status_code, r.json["error"]["code"]) == (422, "validation_failed")
    assert set(r.json["error"]["fields"]) == {"token", "incentive_id", "idempotency_key"}
    r = world.client.post("/api/v1/redemptions", headers=world.clerk_headers, data="token=XM:",
                          content_type="text/plain")
    assert (r.status_code, r.json["error"]["code"]) == (415, "unsupported_media_type")
    r = world.client.post("/api/v1/redemptions", headers=world.clerk_headers, data="{",
                          content_type="application/json")
    assert r.status_code == 400
    r = world.redeem(world.token(), key="no spaces allowed")
    assert (r.status_code, r.json["error"]["code"]) == (422, "bad_idempotency_key")
    r = world.redeem(world.token(), incentive_id=2**40)
    assert (r.status_code, r.json["error"]["code"]) == (422, "validation_failed")
    r = world.redeem(world.token(), venue="站" * 101)
    assert (r.status_code, r.json["error"]["code"]) == (422, "validation_failed")


def test_check_judges_without_redeeming(world, db):
    token = world.token()
    r = world.client.post("/api/v1/scans/check", headers=world.clerk_headers, json={"token": token})
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["reason"], r.json["subject"]["colour"]) == ("valid", None, "green")
    red = world.token(world.red_headers)
    r = world.client.post("/api/v1/scans/check", headers=world.clerk_headers,
                          json={"token": red, "incentive_id": world.incentive.id})
    assert (r.json["status"], r.json["reason"]) == ("invalid", "colour_not_eligible")
    r = world.client.post("/api/v1/scans/check", headers=world.clerk_headers,
                          json={"token": token, "incentive_id": 987654321})
    assert (r.status_code, r.json["error"]["code"]) == (404, "incentive_not_found")
    assert count(db, Redemption) == 0
    assert world.redeem(token).json["status"] == "redeemed"  # a check did not use the code


def test_a_clerk_of_another_organisation_cannot_check_against_a_measure_that_is_not_theirs(world, db):
    other = create_organisation(db, "慈云图书馆")
    stranger = auth_headers(db, create_account(db, password=None, role=Role.clerk, organisation_id=other.id))
    token = world.token()
    r = world.client.post("/api/v1/scans/check", headers=stranger,
                          json={"token": token, "incentive_id": world.incentive.id})
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["reason"], r.json["subject"]) == ("invalid", "not_your_incentive", None)
    # without a measure, any clerk may judge the colour
    r = world.client.post("/api/v1/scans/check", headers=stranger, json={"token": token})
    assert (r.json["status"], r.json["subject"]["colour"]) == ("valid", "green")


def test_the_holder_lists_their_own_redemptions_only(world, db):
    world.incentive.limit_count = 5
    mine = world.redeem(world.token(), venue="断桥站").json
    world.redeem(world.token(world.red_headers))
    later = world.redeem(world.token()).json
    r = world.client.get("/api/v1/me/redemptions", headers=world.green_headers)
    assert r.status_code == 200, r.json
    assert r.json["total"] == 2
    first = r.json["items"][1]
    assert [i["id"] for i in r.json["items"]] == [later["redemption_id"], mine["redemption_id"]]  # newest first
    assert {k: first[k] for k in ("status", "incentive", "organisation", "venue")} == {
        "status": "redeemed", "incentive": "西湖观光车免费乘坐", "organisation": "西湖景区观光车", "venue": "断桥站"}
    assert "clerk" not in first and "clerk_id" not in first and "subject" not in first

    red = world.client.get("/api/v1/me/redemptions?status=rejected", headers=world.red_headers).json
    assert red["total"] == 1 and red["items"][0]["reason"] == "colour_not_eligible"
    assert world.client.get("/api/v1/me/redemptions?limit=1", headers=world.green_headers).json["items"] == \
        r.json["items"][:1]
    r = world.client.get(f"/api/v1/me/redemptions?subject_id={world.red.id}", headers=world.green_headers)
    assert (r.status_code, r.json["error"]["code"]) == (404, "subject_not_found")
    assert world.client.get("/api/v1/me/redemptions?status=lost", headers=world.green_headers).status_code == 422


def test_an_agent_lists_the_enterprise_redemptions(world, db):
    enterprise = create_subject(db, kind="enterprise", grade="A")
    agent = auth_headers(db, create_account(db, password=None, role=Role.enterprise_agent, subject=enterprise))
    park = create_incentive(db, world.org, title="园区租金减免", eligible_kinds=["enterprise"],
                            eligible_colours=["green", "blue"], min_grade="A")
    token = world.client.post(f"/api/v1/codes?subject_id={enterprise.id}", headers=agent).json["tokens"][0]["token"]
    assert world.redeem(token, incentive_id=park.id).json["status"] == "redeemed"
    r = world.client.get(f"/api/v1/me/redemptions?subject_id={enterprise.id}", headers=agent)
    assert r.json["total"] == 1 and r.json["items"][0]["incentive"] == "园区租金减免"
    assert world.client.get("/api/v1/me/redemptions", headers=agent).json["total"] == 1


def test_the_organisation_lists_its_redemptions_with_totals(world, db):
    world.incentive.limit_count = 5
    library = create_incentive(db, world.org, title="图书借阅15册", scenario="library", limit_count=None)
    ok = world.redeem(world.token()).json
    world.redeem(world.token(world.red_headers))
    world.redeem(world.token(), incentive_id=library.id)
    world.client.post(f"/api/v1/redemptions/{ok['redemption_id']}/void", headers=world.clerk_headers)
    url = f"/api/v1/organisations/{world.org.id}/redemptions"

    r = world.client.get(url, headers=auth_headers(db, world.admin))
    assert r.status_code == 200, r.json
    assert r.json["total"] == 3
    assert r.json["totals"] == [
        {"incentive_id": world.incentive.id, "title": "西湖观光车免费乘坐", "redeemed": 0, "rejected": 1, "voided": 1},
        {"incentive_id": library.id, "title": "图书借阅15册", "redeemed": 1, "rejected": 0, "voided": 0},
    ]
    item = r.json["items"][-1]
    assert item["subject"] == {"name": world.green.name_masked, "colour": "green", "kind": "person", "grade": None}
    assert (item["clerk_id"], item["clerk"], item["status"]) == (world.clerk.id, world.clerk.login, "voided")

    clerk = world.client.get(f"{url}?status=rejected", headers=world.clerk_headers).json
    assert clerk["total"] == 1 and clerk["items"][0]["reason"] == "colour_not_eligible"
    assert clerk["totals"] == [{"incentive_id": world.incentive.id, "title": "西湖观光车免费乘坐",
                                "redeemed": 0, "rejected": 1, "voided": 0}]
    assert world.client.get(f"{url}?incentive_id={library.id}", headers=world.clerk_headers).json["total"] == 1
    today = timeutil.local_date(timeutil.now())
    assert world.client.get(f"{url}?date={today}", headers=world.clerk_headers).json["total"] == 3
    yesterday = today - timedelta(days=1)
    empty = world.client.get(f"{url}?date={yesterday}", headers=world.clerk_headers).json
    assert (empty["total"], empty["totals"]) == (0, [])
    assert world.client.get(f"{url}?date_from={yesterday}&date_to={today}",
                            headers=world.clerk_headers).json["total"] == 3
    assert world.client.get(f"{url}?date={today}&date_from={today}", headers=world.clerk_headers).status_code == 422

    other = create_organisation(db, "慈云图书馆")
    stranger = auth_headers(db, create_account(db, password=None, role=Role.clerk, organisation_id=other.id))
    for headers in (stranger, world.green_headers):
        r = world.client.get(url, headers=headers)
        assert (r.status_code, r.json["error"]["code"]) == (403, "forbidden")


def test_scans_have_their_own_rate_limit(make_app, db):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_SCAN="2/minute", RATELIMIT_WRITE="100/minute").test_client()
    world = World(db, client)
    token = world.token()
    assert world.redeem(token).status_code == 200
    check = client.post("/api/v1/scans/check", headers=world.clerk_headers, json={"token": token})
    assert check.status_code == 200
    r = world.redeem(token)
    assert (r.status_code, r.json["error"]["code"]) == (429, "rate_limited")
    # Other writes of the same clerk are not held up by the queue at the gate.
    first = db.scalar(select(Redemption.id).where(Redemption.clerk_id == world.clerk.id))
    assert client.post(f"/api/v1/redemptions/{first}/void", headers=world.clerk_headers).status_code == 200


def test_the_keyring_is_one_per_process(app):
    assert isinstance(app.extensions["xinma.keyring"], signing.KeyRing)
    assert app.extensions["xinma.keyring"].keys is app.extensions["xinma.keys"]


# --- the process's copy of a measure (redemptions.MeasureCache) -------------------------------------

def test_a_measure_closed_in_this_process_redeems_nothing_at_once(world, db):
    assert world.redeem(world.token()).json["status"] == "redeemed"  # the measure is now cached
    admin = auth_headers(db, world.admin)
    assert world.client.post(f"/api/v1/incentives/{world.incentive.id}/close", headers=admin).status_code == 200
    assert world.redeem(world.token()).json["reason"] == "incentive_closed"
    assert world.client.post(f"/api/v1/incentives/{world.incentive.id}/reopen", headers=admin).status_code == 200
    assert world.redeem(world.token(world.red_headers)).json["reason"] == "colour_not_eligible"  # open again


def test_a_measure_changed_by_another_process_is_seen_within_the_ttl(world, db, monkeypatch):
    import time as real_time
    from types import SimpleNamespace

    from sqlalchemy import update

    from handlers.models import Incentive, IncentiveStatus

    world.incentive.limit_count = 5
    db.flush()
    assert world.redeem(world.token()).json["status"] == "redeemed"
    # Another process closes it: a Core update, which this process's ORM does not see.
    db.execute(update(Incentive).where(Incentive.id == world.incentive.id).values(status=IncentiveStatus.closed))
    assert world.redeem(world.token()).json["status"] == "redeemed"  # the documented staleness …
    later = real_time.monotonic() + redemptions.MEASURE_TTL + 0.1
    monkeypatch.setattr(redemptions, "time", SimpleNamespace(monotonic=lambda: later,
                                                             perf_counter=real_time.perf_counter))
    assert world.redeem(world.token()).json["reason"] == "incentive_closed"  # … lasts MEASURE_TTL at most


def test_stock_shown_is_read_fresh_not_from_the_copy(world, db):
    from sqlalchemy import update

    from handlers.models import Incentive

    world.incentive.limit_count, world.incentive.stock_total = 1, 10
    db.flush()
    first = world.redeem(world.token())
    assert first.json["remaining"] == {"quota": 0, "period": "day", "stock": 9}
    db.execute(update(Incentive).where(Incentive.id == world.incentive.id).values(stock_used=4))  # elsewhere
    again = world.redeem(world.token())  # the same subject today: limit_reached, and the stock as it is
    assert again.json["reason"] == "limit_reached" and again.json["remaining"]["stock"] == 6
    red = world.redeem(world.token(world.red_headers))
    assert red.json["reason"] == "colour_not_eligible" and red.json["remaining"]["stock"] == 6


# --- what one scan costs the database ------------------------------------------------------------------

@pytest.fixture
def statements(connection):
    """The SQL statements the app sends, without the test harness's savepoints."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            seen.append(" ".join(statement.split())[:60])

    event.listen(connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection, "before_cursor_execute", record)


def test_one_redemption_is_five_statements(world, db, statements):
    """auth (token + account + grants), the handle's subject, the claim, the quota, the notice — and the
    measure once per MEASURE_TTL. A new statement on this path is a decision: change the count here and
    the round trips in docs/benchmarks.md with it."""
    world.incentive.limit_count = 1000
    db.flush()
    tokens = [world.token() for _ in range(3)]
    statements.clear()
    assert world.redeem(tokens[0]).json["status"] == "redeemed"
    assert len(statements) == 6, statements  # the measure read once, then cached
    statements.clear()
    assert world.redeem(tokens[1]).json["status"] == "redeemed"
    assert len(statements) == 5, statements
    statements.clear()
    # Replayed: auth, subject, the claim meets the first row, is it this request's key?, the rejected
    # row, the quota left (shown in the verdict).
    assert world.redeem(tokens[1]).json["reason"] == "replayed"
    assert len(statements) == 6, statements
