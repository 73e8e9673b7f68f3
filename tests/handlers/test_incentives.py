"""Incentive measures: who may publish and change them, every bad field, and the measures a subject can use now."""
import uuid
from datetime import date, timedelta

import pytest

from handlers import incentives, redemptions, signing, timeutil
from handlers.errors import DomainError
from handlers.models import Incentive, IncentiveClerk, IncentiveStatus, Role, Status

from ..conftest import (
    add_record, count, create_account, create_incentive, create_organisation, create_subject, issue_token,
)

SHUTTLE = dict(title="西湖观光车免费乘坐", scenario="tourism", eligible_colours=["green"], eligible_kinds=["person"],
               limit_count=1, limit_period="day", venues=["西湖东门", "西湖西门"])


@pytest.fixture
def clerk_a(db, org_a):
    return create_account(db, "clerk-a", role=Role.clerk, organisation_id=org_a.id)


def rows(db):
    return count(db, Incentive), count(db, IncentiveClerk)


def test_an_org_admin_publishes_a_measure(db, admin_a, org_a, clerk_a):
    i = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE, description="凭绿码免费乘坐",
                                    stock_total=100, valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31),
                                    clerk_ids=[clerk_a.id, admin_a.id], min_grade=None)
    assert i.status == IncentiveStatus.open and i.created_by_id == admin_a.id
    assert (i.limit_count, i.limit_period.value, i.stock_total, i.stock_used) == (1, "day", 100, 0)
    assert i.venues == ["西湖东门", "西湖西门"]
    assert sorted(c.account_id for c in i.clerks) == sorted([clerk_a.id, admin_a.id])


def test_colours_and_kinds_are_kept_in_a_canonical_order(db, admin_a, org_a):
    i = incentives.create_incentive(db, admin_a, org_a.id, **{
        **SHUTTLE, "eligible_colours": ["blue", "green", "green"], "eligible_kinds": ["institution", "enterprise"],
        "min_grade": "B", "venues": [" 东门 ", "东门"]})
    assert i.eligible_colours == ["green", "blue"] and i.eligible_kinds == ["enterprise", "institution"]
    assert i.venues == ["东门"]


def test_a_platform_admin_may_publish_for_any_organisation(db, org_a, platform_admin):
    assert incentives.create_incentive(db, platform_admin, org_a.id, **SHUTTLE).organisation_id == org_a.id


@pytest.mark.parametrize("who", ["citizen", "admin_b", "clerk_a"])
def test_only_its_admins_may_publish_or_change(db, request, org_a, org_b, admin_a, who):
    actor = request.getfixturevalue(who)
    mine = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE)
    before = rows(db)
    for attempt in (lambda: incentives.create_incentive(db, actor, org_a.id, **SHUTTLE),
                    lambda: incentives.update_incentive(db, actor, mine.id, title="改"),
                    lambda: incentives.close_incentive(db, actor, mine.id),
                    lambda: incentives.reopen_incentive(db, actor, mine.id)):
        with pytest.raises(DomainError) as e:
            attempt()
        assert e.value.code == "forbidden"
    assert rows(db) == before and mine.title == SHUTTLE["title"] and mine.status == IncentiveStatus.open


@pytest.mark.parametrize("status", [Status.pending, Status.suspended, Status.rejected])
def test_only_approved_organisations_publish(db, admin_a, platform_admin, status):
    org = create_organisation(db, "未审核机构", status=status, admin=admin_a)
    for actor in (admin_a, platform_admin):
        with pytest.raises(DomainError) as e:
            incentives.create_incentive(db, actor, org.id, **SHUTTLE)
        assert e.value.code == "organisation_not_active"
    assert count(db, Incentive) == 0


def test_a_suspended_organisation_cannot_change_or_close_its_measures(db, admin_a, org_a):
    i = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE)
    org_a.status = Status.suspended
    for attempt in (lambda: incentives.update_incentive(db, admin_a, i.id, title="改"),
                    lambda: incentives.close_incentive(db, admin_a, i.id)):
        with pytest.raises(DomainError) as e:
            attempt()
        assert e.value.code == "organisation_not_active"


def test_unknown_organisation_or_measure(db, admin_a):
    with pytest.raises(DomainError) as e:
        incentives.create_incentive(db, admin_a, 999999, **SHUTTLE)
    assert e.value.code == "organisation_not_found"
    for attempt in (lambda: incentives.update_incentive(db, admin_a, 999999, title="x"),
                    lambda: incentives.close_incentive(db, admin_a, 999999),
                    lambda: incentives.get(db, 999999)):
        with pytest.raises(DomainError) as e:
            attempt()
        assert e.value.code == "incentive_not_found"


BAD_FIELDS = [
    ({"title": ""}, "bad_text"),
    ({"title": "x" * 101}, "bad_text"),
    ({"title": None}, "bad_text"),
    ({"description": "x" * 2001}, "bad_text"),
    ({"scenario": "shopping"}, "bad_scenario"),
    ({"scenario": None}, "bad_scenario"),
    ({"eligible_colours": []}, "bad_eligible_colours"),
    ({"eligible_colours": ["green", "yellow"]}, "bad_eligible_colours"),
    ({"eligible_colours": "green"}, "bad_eligible_colours"),
    ({"eligible_kinds": []}, "bad_eligible_kinds"),
    ({"eligible_kinds": ["robot"]}, "bad_eligible_kinds"),
    ({"min_grade": "E", "eligible_kinds": ["enterprise"]}, "bad_grade"),
    ({"min_grade": "a", "eligible_kinds": ["enterprise"]}, "bad_grade"),
    ({"min_grade": "A"}, "min_grade_not_applicable"),
    ({"min_grade": "A", "eligible_kinds": ["person", "enterprise"]}, "min_grade_not_applicable"),
    ({"limit_count": 0}, "bad_limit_count"),
    ({"limit_count": 1.5}, "bad_limit_count"),
    ({"limit_count": True}, "bad_limit_count"),
    ({"limit_period": "hour"}, "bad_limit_period"),
    ({"limit_period": None}, "limit_incomplete"),
    ({"limit_count": None}, "limit_incomplete"),
    ({"stock_total": -1}, "bad_stock"),
    ({"stock_total": "10"}, "bad_stock"),
    ({"valid_from": date(2026, 5, 2), "valid_until": date(2026, 5, 1)}, "dates_out_of_order"),
    ({"valid_from": "2026-05-01"}, "bad_date"),
    ({"venues": ["x"] * 51}, "bad_venues"),
    ({"venues": ["x" * 101]}, "bad_venues"),
    ({"venues": [""]}, "bad_venues"),
    ({"venues": [3]}, "bad_venues"),
    ({"venues": "西湖"}, "bad_venues"),
    ({"clerk_ids": [999999]}, "bad_incentive_clerk"),
    ({"clerk_ids": ["1"]}, "bad_incentive_clerk"),
]


@pytest.mark.parametrize("change, code", BAD_FIELDS)
def test_bad_fields_on_create_write_nothing(db, admin_a, org_a, change, code):
    before = rows(db)
    with pytest.raises(DomainError) as e:
        incentives.create_incentive(db, admin_a, org_a.id, **{**SHUTTLE, **change})
    assert e.value.code == code
    assert rows(db) == before


@pytest.mark.parametrize("change, code", BAD_FIELDS)
def test_bad_fields_on_update_change_nothing(db, admin_a, org_a, change, code):
    i = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE)
    db.flush()
    before = {name: getattr(i, name) for name in incentives.FIELDS if name != "clerk_ids"}
    with pytest.raises(DomainError) as e:
        incentives.update_incentive(db, admin_a, i.id, **change)
    assert e.value.code == code
    db.refresh(i)
    assert {name: getattr(i, name) for name in before} == before


def test_missing_required_fields(db, admin_a, org_a):
    with pytest.raises(DomainError) as e:
        incentives.create_incentive(db, admin_a, org_a.id, title="x", scenario="tourism")
    assert e.value.code == "missing_field" and e.value.detail == {"fields": ["eligible_colours", "eligible_kinds"]}


def test_a_clerk_of_another_organisation_cannot_be_listed(db, admin_a, org_a, org_b, admin_b):
    other_clerk = create_account(db, role=Role.clerk, organisation_id=org_b.id)
    citizen = create_account(db)
    for outsider in (other_clerk, admin_b, citizen):
        with pytest.raises(DomainError) as e:
            incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE, clerk_ids=[outsider.id])
        assert e.value.code == "bad_incentive_clerk" and e.value.detail == {"account_ids": [outsider.id]}
    assert rows(db) == (0, 0)


def test_update_checks_the_measure_as_a_whole(db, admin_a, org_a, clerk_a):
    i = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE, valid_until=date(2026, 6, 30))
    with pytest.raises(DomainError) as e:
        incentives.update_incentive(db, admin_a, i.id, valid_from=date(2026, 7, 1))
    assert e.value.code == "dates_out_of_order"
    with pytest.raises(DomainError) as e:
        incentives.update_incentive(db, admin_a, i.id, min_grade="A")  # still only persons
    assert e.value.code == "min_grade_not_applicable"
    i = incentives.update_incentive(db, admin_a, i.id, limit_count=None, limit_period=None, valid_until=None,
                                    eligible_kinds=["enterprise"], min_grade="A", clerk_ids=[clerk_a.id])
    assert (i.limit_count, i.limit_period, i.valid_until, i.min_grade.value) == (None, None, None, "A")
    assert [c.account_id for c in i.clerks] == [clerk_a.id]
    i = incentives.update_incentive(db, admin_a, i.id, clerk_ids=[clerk_a.id, admin_a.id])
    i = incentives.update_incentive(db, admin_a, i.id, clerk_ids=[admin_a.id])
    assert [c.account_id for c in i.clerks] == [admin_a.id] and count(db, IncentiveClerk) == 1
    i = incentives.update_incentive(db, admin_a, i.id, clerk_ids=[])
    assert i.clerks == [] and count(db, IncentiveClerk) == 0


def test_stock_cannot_go_below_what_is_used(db, admin_a, org_a):
    i = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE, stock_total=10)
    i.stock_used = 4
    db.flush()
    with pytest.raises(DomainError) as e:
        incentives.update_incentive(db, admin_a, i.id, stock_total=3)
    assert (e.value.code, e.value.detail) == ("stock_below_used", {"stock_used": 4})
    assert incentives.update_incentive(db, admin_a, i.id, stock_total=4).stock_total == 4
    assert incentives.update_incentive(db, admin_a, i.id, stock_total=None).stock_total is None


def test_unknown_field_is_a_programming_error(db, admin_a, org_a):
    with pytest.raises(TypeError):
        incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE, status="closed")


# --- closing, and what it does at the counter -------------------------------------------------------

def _redeem(db, keyring, clerk, subject, incentive, **kw):
    return redemptions.redeem(db, keyring, clerk, issue_token(db, keyring, subject), incentive.id,
                              idempotency_key=uuid.uuid4().hex, **kw)


def test_a_closed_measure_redeems_nothing_until_reopened(db, keyring, admin_a, org_a, clerk_a):
    green = create_subject(db)
    add_record(db, green, kind="honour")
    i = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE)
    assert incentives.close_incentive(db, admin_a, i.id).status == IncentiveStatus.closed
    assert incentives.close_incentive(db, admin_a, i.id).status == IncentiveStatus.closed  # a double tap
    assert _redeem(db, keyring, clerk_a, green, i).reason == "incentive_closed"
    assert incentives.reopen_incentive(db, admin_a, i.id).status == IncentiveStatus.open
    assert _redeem(db, keyring, clerk_a, green, i).status == "redeemed"


# --- lists ------------------------------------------------------------------------------------------

def test_members_list_their_organisations_measures(db, admin_a, org_a, clerk_a, citizen, admin_b, org_b):
    a1 = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE)
    a2 = incentives.create_incentive(db, admin_a, org_a.id, **{**SHUTTLE, "title": "图书", "scenario": "library"})
    incentives.close_incentive(db, admin_a, a2.id)
    incentives.create_incentive(db, admin_b, org_b.id, **SHUTTLE)
    for member in (admin_a, clerk_a):
        page = incentives.list_for_organisation(db, member, org_a.id)
        assert [i.id for i in page.items] == [a1.id, a2.id] and page.total == 2
    assert [i.id for i in incentives.list_for_organisation(db, clerk_a, org_a.id, status="open").items] == [a1.id]
    assert [i.id for i in incentives.list_for_organisation(db, clerk_a, org_a.id, scenario="library").items] == [a2.id]
    for outsider in (citizen, admin_b):
        with pytest.raises(DomainError) as e:
            incentives.list_for_organisation(db, outsider, org_a.id)
        assert e.value.code == "forbidden"
    with pytest.raises(DomainError) as e:
        incentives.list_for_organisation(db, clerk_a, org_a.id, status="gone")
    assert e.value.code == "bad_status"


def test_the_clerk_list_of_a_measure_decides_who_may_redeem(db, admin_a, org_a, clerk_a):
    other = create_account(db, role=Role.clerk, organisation_id=org_a.id)
    everyone = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE)
    only_a = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE, clerk_ids=[clerk_a.id])
    assert incentives.can_redeem(other, everyone) and not incentives.can_redeem(other, only_a)
    assert incentives.can_redeem(clerk_a, only_a)


def test_the_public_catalogue(db, admin_a, org_a):
    today = timeutil.local_date(timeutil.now())
    shuttle = create_incentive(db, org_a)
    library = create_incentive(db, org_a, title="慈云图书馆一次借15本", scenario="library")
    create_incentive(db, org_a, title="已关闭", status="closed")
    create_incentive(db, org_a, title="已结束", valid_until=today - timedelta(days=1))
    later = create_incentive(db, org_a, title="下月开始", valid_from=today + timedelta(days=30))
    create_incentive(db, create_organisation(db, "停用机构", status=Status.suspended), title="停用机构的")
    page = incentives.list_published(db)
    assert [i.id for i in page.items] == [shuttle.id, library.id, later.id]
    assert [i.id for i in incentives.list_published(db, scenario="library").items] == [library.id]
    with pytest.raises(DomainError) as e:
        incentives.list_published(db, scenario="shopping")
    assert e.value.code == "bad_scenario"
    assert incentives.is_open(shuttle) and not incentives.is_open(later)


def test_measures_of_an_inactive_organisation_are_hidden_from_outsiders(db, admin_a, org_a, clerk_a):
    i = create_incentive(db, org_a)
    assert incentives.visible(None, i) is i
    org_a.status = Status.suspended
    with pytest.raises(DomainError) as e:
        incentives.visible(None, i)
    assert e.value.code == "incentive_not_found"
    assert incentives.visible(clerk_a, i) is i and incentives.visible(admin_a, i) is i


# --- measures for me ----------------------------------------------------------------------------------

@pytest.fixture
def town(db, org_a, admin_a, clerk_a):
    """The seed's measures, plus a closed one and one with no stock left."""
    park = create_organisation(db, "产业园", kind="enterprise", admin=create_account(db))
    park_clerk = create_account(db, role=Role.clerk, organisation_id=park.id)
    return {
        "shuttle": create_incentive(db, org_a),
        "library": create_incentive(db, org_a, title="慈云图书馆一次借15本", scenario="library",
                                    limit_count=None, limit_period=None),
        "police": create_incentive(db, org_a, title="户籍业务免预约", scenario="administrative_approval",
                                   limit_count=None, limit_period=None),
        "rent": create_incentive(db, park, title="入园租金减免", scenario="housing", eligible_colours=["green", "blue"],
                                 eligible_kinds=["enterprise"], min_grade="A", limit_count=1, limit_period="ever"),
        "closed": create_incentive(db, org_a, title="已关闭", status="closed"),
        "later": create_incentive(db, org_a, title="下月开始",
                                  valid_from=timeutil.local_date(timeutil.now()) + timedelta(days=30)),
        "sold_out": create_incentive(db, org_a, title="名额已满", stock_total=5, stock_used=5,
                                     eligible_colours=["green", "blue"], limit_count=None, limit_period=None),
        "clerk": clerk_a, "park_clerk": park_clerk,
    }


def _reasons(result):
    return {e.incentive.title: e.reason for e in result.entries}


def test_a_green_citizen_sees_what_they_can_use(db, keyring, town):
    subject = create_subject(db)
    add_record(db, subject, kind="honour")
    me = create_account(db, subject=subject)
    _redeem(db, keyring, town["clerk"], subject, town["shuttle"], venue="西湖东门")

    result = incentives.for_subject(db, me)
    assert result.colour.value == "green" and result.subject.id == subject.id
    assert [e.incentive.title for e in result.usable] == ["户籍业务免预约", "慈云图书馆一次借15本"]  # by scenario
    assert _reasons(result) == {
        "西湖观光车免费乘坐": "limit_reached", "户籍业务免预约": None, "慈云图书馆一次借15本": None,
        "入园租金减免": "kind_not_eligible", "下月开始": "incentive_closed", "名额已满": "out_of_stock"}
    shuttle = next(e for e in result.entries if e.incentive.id == town["shuttle"].id)
    assert shuttle.remaining == {"quota": 0, "period": "day", "stock": None}
    assert [(r.status.value, r.venue) for r in shuttle.recent] == [("redeemed", "西湖东门")]
    assert shuttle.message == redemptions.REASONS["limit_reached"]

    tomorrow = incentives.for_subject(db, me, at=timeutil.now() + timedelta(days=1))
    assert _reasons(tomorrow)["西湖观光车免费乘坐"] is None


def test_a_red_citizen_is_told_why(db, town):
    subject = create_subject(db)
    add_record(db, subject, kind="bad")
    result = incentives.for_subject(db, create_account(db, subject=subject))
    assert result.colour.value == "red" and result.usable == []
    assert _reasons(result) == {
        "西湖观光车免费乘坐": "colour_not_eligible", "户籍业务免预约": "colour_not_eligible",
        "慈云图书馆一次借15本": "colour_not_eligible", "入园租金减免": "colour_not_eligible",
        "下月开始": "incentive_closed", "名额已满": "colour_not_eligible"}


def test_an_a_grade_enterprise_through_its_agent(db, keyring, town):
    ent = create_subject(db, kind="enterprise", grade="A")
    agent = create_account(db, role=Role.enterprise_agent, subject=ent)
    result = incentives.for_subject(db, agent, ent.id)
    assert result.colour.value == "blue"
    assert [e.incentive.title for e in result.usable] == ["入园租金减免"]
    assert _reasons(result)["西湖观光车免费乘坐"] == "colour_not_eligible"
    assert _reasons(result)["名额已满"] == "kind_not_eligible"
    assert _redeem(db, keyring, town["park_clerk"], ent, town["rent"]).status == "redeemed"
    result = incentives.for_subject(db, agent, ent.id, scenario="housing")
    assert [(e.incentive.title, e.reason, len(e.recent)) for e in result.entries] == [
        ("入园租金减免", "limit_reached", 1)]

    b_grade = create_subject(db, kind="enterprise", grade="B")
    result = incentives.for_subject(db, create_account(db, role=Role.enterprise_agent, subject=b_grade), b_grade.id)
    assert _reasons(result)["入园租金减免"] == "grade_not_eligible"


def test_recent_redemptions_are_the_last_five_newest_first(db, keyring, admin_a, org_a, clerk_a):
    subject = create_subject(db)
    add_record(db, subject, kind="honour")
    i = create_incentive(db, org_a, limit_count=None, limit_period=None)
    start = timeutil.now() - timedelta(hours=1)
    ids = []
    for n in range(7):
        at = start + timedelta(minutes=n)
        token = signing.issue_codes(db, keyring, subject, at=at)[0].token
        ids.append(redemptions.redeem(db, keyring, clerk_a, token, i.id, idempotency_key=f"k{n}", at=at).redemption_id)
    entry = incentives.for_subject(db, create_account(db, subject=subject)).entries[0]
    assert [r.id for r in entry.recent] == ids[::-1][:5]


def test_only_my_own_subjects(db, town):
    me = create_account(db, subject=create_subject(db))
    someone = create_subject(db, kind="enterprise")
    with pytest.raises(DomainError) as e:
        incentives.for_subject(db, me, someone.id)
    assert e.value.code == "subject_not_found"
    with pytest.raises(DomainError) as e:
        incentives.for_subject(db, create_account(db, role=Role.clerk, organisation_id=town["shuttle"].organisation_id))
    assert e.value.code == "no_subject"
    with pytest.raises(DomainError) as e:
        incentives.for_subject(db, me, scenario="shopping")
    assert e.value.code == "bad_scenario"


def test_a_suspended_admin_account_manages_nothing(db, admin_a, org_a):
    i = incentives.create_incentive(db, admin_a, org_a.id, **SHUTTLE)
    assert incentives.can_manage(admin_a, i)
    admin_a.status = Status.suspended
    assert not incentives.can_manage(admin_a, i) and not incentives.can_manage(None, i)
