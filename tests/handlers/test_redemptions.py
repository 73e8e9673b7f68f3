"""redeem(): every reason, idempotency, quotas, stock and voiding, called directly."""
from datetime import date, timedelta

import pytest

from handlers import redemptions, signing, timeutil
from handlers.errors import DomainError
from handlers.models import Grade, IncentiveStatus, Notice, Period, Role, Status
from sqlalchemy import func, select

from ..conftest import (
    add_record, create_account, create_incentive, create_organisation, create_subject, issue_token,
)


@pytest.fixture
def world(db):
    org = create_organisation(db)
    clerk = create_account(db, "clerk-a", role=Role.clerk, organisation_id=org.id)
    green = create_subject(db)
    add_record(db, green, kind="honour")
    red = create_subject(db)
    add_record(db, red, kind="bad")
    incentive = create_incentive(db, org)
    return org, clerk, green, red, incentive


def redeem(db, keyring, clerk, token, incentive, key=None, **kw):
    import uuid
    return redemptions.redeem(db, keyring, clerk, token, incentive.id, idempotency_key=key or uuid.uuid4().hex, **kw)


def test_green_citizen_redeems_and_is_told(db, keyring, world):
    org, clerk, green, red, incentive = world
    v = redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive)
    assert (v.status, v.reason) == ("redeemed", None)
    assert v.subject == {"name": green.name_masked, "colour": "green", "kind": "person", "grade": None}
    assert v.remaining["quota"] == 0
    assert db.scalar(select(func.count()).select_from(Notice).where(Notice.subject_id == green.id)) == 1


def test_red_citizen_is_refused(db, keyring, world):
    org, clerk, green, red, incentive = world
    v = redeem(db, keyring, clerk, issue_token(db, keyring, red), incentive)
    assert (v.status, v.reason) == ("rejected", "colour_not_eligible")
    assert v.subject["colour"] == "red"


def test_colour_now_beats_colour_in_token(db, keyring, world):
    org, clerk, green, red, incentive = world
    token = issue_token(db, keyring, green)
    add_record(db, green, kind="bad")  # turned red after the code was issued
    v = redeem(db, keyring, clerk, token, incentive)
    assert v.reason == "colour_not_eligible" and v.subject["colour"] == "red"


def test_same_token_twice_is_replayed(db, keyring, world):
    org, clerk, green, red, incentive = world
    incentive.limit_count = 5
    token = issue_token(db, keyring, green)
    assert redeem(db, keyring, clerk, token, incentive).status == "redeemed"
    assert redeem(db, keyring, clerk, token, incentive).reason == "replayed"


def test_once_a_day_across_fresh_tokens(db, keyring, world):
    org, clerk, green, red, incentive = world
    assert redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive).status == "redeemed"
    v = redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive)
    assert v.reason == "limit_reached" and v.remaining["quota"] == 0
    tomorrow = timeutil.now() + timedelta(days=1)
    token = signing.issue_codes(db, keyring, green, at=tomorrow)[0].token
    assert redeem(db, keyring, clerk, token, incentive, at=tomorrow).status == "redeemed"


def test_idempotency_key_returns_first_verdict_and_creates_nothing(db, keyring, world):
    from handlers.models import Redemption
    org, clerk, green, red, incentive = world
    token = issue_token(db, keyring, green)
    first = redeem(db, keyring, clerk, token, incentive, key="k1")
    again = redeem(db, keyring, clerk, token, incentive, key="k1")
    assert (again.status, again.redemption_id) == (first.status, first.redemption_id)
    assert db.scalar(select(func.count()).select_from(Redemption)) == 1


def test_stock_runs_out(db, keyring, world):
    org, clerk, green, red, incentive = world
    incentive.limit_count = None
    incentive.stock_total = 1
    assert redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive).remaining["stock"] == 0
    v = redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive)
    assert v.reason == "out_of_stock"


def test_out_of_stock_gives_quota_back(db, keyring, world):
    org, clerk, green, red, incentive = world
    incentive.stock_total, incentive.stock_used, incentive.limit_count = 1, 1, 3
    v = redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive)
    assert v.reason == "out_of_stock"
    assert redemptions._remaining(db, incentive, green.id, redemptions.period_key(Period.day, timeutil.now()))["quota"] == 3


@pytest.mark.parametrize("setup,reason", [
    (lambda db, o, c, i: setattr(i, "status", IncentiveStatus.closed), "incentive_closed"),
    (lambda db, o, c, i: setattr(i, "valid_until", date(2020, 1, 1)), "incentive_closed"),
    (lambda db, o, c, i: setattr(o, "status", Status.suspended), "organisation_inactive"),
    (lambda db, o, c, i: setattr(i, "eligible_kinds", ["enterprise"]), "kind_not_eligible"),
])
def test_measure_rules(db, keyring, world, setup, reason):
    org, clerk, green, red, incentive = world
    setup(db, org, clerk, incentive)
    db.flush()
    assert redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive).reason == reason


def test_clerk_of_another_organisation(db, keyring, world):
    org, clerk, green, red, incentive = world
    other = create_organisation(db, "慈云图书馆")
    stranger = create_account(db, "clerk-b", role=Role.clerk, organisation_id=other.id)
    assert redeem(db, keyring, stranger, issue_token(db, keyring, green), incentive).reason == "not_your_incentive"


def test_enterprise_grade(db, keyring, world):
    org, clerk, green, red, incentive = world
    incentive.eligible_kinds, incentive.eligible_colours, incentive.min_grade = ["enterprise"], ["green", "blue"], Grade.A
    b = create_subject(db, kind="enterprise", grade="B")
    a = create_subject(db, kind="enterprise", grade="A")
    assert redeem(db, keyring, clerk, issue_token(db, keyring, b), incentive).reason == "grade_not_eligible"
    assert redeem(db, keyring, clerk, issue_token(db, keyring, a), incentive).status == "redeemed"


def test_rotated_handle_revokes_outstanding_tokens(db, keyring, world):
    org, clerk, green, red, incentive = world
    token = issue_token(db, keyring, green)
    signing.rotate_handle(db, green)
    assert redeem(db, keyring, clerk, token, incentive).reason == "revoked"


@pytest.mark.parametrize("token,reason", [("garbage", "bad_format"), ("XM:" + "A" * 132, "bad_format")])
def test_bad_tokens(db, keyring, world, token, reason):
    org, clerk, green, red, incentive = world
    v = redeem(db, keyring, clerk, token, incentive)
    assert (v.status, v.reason, v.subject) == ("rejected", reason, None)


def test_expired_and_future_tokens(db, keyring, world):
    org, clerk, green, red, incentive = world
    old = signing.issue_codes(db, keyring, green, at=timeutil.now() - timedelta(minutes=2))[0].token
    assert redeem(db, keyring, clerk, old, incentive).reason == "expired"
    future = signing.issue_codes(db, keyring, green, count=20)[-1].token
    assert redeem(db, keyring, clerk, future, incentive).reason == "not_yet_valid"


def test_retired_key_keeps_verifying_and_new_key_signs(db, keyring, world):
    from ..conftest import KEYS
    org, clerk, green, red, incentive = world
    incentive.limit_count = 5
    token = issue_token(db, keyring, green)
    signing.create_key(db, KEYS)
    keyring.invalidate()
    assert redeem(db, keyring, clerk, token, incentive).status == "redeemed"
    new = issue_token(db, keyring, green)
    assert new != token and redeem(db, keyring, clerk, new, incentive).status == "redeemed"
    assert [k["status"] for k in signing.jwks(db)] == ["retired", "active"]


def test_void_within_ten_minutes_returns_the_quota(db, keyring, world):
    org, clerk, green, red, incentive = world
    v = redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive)
    redemptions.void(db, clerk, v.redemption_id)
    assert redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive).status == "redeemed"
    with pytest.raises(DomainError) as e:
        redemptions.void(db, clerk, v.redemption_id)
    assert e.value.code == "not_voidable"


def test_void_too_late_or_by_stranger(db, keyring, world):
    org, clerk, green, red, incentive = world
    v = redeem(db, keyring, clerk, issue_token(db, keyring, green), incentive)
    with pytest.raises(DomainError) as e:
        redemptions.void(db, clerk, v.redemption_id, at=timeutil.now() + timedelta(minutes=11))
    assert e.value.code == "void_window_passed"
    stranger = create_account(db, "clerk-c", role=Role.clerk, organisation_id=create_organisation(db, "x").id)
    with pytest.raises(DomainError) as e:
        redemptions.void(db, stranger, v.redemption_id)
    assert e.value.code == "redemption_not_found"


def test_period_keys():
    from datetime import datetime, timezone
    at = datetime(2026, 12, 31, 17, 0, tzinfo=timezone.utc)  # 2027-01-01 01:00 in Shanghai
    assert redemptions.period_key(Period.day, at) == "2027-01-01"
    assert redemptions.period_key(Period.week, at) == "2026-W53"
    assert redemptions.period_key(Period.month, at) == "2027-01"
    assert redemptions.period_key(Period.year, at) == "2027"
    assert redemptions.period_key(Period.ever, at) == "ever"
