"""Policies: enterprise data, validation, and set-based matching — every condition, the formula, the budget cut."""
from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest
from sqlalchemy import func, select

from handlers import checks, offers, policies
from handlers.errors import DomainError
from handlers.models import Notice, Offer, OfferState, Policy, PolicyState, Role

from ..conftest import add_record, count, create_account, create_organisation, create_subject

TODAY = checks.today()


@pytest.fixture
def admin(platform_admin):
    return platform_admin


def enterprise(db, admin, *, grade="A", industry="C3971", region="441302", registered=date(2015, 3, 1),
               tax=100_000_00, tags=(), kind="enterprise", red=False, profile=True, green=False):
    s = create_subject(db, kind=kind, grade=grade)
    if red:
        add_record(db, s, kind="bad", category="administrative_penalty")
    if green:
        add_record(db, s, kind="honour", category="a_grade_taxpayer")
    if profile:
        policies.set_profile(db, admin, s.id, industry_code=industry, region_code=region, registered_on=registered,
                             last_year_tax_fen=tax, tax_year=TODAY.year - 1, tags=list(tags))
    return s


def policy(db, actor, org, **kw):
    fields = {"title": "研发投入奖励", "amount_rule": {"fixed_fen": 1_000_00}, "notice_from": TODAY,
                  "notice_until": TODAY + timedelta(days=7)}
    fields.update(kw)
    return policies.create_policy(db, actor, org.id, **fields)


def matched(db, p) -> dict[int, int]:
    """subject id -> amount of the policy's offers."""
    return dict(db.execute(select(Offer.subject_id, Offer.amount_fen).where(Offer.policy_id == p.id)).all())


# --- enterprise data -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, prefix, expected", [
    ("C3971", False, "C3971"), ("3971", False, "C3971"), ("c397", False, "C397"), (" I65 ", False, "I65"),
    ("C", True, "C"), ("39", True, "C39"), ("K70", False, "K70"),
])
def test_industry_codes_normalise(raw, prefix, expected):
    assert policies.industry_code(raw, prefix=prefix) == expected


@pytest.mark.parametrize("raw, prefix", [("C", False), ("D3971", False), ("98", True), ("C39712", True), ("", True),
                                         (None, True), ("Z12", True), ("00", True), (3971, False)])
def test_bad_industry_codes(raw, prefix):
    with pytest.raises(DomainError) as e:
        policies.industry_code(raw, prefix=prefix)
    assert e.value.code == "bad_industry_code"


@pytest.mark.parametrize("raw, prefix, expected", [
    ("441302", False, "441302"), ("441300", False, "441300"), ("441300", True, "4413"), ("440000", True, "44"),
    ("4413", True, "4413"), ("44", True, "44"),
])
def test_region_codes_normalise(raw, prefix, expected):
    assert policies.region_code(raw, prefix=prefix) == expected


@pytest.mark.parametrize("raw, prefix", [("4413", False), ("4413021", True), ("99", True), ("44130a", False),
                                         ("０４４１３０", False), (441302, False)])
def test_bad_region_codes(raw, prefix):
    with pytest.raises(DomainError) as e:
        policies.region_code(raw, prefix=prefix)
    assert e.value.code == "bad_region_code"


def test_profile_is_replaced_as_a_whole_and_only_by_platform_admins(db, admin, dept_admin):
    s = enterprise(db, admin, tags=["高新技术企业", "专精特新", "高新技术企业"])
    p = policies.profile_of(db, s.id)
    assert (p.industry_code, p.region_code, p.tags) == ("C3971", "441302", ("专精特新", "高新技术企业"))
    p = policies.set_profile(db, admin, s.id, industry_code="6510", tags=["瞪羚企业"])
    assert (p.industry_code, p.region_code, p.registered_on, p.tags) == ("I6510", None, None, ("瞪羚企业",))
    with pytest.raises(DomainError) as e:
        policies.set_profile(db, dept_admin, s.id, industry_code="C39")
    assert e.value.code == "forbidden"
    person = create_subject(db)
    with pytest.raises(DomainError) as e:
        policies.set_profile(db, admin, person.id, industry_code="C3971")
    assert e.value.code == "bad_subject_kind"


@pytest.mark.parametrize("field, value, code", [
    ("industry_code", "X1", "bad_industry_code"), ("region_code", "12345", "bad_region_code"),
    ("registered_on", "2020-13-01", "bad_date"), ("registered_on", TODAY + timedelta(days=1), "date_in_future"),
    ("last_year_tax_fen", -1, "bad_tax_amount"), ("last_year_tax_fen", 1.5, "bad_tax_amount"),
    ("last_year_tax_fen", 10**15, "bad_tax_amount"), ("tax_year", 1800, "bad_tax_year"),
    ("tags", ["x" * 33], "bad_tag"), ("tags", [""], "bad_tag"), ("tags", "高新", "bad_tag"),
])
def test_bad_profile_writes_nothing(db, admin, field, value, code):
    s = enterprise(db, admin, tags=["高新技术企业"])
    with pytest.raises(DomainError) as e:
        policies.set_profile(db, admin, s.id, **{field: value})
    assert e.value.code == code
    assert policies.profile_of(db, s.id).industry_code == "C3971"
    assert policies.profile_of(db, s.id).tags == ("高新技术企业",)


# --- writing a policy --------------------------------------------------------------------------------

@pytest.mark.parametrize("change, code", [
    ({"amount_rule": {"fixed_fen": 0}}, "bad_amount_rule"),
    ({"amount_rule": {"fixed_fen": 1.5}}, "bad_amount_rule"),
    ({"amount_rule": {"fixed_fen": 100, "cap_fen": 5}}, "bad_amount_rule"),
    ({"amount_rule": {"base": "profit", "rate_bp": 500, "cap_fen": 100}}, "bad_amount_rule"),
    ({"amount_rule": {"base": "last_year_tax", "rate_bp": 10001, "cap_fen": 100}}, "bad_amount_rule"),
    ({"amount_rule": {"base": "last_year_tax", "rate_bp": 500}}, "bad_amount_rule"),
    ({"amount_rule": "__import__('os')"}, "bad_amount_rule"),
    ({"conditions": {"colours": ["green", "red"]}}, "red_never_eligible"),
    ({"conditions": {"colours": []}}, "bad_eligible_colours"),
    ({"conditions": {"min_grade": "D"}}, "d_grade_never_eligible"),
    ({"conditions": {"min_grade": "E"}}, "bad_grade"),
    ({"conditions": {"kinds": ["person"]}}, "bad_policy_kinds"),
    ({"conditions": {"industry_prefixes": ["C39", "?"]}}, "bad_industry_code"),
    ({"conditions": {"region_prefixes": ["4"]}}, "bad_region_code"),
    ({"conditions": {"region_prefixes": ["44"] * 51}}, "bad_region_code"),
    ({"conditions": {"registered_before": "yesterday"}}, "bad_date"),
    ({"conditions": {"tags_all": ["a" * 40]}}, "bad_tag"),
    ({"conditions": {"colour": ["green"]}}, "bad_conditions"),
    ({"budget_fen": 0}, "bad_budget"),
    ({"budget_fen": True}, "bad_budget"),
    ({"notice_until": TODAY - timedelta(days=1)}, "dates_out_of_order"),
    ({"notice_from": None}, "missing_field"),
    ({"title": "  "}, "bad_text"),
])
def test_bad_policies_are_refused_and_write_nothing(db, dept_admin, dept, change, code):
    before = count(db, Policy)
    with pytest.raises(DomainError) as e:
        policy(db, dept_admin, dept, **change)
    assert e.value.code == code
    assert count(db, Policy) == before


def test_who_may_issue(db, admin, dept_admin, dept, admin_a, org_a):
    stranger = create_account(db, "stranger", role=None)
    with pytest.raises(DomainError) as e:
        policy(db, stranger, dept)
    assert e.value.code == "forbidden"
    with pytest.raises(DomainError) as e:
        policy(db, dept_admin, org_a)  # another organisation's
    assert e.value.code == "forbidden"
    park = create_organisation(db, "仲恺高新区产业园", kind="enterprise", admin=dept_admin)
    with pytest.raises(DomainError) as e:
        policy(db, dept_admin, park)
    assert e.value.code == "issuer_not_a_department"
    assert policy(db, admin, dept).state == PolicyState.draft


def test_published_policy_keeps_its_conditions(db, admin, dept_admin, dept):
    enterprise(db, admin)
    p = policy(db, dept_admin, dept, budget_fen=10_000_00)
    policies.publish_policy(db, dept_admin, p.id)
    with pytest.raises(DomainError) as e:
        policies.update_policy(db, dept_admin, p.id, amount_rule={"fixed_fen": 5})
    assert (e.value.code, e.value.detail) == ("policy_locked", {"fields": ["amount_rule"]})
    with pytest.raises(DomainError) as e:
        policies.update_policy(db, dept_admin, p.id, budget_fen=500_00)
    assert e.value.code == "budget_below_committed"
    assert e.value.detail == {"committed_fen": 1_000_00}
    same = {"amount_rule": dict(p.amount_rule), "conditions": dict(p.conditions), "title": p.title}
    p = policies.update_policy(db, dept_admin, p.id, budget_fen=2_000_00, description="说明", **same)
    assert (p.budget_fen, p.description) == (2_000_00, "说明")
    policies.close_policy(db, dept_admin, p.id)
    with pytest.raises(DomainError) as e:
        policies.update_policy(db, dept_admin, p.id, description="x")
    assert (e.value.code, e.value.detail) == ("illegal_transition", {"state": "closed", "action": "edit"})


# --- matching: every condition ------------------------------------------------------------------------

def test_red_and_d_never_match_whatever_the_conditions(db, admin, dept_admin, dept):
    good = enterprise(db, admin, grade="B")
    red = enterprise(db, admin, grade="A", red=True)
    d = enterprise(db, admin, grade="D")
    ungraded = enterprise(db, admin, grade=None)
    p = policy(db, dept_admin, dept)
    policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {good.id, ungraded.id}
    assert red.id not in matched(db, p) and d.id not in matched(db, p)


def test_stored_colours_past_their_window_are_recomputed_before_matching(db, admin, dept_admin, dept):
    from datetime import datetime

    from handlers.models import Colour
    turned_red = enterprise(db, admin)
    add_record(db, turned_red, kind="bad", category="administrative_penalty")
    still_blue = enterprise(db, admin)
    for s in (turned_red, still_blue):  # stored as blue, with a window that ended long ago
        s.colour, s.colour_valid_until = Colour.blue, datetime(2000, 1, 1, tzinfo=UTC)
    db.flush()
    p = policy(db, dept_admin, dept)
    r = policies.match(db, dept_admin, p.id)
    assert r.colours_refreshed >= 2
    assert matched(db, p) == {still_blue.id: 1_000_00}
    db.refresh(turned_red)
    assert turned_red.colour == Colour.red


def test_minimum_grade_and_ungraded(db, admin, dept_admin, dept):
    a, b, c = (enterprise(db, admin, grade=g) for g in "ABC")
    none = enterprise(db, admin, grade=None)
    p = policy(db, dept_admin, dept, conditions={"min_grade": "B"})
    policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {a.id, b.id}
    p2 = policy(db, dept_admin, dept, conditions={"min_grade": "C"})
    policies.match(db, dept_admin, p2.id)
    assert set(matched(db, p2)) == {a.id, b.id, c.id}
    assert none.id not in matched(db, p2)


def test_colours_and_kinds(db, admin, dept_admin, dept):
    green = enterprise(db, admin, green=True)
    blue = enterprise(db, admin)
    institution = enterprise(db, admin, kind="institution", grade=None)
    p = policy(db, dept_admin, dept, conditions={"colours": ["green"]})
    policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {green.id}
    p2 = policy(db, dept_admin, dept, conditions={"kinds": ["institution"]})
    policies.match(db, dept_admin, p2.id)
    assert set(matched(db, p2)) == {institution.id}
    p3 = policy(db, dept_admin, dept, conditions={"kinds": ["enterprise", "institution"]})
    policies.match(db, dept_admin, p3.id)
    assert set(matched(db, p3)) == {green.id, blue.id, institution.id}


def test_industry_and_region_prefixes(db, admin, dept_admin, dept):
    chips = enterprise(db, admin, industry="C3971", region="441302")
    chem = enterprise(db, admin, industry="C2614", region="441303")
    software = enterprise(db, admin, industry="I6510", region="440305")
    no_profile = enterprise(db, admin, profile=False)
    p = policy(db, dept_admin, dept, conditions={"industry_prefixes": ["C39", "I"]})
    policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {chips.id, software.id}
    p2 = policy(db, dept_admin, dept, conditions={"region_prefixes": ["441300"]})  # all of Huizhou
    policies.match(db, dept_admin, p2.id)
    assert set(matched(db, p2)) == {chips.id, chem.id}
    p3 = policy(db, dept_admin, dept, conditions={"region_prefixes": ["441303", "4403"], "industry_prefixes": ["26"]})
    policies.match(db, dept_admin, p3.id)
    assert set(matched(db, p3)) == {chem.id}
    p4 = policy(db, dept_admin, dept)  # no data needed: the enterprise without a profile qualifies too
    policies.match(db, dept_admin, p4.id)
    assert no_profile.id in matched(db, p4)


def test_registered_before_is_strict(db, admin, dept_admin, dept):
    old = enterprise(db, admin, registered=date(2019, 12, 31))
    edge = enterprise(db, admin, registered=date(2020, 1, 1))
    unknown = enterprise(db, admin, registered=None)
    p = policy(db, dept_admin, dept, conditions={"registered_before": "2020-01-01"})
    policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {old.id}
    assert edge.id not in matched(db, p) and unknown.id not in matched(db, p)


def test_tags_all_and_any(db, admin, dept_admin, dept):
    both = enterprise(db, admin, tags=["高新技术企业", "专精特新"])
    hi = enterprise(db, admin, tags=["高新技术企业"])
    gazelle = enterprise(db, admin, tags=["瞪羚企业"])
    enterprise(db, admin)
    p = policy(db, dept_admin, dept, conditions={"tags_all": ["高新技术企业", "专精特新"]})
    policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {both.id}
    p2 = policy(db, dept_admin, dept, conditions={"tags_any": ["专精特新", "瞪羚企业"]})
    policies.match(db, dept_admin, p2.id)
    assert set(matched(db, p2)) == {both.id, gazelle.id}
    p3 = policy(db, dept_admin, dept, conditions={"tags_all": ["高新技术企业"], "tags_any": ["专精特新", "瞪羚企业"]})
    policies.match(db, dept_admin, p3.id)
    assert set(matched(db, p3)) == {both.id}
    p4 = policy(db, dept_admin, dept, conditions={"tags_any": ["高新技术企业"]})
    policies.match(db, dept_admin, p4.id)
    assert set(matched(db, p4)) == {both.id, hi.id}


def test_formula_share_of_tax_capped_and_rounded_down(db, admin, dept_admin, dept):
    small = enterprise(db, admin, tax=12_345_67)      # 5% = 61728.35 fen -> 61728 (rounded down)
    big = enterprise(db, admin, tax=100_000_000_00)   # 5% = 5,000,000 yuan, capped at 500,000 yuan
    zero = enterprise(db, admin, tax=0)               # nothing to pay: no offer
    unknown = enterprise(db, admin, tax=None)         # no tax figure: no offer
    rule = {"base": "last_year_tax", "rate_bp": 500, "cap_fen": 500_000_00}
    p = policy(db, dept_admin, dept, amount_rule=rule)
    policies.match(db, dept_admin, p.id)
    assert matched(db, p) == {small.id: 61728, big.id: 500_000_00}
    assert zero.id not in matched(db, p) and unknown.id not in matched(db, p)
    r = policies.AmountRule.parse(rule)
    assert r.of(policies.profile_of(db, small.id)) == 61728
    assert r.of(policies.profile_of(db, big.id)) == 500_000_00


def test_budget_cut_a_first_then_registration_then_amount(db, admin, dept_admin, dept):
    rule = {"base": "last_year_tax", "rate_bp": 1000, "cap_fen": 1_000_000_00}  # 10% of tax
    c_old = enterprise(db, admin, grade="C", registered=date(2001, 1, 1), tax=100_00)       # 10.00
    b_new = enterprise(db, admin, grade="B", registered=date(2020, 1, 1), tax=300_00)       # 30.00
    b_old = enterprise(db, admin, grade="B", registered=date(2010, 1, 1), tax=500_00)       # 50.00
    a_big = enterprise(db, admin, grade="A", registered=date(2018, 1, 1), tax=4_000_00)     # 400.00
    a_small = enterprise(db, admin, grade="A", registered=date(2018, 1, 1), tax=1_000_00)   # 100.00
    ungraded = enterprise(db, admin, grade=None, registered=date(1999, 1, 1), tax=10_00)    # 1.00
    # Priority: a_small (A, 2018, 100) a_big (A, 2018, 400) b_old (B, 2010) b_new (B, 2020) c_old ungraded.
    # Budget 570.00: a_small 100 + a_big 400 = 500; b_old 50 -> 550; b_new 30 -> 580 > 570: cut here, and everyone
    # after (c_old 10 would still fit, but nobody further down is paid ahead of someone above).
    p = policy(db, dept_admin, dept, amount_rule=rule, budget_fen=570_00)
    r = policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {a_small.id, a_big.id, b_old.id}
    assert (r.eligible, r.offered, r.over_budget, r.offered_fen) == (6, 3, 3, 550_00)
    assert (r.committed_fen, r.remaining_fen) == (550_00, 20_00)
    assert {b_new.id, c_old.id, ungraded.id}.isdisjoint(matched(db, p))


def test_budget_smaller_than_the_first_offer_offers_nothing(db, admin, dept_admin, dept):
    enterprise(db, admin)
    p = policy(db, dept_admin, dept, budget_fen=999_99)
    r = policies.match(db, dept_admin, p.id)
    assert (r.eligible, r.offered, r.over_budget) == (1, 0, 1)


# --- matching: idempotence, drafts and publishing ------------------------------------------------------

def test_draft_match_is_a_silent_preview_recomputed_each_time(db, admin, dept_admin, dept):
    a = enterprise(db, admin)
    p = policy(db, dept_admin, dept)
    notices = count(db, Notice)
    r1 = policies.match(db, dept_admin, p.id)
    r2 = policies.match(db, dept_admin, p.id)
    assert (r1.offered, r2.offered, r2.previews_dropped) == (1, 1, 1)
    assert count(db, Notice) == notices  # nobody is told about a draft
    assert db.scalar(select(Offer.state).where(Offer.policy_id == p.id)) == OfferState.matched
    b = enterprise(db, admin)
    policies.update_policy(db, dept_admin, p.id, conditions={"min_grade": "A"})
    policies.match(db, dept_admin, p.id)
    assert set(matched(db, p)) == {a.id, b.id}


def test_publish_matches_and_pushes_and_rematch_is_idempotent(db, admin, dept_admin, dept):
    a = enterprise(db, admin)
    p = policy(db, dept_admin, dept, confirm_until=TODAY + timedelta(days=30))
    policies.match(db, dept_admin, p.id)  # a preview first: publishing replaces it
    r = policies.publish_policy(db, dept_admin, p.id)
    assert (r.state, r.offered, r.notified) == ("published", 1, 1)
    offer = db.scalar(select(Offer).where(Offer.policy_id == p.id))
    assert offer.state == OfferState.notified and offer.notified_at is not None
    n = db.scalar(select(Notice).where(Notice.subject_id == a.id, Notice.kind == "offer_matched"))
    assert n.page == f"/app/#/offers/{offer.id}"
    assert n.title == "免申即享：研发投入奖励"
    assert n.body == offers.notice_body("offer_matched", offer, p)
    assert n.body["amount"] == "1000.00" and n.body["confirm_until"] == (TODAY + timedelta(days=30)).isoformat()
    before = (count(db, Offer), count(db, Notice))
    again = policies.match(db, dept_admin, p.id)
    assert (again.eligible, again.offered, again.notified) == (0, 0, 0)
    assert (count(db, Offer), count(db, Notice)) == before
    newcomer = enterprise(db, admin)
    third = policies.match(db, dept_admin, p.id)
    assert (third.offered, third.notified, third.run) == (1, 1, 4)
    assert set(matched(db, p)) == {a.id, newcomer.id}


def test_rematch_fills_budget_given_back_by_a_decline(db, admin, dept_admin, dept):
    first = enterprise(db, admin, grade="A")
    second = enterprise(db, admin, grade="B")
    p = policy(db, dept_admin, dept, budget_fen=1_000_00)
    policies.publish_policy(db, dept_admin, p.id)
    assert set(matched(db, p)) == {first.id}
    agent = create_account(db, role=Role.enterprise_agent, subject=first)
    offer = db.scalar(select(Offer).where(Offer.policy_id == p.id))
    offers.decline(db, agent, offer.id)
    r = policies.match(db, dept_admin, p.id)
    assert r.offered == 1 and set(matched(db, p)) == {first.id, second.id}
    assert offers.stats(db, p)["committed_fen"] == 1_000_00


def test_closed_policy_cannot_be_matched_and_closing_expires_unconfirmed(db, admin, dept_admin, dept):
    enterprise(db, admin)
    p = policy(db, dept_admin, dept)
    policies.publish_policy(db, dept_admin, p.id)
    policies.close_policy(db, dept_admin, p.id)
    assert db.scalar(select(Offer.state).where(Offer.policy_id == p.id)) == OfferState.expired
    assert db.scalar(select(func.count()).select_from(Notice).where(Notice.kind == "offer_expired")) == 1
    with pytest.raises(DomainError) as e:
        policies.match(db, dept_admin, p.id)
    assert (e.value.code, e.value.detail) == ("illegal_transition", {"state": "closed", "action": "match"})
    with pytest.raises(DomainError) as e:
        policies.publish_policy(db, dept_admin, p.id)
    assert e.value.code == "illegal_transition"
    assert policies.close_policy(db, dept_admin, p.id).state == PolicyState.closed  # twice: no change


def test_only_its_managers_match(db, admin, dept_admin, dept, admin_a):
    p = policy(db, dept_admin, dept)
    with pytest.raises(DomainError) as e:
        policies.match(db, admin_a, p.id)
    assert e.value.code == "policy_not_found"  # a draft is invisible to others
    policies.publish_policy(db, admin, p.id)    # a platform admin may
    with pytest.raises(DomainError) as e:
        policies.match(db, admin_a, p.id)
    assert e.value.code == "forbidden"


def test_deleting_a_subject_or_a_policy_deletes_its_offers(db, admin, dept_admin, dept):
    """offer has no foreign keys (matching speed); triggers keep the cascade a foreign key would have made."""
    from sqlalchemy import delete

    from handlers.models import Subject
    a, b = enterprise(db, admin), enterprise(db, admin)
    p = policy(db, dept_admin, dept)
    policies.publish_policy(db, dept_admin, p.id)
    assert set(matched(db, p)) == {a.id, b.id}
    db.execute(delete(Notice).where(Notice.subject_id == a.id))
    db.execute(delete(Subject).where(Subject.id == a.id))
    assert set(matched(db, p)) == {b.id}
    db.execute(delete(Policy).where(Policy.id == p.id))
    assert db.scalar(select(func.count()).select_from(Offer).where(Offer.subject_id == b.id)) == 0
