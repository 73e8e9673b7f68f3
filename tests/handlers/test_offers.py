"""Offers: the state machine (every illegal move is a 409 naming the state), who may act, the credit gate at
confirmation, approval and payment, payment batches, and the notices each step writes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import offers, policies
from handlers.errors import DomainError
from handlers.models import Disbursement, Grade, Notice, Offer, OfferState, Role

from ..conftest import add_record, count, create_account, create_subject
from .test_policies import TODAY, enterprise, policy


def refused(db, action) -> DomainError:
    """Run ``action`` as a request would: it must fail, and its transaction is rolled back (as the edge does)."""
    savepoint = db.begin_nested()
    try:
        action()
    except DomainError as e:
        savepoint.rollback()
        return e
    raise AssertionError("no DomainError")


class World:
    """A published policy, one enterprise with its agent, and the offer made to it."""

    def __init__(self, db, admin, dept_admin, dept, **policy_fields):
        self.db, self.admin, self.dept_admin = db, admin, dept_admin
        self.subject = enterprise(db, admin, grade="A")
        self.agent = create_account(db, role=Role.enterprise_agent, subject=self.subject)
        self.policy = policy(db, dept_admin, dept, **policy_fields)
        policies.publish_policy(db, dept_admin, self.policy.id)
        self.offer = db.scalar(select(Offer).where(Offer.policy_id == self.policy.id,
                                                   Offer.subject_id == self.subject.id))

    def state(self) -> OfferState:
        self.db.refresh(self.offer)
        return self.offer.state

    def notices(self, kind: str) -> list[Notice]:
        return list(self.db.scalars(select(Notice).where(Notice.subject_id == self.subject.id, Notice.kind == kind)
                                    .order_by(Notice.id)))

    def turn_red(self):
        add_record(self.db, self.subject, kind="bad", category="administrative_penalty")

    # Each action as the right actor would take it.
    def confirm(self):
        return offers.confirm(self.db, self.agent, self.offer.id)

    def decline(self):
        return offers.decline(self.db, self.agent, self.offer.id, note="不需要")

    def receipt(self):
        return offers.confirm_receipt(self.db, self.agent, self.offer.id)

    def approve(self):
        return offers.approve(self.db, self.dept_admin, self.policy, offer_ids=[self.offer.id])

    def disburse(self, reference=None):
        self.payments = getattr(self, "payments", 0) + 1
        reference = reference or f"PAY-2026-{self.payments:04d}"
        return offers.disburse(self.db, self.dept_admin, self.policy, payment_reference=reference,
                               offer_ids=[self.offer.id])

    def release(self):
        return offers.release(self.db, self.dept_admin, self.offer.id)

    def cancel(self):
        return offers.cancel(self.db, self.dept_admin, self.offer.id, note="公示期内收到异议，经核实不符合条件")

    def drive_to(self, state: str):
        """Reach ``state`` the way it is reached in life."""
        steps = {
            "notified": [], "confirmed": ["confirm"], "declined": ["decline"], "approved": ["confirm", "approve"],
            "disbursed": ["confirm", "approve", "disburse"], "received": ["confirm", "approve", "disburse", "receipt"],
            "held": ["turn_red", "confirm"], "cancelled": ["cancel"],
        }
        if state == "expired":
            policies.close_policy(self.db, self.dept_admin, self.policy.id)
        for step in steps.get(state, []):
            getattr(self, step)()
        assert self.state().value == state


@pytest.fixture
def world(db, platform_admin, dept_admin, dept):
    return World(db, platform_admin, dept_admin, dept, confirm_until=TODAY + timedelta(days=30))


# --- the happy path and its notices -------------------------------------------------------------------

def test_the_whole_way_with_a_notice_at_each_step(db, world):
    assert world.state() == OfferState.notified
    assert len(world.notices("offer_matched")) == 1
    out = world.confirm()
    assert (out.offer.state, out.repeated) == (OfferState.confirmed, False)
    assert out.offer.confirmed_by_id == world.agent.id and out.offer.confirmed_at is not None
    r = world.approve()
    assert (r.moved, r.held, r.total_fen) == (1, 0, 1_000_00)
    r = world.disburse()
    assert (r.moved, r.held, r.total_fen) == (1, 0, 1_000_00)
    assert (r.disbursement.payment_reference, r.disbursement.offer_count) == ("PAY-2026-0001", 1)
    out = world.receipt()
    assert out.offer.state == OfferState.received and out.offer.received_by_id == world.agent.id
    for kind in ("offer_confirmed", "offer_approved", "offer_disbursed", "offer_receipt"):
        [n] = world.notices(kind)
        assert n.body["offer_id"] == world.offer.id and n.body["policy_id"] == world.policy.id
        assert n.body["amount_fen"] == 1_000_00 and n.page == f"/app/#/offers/{world.offer.id}"
    assert world.notices("offer_disbursed")[0].body["payment_reference"] == "PAY-2026-0001"
    assert "拨付凭证号：PAY-2026-0001" in world.notices("offer_disbursed")[0].body["lines"]
    assert world.notices("offer_receipt")[0].body["state"] == "received"
    s = offers.stats(db, world.policy)
    assert s["counts"]["received"] == 1 and s["offers"] == 1
    assert (s["committed_fen"], s["confirmed_fen"], s["disbursed_fen"], s["received_fen"]) == (1_000_00,) * 4


def test_bulk_and_single_notices_have_the_same_shape(db, world):
    world.confirm()
    world.approve()  # a set-based notice
    [bulk] = world.notices("offer_approved")
    single = offers.notice_body("offer_approved", world.offer, world.policy)
    assert bulk.body == single
    assert bulk.title == "待拨付：研发投入奖励"


def test_double_clicks_act_once(db, world):
    first, second = world.confirm(), world.confirm()
    assert (first.repeated, second.repeated) == (False, True)
    assert len(world.notices("offer_confirmed")) == 1
    world.approve()
    world.disburse()
    assert [world.receipt().repeated, world.receipt().repeated] == [False, True]
    assert len(world.notices("offer_receipt")) == 1


def test_decline_gives_the_money_back(db, world):
    world.decline()
    assert offers.stats(db, world.policy)["committed_fen"] == 0
    assert world.decline().repeated
    assert len(world.notices("offer_declined")) == 1


# --- every move from every state ---------------------------------------------------------------------

ACTIONS = ("confirm", "decline", "receipt", "approve", "disburse", "release", "cancel")
STATES = ("notified", "confirmed", "declined", "approved", "disbursed", "received", "held", "expired", "cancelled")
# (state, action) -> the resulting state, "repeated", or the error code. Not listed: illegal_transition for one
# offer, offers_not_ready for a batch.
LEGAL = {
    ("notified", "confirm"): "confirmed", ("notified", "decline"): "declined", ("notified", "cancel"): "cancelled",
    ("confirmed", "confirm"): "repeated", ("confirmed", "decline"): "declined", ("confirmed", "approve"): "approved",
    ("confirmed", "cancel"): "cancelled",
    ("declined", "decline"): "repeated",
    ("approved", "disburse"): "disbursed", ("approved", "cancel"): "cancelled",
    ("disbursed", "receipt"): "received",
    ("received", "receipt"): "repeated",
    ("held", "confirm"): "repeated", ("held", "cancel"): "cancelled", ("held", "release"): "still_ineligible",
}
# Whatever one asks of an expired offer: offer_expired (a batch: offers_not_ready, like any state not its own).
LEGAL.update({("expired", a): "offer_expired" for a in ("confirm", "decline", "receipt", "release", "cancel")})
BATCH = ("approve", "disburse")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_move_from_every_state(db, world, state, action):
    world.drive_to(state)
    expected = LEGAL.get((state, action), "offers_not_ready" if action in BATCH else "illegal_transition")
    before = (count(db, Notice), count(db, Disbursement))
    if expected in ("illegal_transition", "offers_not_ready", "offer_expired", "still_ineligible"):
        e = refused(db, getattr(world, action))
        assert (e.code, e.kind) == (expected, "conflict")
        if expected == "offers_not_ready":
            assert e.detail["offers"] == [{"id": world.offer.id, "state": state}]
        elif expected == "still_ineligible":
            assert e.detail == {"reason": "credit_red"}
        else:
            assert e.detail == {"state": state, "action": action}
        assert world.state().value == state
        assert (count(db, Notice), count(db, Disbursement)) == before
        return
    out = getattr(world, action)()
    if expected == "repeated":
        assert out.repeated and world.state().value == state
        assert count(db, Notice) == before[0]
    else:
        assert world.state().value == expected


def test_a_preview_is_nobody_s_business(db, platform_admin, dept_admin, dept):
    s = enterprise(db, platform_admin)
    agent = create_account(db, role=Role.enterprise_agent, subject=s)
    p = policy(db, dept_admin, dept)
    policies.match(db, dept_admin, p.id)
    offer = db.scalar(select(Offer).where(Offer.policy_id == p.id))
    for act in (offers.confirm, offers.confirm_receipt):
        with pytest.raises(DomainError) as e:
            act(db, agent, offer.id)
        assert e.value.code == "offer_not_found"
    with pytest.raises(DomainError) as e:
        offers.get_for(db, agent, offer.id)
    assert e.value.code == "offer_not_found"
    assert offers.list_mine(db, agent).total == 0
    with pytest.raises(DomainError) as e:
        offers.approve(db, dept_admin, p, all_confirmed=True)
    assert (e.value.code, e.value.detail) == ("illegal_transition", {"policy_state": "draft", "action": "approve"})


def test_a_missed_deadline_is_offer_expired(db, platform_admin, dept_admin, dept):
    w = World(db, platform_admin, dept_admin, dept, confirm_until=TODAY - timedelta(days=1))
    e = refused(db, w.confirm)
    assert e.code == "offer_expired"
    assert e.detail == {"state": "notified", "action": "confirm",
                        "confirm_until": (TODAY - timedelta(days=1)).isoformat()}
    assert w.state() == OfferState.notified
    w.decline()  # saying no is still possible


# --- who may act ----------------------------------------------------------------------------------------

def test_only_the_enterprise_s_agents_click(db, world, platform_admin, dept_admin):
    other = create_subject(db, kind="enterprise", grade="A")
    stranger_agent = create_account(db, role=Role.enterprise_agent, subject=other)
    citizen = create_account(db, subject=create_subject(db))
    for actor in (stranger_agent, citizen, dept_admin, platform_admin):
        for act in (offers.confirm, offers.decline, offers.confirm_receipt):
            with pytest.raises(DomainError) as e:
                act(db, actor, world.offer.id)
            assert (e.value.code, e.value.kind) == ("not_your_offer", "forbidden")
    assert world.state() == OfferState.notified
    with pytest.raises(DomainError) as e:
        offers.get_for(db, stranger_agent, world.offer.id)
    assert e.value.code == "not_your_offer"
    assert offers.get_for(db, dept_admin, world.offer.id).id == world.offer.id
    assert offers.list_mine(db, world.agent).items == [world.offer]
    assert offers.list_mine(db, stranger_agent).total == 0


def test_a_second_agent_of_the_same_enterprise_sees_the_first_one_s_click(db, world):
    colleague = create_account(db, role=Role.enterprise_agent, subject=world.subject)
    world.confirm()
    out = offers.confirm(db, colleague, world.offer.id)
    assert out.repeated and out.offer.confirmed_by_id == world.agent.id


def test_only_the_issuing_department_or_platform_admins_run_batches(db, world, admin_a, platform_admin):
    world.confirm()
    for act in (lambda a: offers.release(db, a, world.offer.id),
                lambda a: offers.cancel(db, a, world.offer.id, note="x")):
        with pytest.raises(DomainError) as e:
            act(admin_a)
        assert e.value.code == "forbidden"
    r = offers.approve(db, platform_admin, world.policy, all_confirmed=True)
    assert r.moved == 1


def test_an_unknown_offer(db, world):
    for bad in (10**9, "1", None, True):
        with pytest.raises(DomainError) as e:
            offers.confirm(db, world.agent, bad)
        assert e.value.code == "offer_not_found"


# --- the credit gate ----------------------------------------------------------------------------------

def test_confirming_when_red_holds_the_offer_and_says_why(db, world):
    world.turn_red()
    out = world.confirm()
    assert out.offer.state == OfferState.held and out.offer.reason == "credit_red"
    assert out.offer.held_from == OfferState.confirmed and out.offer.confirmed_by_id == world.agent.id
    [n] = world.notices("offer_held")
    assert n.body["reason"] == "credit_red" and "原因：信用码为红码（存在失信记录）" in n.body["lines"]
    assert world.notices("offer_confirmed") == []
    assert offers.stats(db, world.policy)["held_fen"] == 1_000_00


def test_confirming_when_d_holds_the_offer(db, world):
    world.subject.grade = Grade.D
    db.flush()
    out = world.confirm()
    assert (out.offer.state, out.offer.reason) == (OfferState.held, "grade_d")


def test_release_once_credit_is_good_again(db, world):
    record = add_record(db, world.subject, kind="bad", category="administrative_penalty")
    world.confirm()
    assert refused(db, world.release).code == "still_ineligible"
    record.repaired_on = TODAY
    from handlers import colours
    colours.refresh(db, world.subject)
    out = world.release()
    assert (out.offer.state, out.offer.reason, out.offer.held_from) == (OfferState.confirmed, None, None)
    assert len(world.notices("offer_released")) == 1
    world.approve()


def test_approval_and_payment_recheck_credit_set_based(db, platform_admin, dept_admin, dept):
    subjects = [enterprise(db, platform_admin, grade=g) for g in "AABB"]
    agents = [create_account(db, role=Role.enterprise_agent, subject=s) for s in subjects]
    p = policy(db, dept_admin, dept)
    policies.publish_policy(db, dept_admin, p.id)
    by_subject = {o.subject_id: o for o in db.scalars(select(Offer).where(Offer.policy_id == p.id))}
    for s, a in zip(subjects, agents):
        offers.confirm(db, a, by_subject[s.id].id)
    add_record(db, subjects[0], kind="bad", category="administrative_penalty")   # red before approval
    r = offers.approve(db, dept_admin, p, all_confirmed=True)
    assert (r.moved, r.held, r.total_fen) == (3, 1, 3_000_00)
    subjects[1].grade = Grade.D                                                     # D before payment
    db.flush()
    r = offers.disburse(db, dept_admin, p, payment_reference="GK-2026-11-22/001", all_approved=True)
    assert (r.moved, r.held, r.total_fen) == (2, 1, 2_000_00)
    assert (r.disbursement.offer_count, r.disbursement.held_count, r.disbursement.total_fen) == (2, 1, 2_000_00)
    db.expire_all()
    states = {s.id: (by_subject[s.id].state, by_subject[s.id].reason) for s in subjects}
    assert states == {subjects[0].id: (OfferState.held, "credit_red"), subjects[1].id: (OfferState.held, "grade_d"),
                      subjects[2].id: (OfferState.disbursed, None), subjects[3].id: (OfferState.disbursed, None)}
    assert by_subject[subjects[1].id].held_from == OfferState.approved
    held_notices = db.scalars(select(Notice).where(Notice.kind == "offer_held")).all()
    assert sorted(n.body["reason"] for n in held_notices) == ["credit_red", "grade_d"]
    s = offers.stats(db, p)
    assert (s["counts"]["held"], s["counts"]["disbursed"], s["disbursed_fen"], s["held_fen"]) == (2, 2, 2_000_00,
                                                                                                  2_000_00)


# --- payment batches -------------------------------------------------------------------------------------

def test_a_listed_batch_pays_all_or_nothing(db, platform_admin, dept_admin, dept):
    subjects = [enterprise(db, platform_admin) for _ in range(3)]
    agents = [create_account(db, role=Role.enterprise_agent, subject=s) for s in subjects]
    p = policy(db, dept_admin, dept)
    policies.publish_policy(db, dept_admin, p.id)
    ids = {o.subject_id: o.id for o in db.scalars(select(Offer).where(Offer.policy_id == p.id))}
    for s, a in zip(subjects[:2], agents):
        offers.confirm(db, a, ids[s.id])
    offers.approve(db, dept_admin, p, all_confirmed=True)
    listed = [ids[s.id] for s in subjects]
    before = (count(db, Disbursement), count(db, Notice))
    e = refused(db, lambda: offers.disburse(db, dept_admin, p, payment_reference="PAY-1", offer_ids=listed))
    assert e.code == "offers_not_ready"
    assert e.detail == {"expected": "approved", "offers": [{"id": ids[subjects[2].id], "state": "notified"}]}
    assert (count(db, Disbursement), count(db, Notice)) == before
    r = offers.disburse(db, dept_admin, p, payment_reference="PAY-1", offer_ids=listed[:2])
    assert r.moved == 2
    with pytest.raises(DomainError) as e:
        offers.disburse(db, dept_admin, p, payment_reference="PAY-1", offer_ids=listed[:2])
    assert (e.value.code, e.value.detail) == ("payment_reference_used", {"disbursement_id": r.disbursement.id})


@pytest.mark.parametrize("kwargs, code", [
    ({"payment_reference": "", "all_approved": True}, "bad_payment_reference"),
    ({"payment_reference": "有 空格", "all_approved": True}, "bad_payment_reference"),
    ({"payment_reference": "P" * 65, "all_approved": True}, "bad_payment_reference"),
    ({"payment_reference": "P1"}, "bad_offer_selection"),
    ({"payment_reference": "P1", "offer_ids": [1], "all_approved": True}, "bad_offer_selection"),
    ({"payment_reference": "P1", "offer_ids": []}, "bad_offer_selection"),
    ({"payment_reference": "P1", "offer_ids": ["1"]}, "bad_offer_selection"),
    ({"payment_reference": "P1", "offer_ids": list(range(1, 10_002))}, "bad_offer_selection"),
    ({"payment_reference": "P1", "offer_ids": [10**9]}, "offer_not_found"),
    ({"payment_reference": "P1", "all_approved": True}, "offers_not_ready"),  # nothing approved yet
])
def test_bad_batches_write_nothing(db, world, kwargs, code):
    before = (count(db, Disbursement), count(db, Notice))
    assert refused(db, lambda: offers.disburse(db, world.dept_admin, world.policy, **kwargs)).code == code
    assert (count(db, Disbursement), count(db, Notice)) == before
    assert world.state() == OfferState.notified


def test_an_offer_of_another_policy_is_not_in_this_batch(db, world, platform_admin, dept_admin, dept):
    other = World(db, platform_admin, dept_admin, dept)
    other.confirm()
    with pytest.raises(DomainError) as e:
        offers.approve(db, dept_admin, world.policy, offer_ids=[other.offer.id])
    assert (e.value.code, e.value.detail) == ("offer_not_found", {"offer_ids": [other.offer.id]})


def test_cancel_needs_a_reason_and_tells_it(db, world):
    with pytest.raises(DomainError) as e:
        offers.cancel(db, world.dept_admin, world.offer.id, note="  ")
    assert e.value.code == "bad_text"
    world.cancel()
    [n] = world.notices("offer_cancelled")
    assert n.body["note"] == "公示期内收到异议，经核实不符合条件"
    assert offers.stats(db, world.policy)["committed_fen"] == 0


@pytest.mark.parametrize("kind, extra", [
    ("offer_matched", {}), ("offer_held", {"reason": "grade_d"}), ("offer_disbursed", {"payment_reference": "P/1"}),
    ("offer_cancelled", {"note": '说明 "含引号" \\ 与反斜杠'}),
])
def test_bulk_notice_bodies_equal_single_ones_even_with_awkward_text(db, platform_admin, dept_admin, dept, kind,
                                                                     extra):
    w = World(db, platform_admin, dept_admin, dept, title='R&D "奖励" \\ 测试\n第二行',
              confirm_until=TODAY + timedelta(days=3))
    w.offer.amount_fen = 1_234_567_05
    db.flush()
    before = {n.id for n in w.notices(kind)}
    assert offers.tell_many(db, kind, w.policy, "o.id = :t_id", {"t_id": w.offer.id}, **extra) == 1
    [n] = [n for n in w.notices(kind) if n.id not in before]
    assert n.body == offers.notice_body(kind, w.offer, w.policy, **extra)
    assert n.body["amount"] == "1234567.05" and n.body["lines"][2] == "金额：1234567.05 元"
