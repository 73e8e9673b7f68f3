"""Offers under real concurrency: threads with sessions and commits of their own, released together by a barrier.
No per-test rollback: the database itself must make a double click confirm once, two payment batches pay once and
two matchings offer once (PostgreSQL: conditional UPDATEs and the policy's row lock; SQLite: BEGIN IMMEDIATE).
The rows are committed under a unique tag (the policy asks for it, so no other enterprise matches) and deleted
afterwards."""
from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from handlers import accounts, checks, identifiers, offers, policies, subjects
from handlers.db import make_engine
from handlers.errors import DomainError
from handlers.models import (
    Account, Disbursement, EnterpriseProfile, EnterpriseTag, Notice, Objection, Offer, OfferState, Organisation,
    OrganisationKind, Policy, Role, RoleGrant, Status, Subject,
)

from ..conftest import KEYS, database_of_its_own

# These tests commit for real: they get a database of their own.
database_url, engine = database_of_its_own()

POOL = 24


@pytest.fixture(scope="module")
def racing_engine(engine, database_url):
    eng = make_engine(database_url, pool_size=POOL, max_overflow=0, pool_timeout=120)
    yield eng
    eng.dispose()


class World:
    """A department with its admin, enterprises tagged with this world's tag (each with two agents), one policy."""

    def __init__(self, engine):
        self.engine = engine
        self.tag = uuid.uuid4().hex[:12]
        self.rng = random.Random(self.tag)
        self.subject_ids: list[int] = []
        self.agents: dict[int, list[int]] = {}
        with Session(engine) as s:
            org = Organisation(name=f"并发测试局-{self.tag}", kind=OrganisationKind.department, status=Status.approved)
            s.add(org)
            s.flush()
            admin = accounts.create(s, f"dept-{self.tag}", status=Status.approved)
            accounts.grant(s, admin, Role.org_admin, organisation_id=org.id)
            self.organisation_id, self.admin_id = org.id, admin.id
            s.commit()

    def enterprises(self, n: int) -> list[int]:
        with Session(self.engine) as s:
            platform = accounts.create(s, f"pa-{self.tag}-{len(self.subject_ids)}", status=Status.approved)
            accounts.grant(s, platform, Role.platform_admin)
            new = []
            for _ in range(n):
                subj = subjects.upsert(s, KEYS, kind="enterprise", identifier=identifiers.make_credit_code(self.rng),
                                       name="惠州市并发测试科技有限公司", grade="A")
                s.flush()
                policies.set_profile(s, platform, subj.id, industry_code="C3982", region_code="441302",
                                     tags=[self.tag])
                self.agents[subj.id] = []
                for k in range(2):
                    a = accounts.create(s, f"agent-{self.tag}-{subj.id}-{k}", status=Status.approved)
                    accounts.grant(s, a, Role.enterprise_agent, subject_id=subj.id)
                    s.flush()
                    self.agents[subj.id].append(a.id)
                new.append(subj.id)
            s.delete(platform)
            s.commit()
        self.subject_ids += new
        return new

    def policy(self, **kw) -> int:
        today = checks.today()
        with Session(self.engine) as s:
            admin = s.get(Account, self.admin_id)
            p = policies.create_policy(s, admin, self.organisation_id, title=f"并发测试政策-{self.tag}",
                                       amount_rule={"fixed_fen": 1_000_00}, conditions={"tags_all": [self.tag]},
                                       notice_from=today, notice_until=today + timedelta(days=7), **kw)
            s.commit()
            self.policy_id = p.id
            return p.id

    def publish(self) -> None:
        with Session(self.engine) as s:
            policies.publish_policy(s, s.get(Account, self.admin_id), self.policy_id)
            s.commit()

    def offer_ids(self) -> list[int]:
        with Session(self.engine) as s:
            return list(s.scalars(select(Offer.id).where(Offer.policy_id == self.policy_id).order_by(Offer.id)))

    def cleanup(self) -> None:
        with Session(self.engine) as s:
            agent_ids = [a for ids in self.agents.values() for a in ids]
            policy_ids = select(Policy.id).where(Policy.organisation_id == self.organisation_id)
            s.execute(delete(Notice).where(Notice.subject_id.in_(self.subject_ids)))
            s.execute(delete(Objection).where(Objection.policy_id.in_(policy_ids)))
            s.execute(delete(Offer).where(Offer.policy_id.in_(policy_ids)))
            s.execute(delete(Disbursement).where(Disbursement.policy_id.in_(policy_ids)))
            s.execute(delete(Policy).where(Policy.organisation_id == self.organisation_id))
            s.execute(delete(EnterpriseTag).where(EnterpriseTag.subject_id.in_(self.subject_ids)))
            s.execute(delete(EnterpriseProfile).where(EnterpriseProfile.subject_id.in_(self.subject_ids)))
            s.execute(delete(RoleGrant).where(RoleGrant.account_id.in_(agent_ids + [self.admin_id])))
            s.execute(delete(Account).where(Account.id.in_(agent_ids + [self.admin_id])))
            s.execute(delete(Subject).where(Subject.id.in_(self.subject_ids)))
            s.execute(delete(Organisation).where(Organisation.id == self.organisation_id))
            s.commit()


@pytest.fixture
def world(engine):
    w = World(engine)
    yield w
    w.cleanup()


def race(engine, n: int, attempt):
    """``attempt(session, i)`` in n threads released at once, each committing its own transaction; a DomainError
    comes back as its code."""
    barrier = threading.Barrier(n, timeout=120)

    def run(i):
        with Session(engine, expire_on_commit=False) as s:
            barrier.wait()
            try:
                out = attempt(s, i)
                s.commit()
                return out
            except DomainError as e:
                s.rollback()
                return e.code

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result(timeout=300) for f in [pool.submit(run, i) for i in range(n)]]


def notices(engine, kind: str) -> Counter:
    with Session(engine) as s:
        return Counter(s.scalars(select(Notice.subject_id).where(Notice.kind == kind)))


def test_twenty_clicks_by_two_agents_confirm_once(racing_engine, world):
    (sid,) = world.enterprises(1)
    world.policy()
    world.publish()
    (oid,) = world.offer_ids()
    agents = world.agents[sid]

    def click(s: Session, i: int):
        out = offers.confirm(s, s.get(Account, agents[i % 2]), oid)
        return (out.offer.state.value, out.repeated)

    results = race(racing_engine, 20, click)
    assert Counter(results) == {("confirmed", False): 1, ("confirmed", True): 19}
    assert notices(racing_engine, "offer_confirmed") == {sid: 1}
    with Session(racing_engine) as s:
        assert s.get(Offer, oid).state == OfferState.confirmed


def test_two_payment_batches_at_once_pay_once(racing_engine, world):
    ids = world.enterprises(5)
    world.policy()
    world.publish()
    offer_ids = world.offer_ids()
    with Session(racing_engine) as s:
        by_subject = dict(s.execute(select(Offer.subject_id, Offer.id)
                                    .where(Offer.policy_id == world.policy_id)).all())
        for sid in ids:
            offers.confirm(s, s.get(Account, world.agents[sid][0]), by_subject[sid])
        offers.approve(s, s.get(Account, world.admin_id), policies.get(s, world.policy_id), all_confirmed=True)
        s.commit()

    def pay(s: Session, i: int):
        admin = s.get(Account, world.admin_id)
        # As the API does (the policy's row lock queues batches), and a quarter without it: the conditional
        # UPDATEs alone must still pay once.
        policy = policies.managed(s, admin, world.policy_id, lock=i % 4 != 3)
        kwargs = {"all_approved": True} if i % 2 else {"offer_ids": offer_ids}
        r = offers.disburse(s, admin, policy, payment_reference=f"{world.tag}-{i}", **kwargs)
        return r.moved

    results = race(racing_engine, 8, pay)
    assert sorted(results, key=str) == sorted([5] + ["offers_not_ready"] * 7, key=str)
    with Session(racing_engine) as s:
        assert s.scalar(select(func.count()).select_from(Disbursement)
                        .where(Disbursement.policy_id == world.policy_id)) == 1
        assert Counter(s.scalars(select(Offer.state).where(Offer.policy_id == world.policy_id))) == {
            OfferState.disbursed: 5}
    assert notices(racing_engine, "offer_disbursed") == {sid: 1 for sid in ids}


def test_matching_at_once_offers_once(racing_engine, world):
    world.enterprises(3)
    world.policy()
    world.publish()
    newcomers = world.enterprises(4)

    def match(s: Session, i: int):
        return policies.match(s, s.get(Account, world.admin_id), world.policy_id).offered

    results = race(racing_engine, 6, match)
    assert sorted(results) == [0, 0, 0, 0, 0, 4]
    assert len(world.offer_ids()) == 7
    assert notices(racing_engine, "offer_matched") == {sid: 1 for sid in world.subject_ids}
    assert set(newcomers) <= set(notices(racing_engine, "offer_matched"))


def test_confirm_and_decline_racing_leave_one_answer(racing_engine, world):
    (sid,) = world.enterprises(1)
    world.policy()
    world.publish()
    (oid,) = world.offer_ids()
    agents = world.agents[sid]

    def act(s: Session, i: int):
        agent = s.get(Account, agents[i % 2])
        out = offers.confirm(s, agent, oid) if i % 2 == 0 else offers.decline(s, agent, oid)
        return out.offer.state.value

    results = race(racing_engine, 10, act)
    with Session(racing_engine) as s:
        final = s.get(Offer, oid).state.value
    # Confirm then decline is a legal pair (a change of mind before approval), so either may end it; but every
    # answer is a state the offer really passed through, and each move was told once.
    assert final in ("confirmed", "declined")
    assert set(results) <= {"confirmed", "declined", "illegal_transition"}
    told = notices(racing_engine, "offer_confirmed")[sid] + notices(racing_engine, "offer_declined")[sid]
    assert 1 <= told <= 2
    assert notices(racing_engine, "offer_declined")[sid] == (1 if final == "declined" else 0)
