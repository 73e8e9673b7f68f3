"""redeem() and void() under real concurrency: many threads, each with its own session and its own
commit, released together by a barrier. No per-test rollback here: the database must hold the
limits by itself (PostgreSQL: row locks and ON CONFLICT; SQLite: BEGIN IMMEDIATE). The rows of
each test are committed under unique names and deleted afterwards, so other tests never see them.
"""
from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from handlers import accounts, identifiers, redemptions, signing, subjects
from handlers.db import make_engine
from handlers.errors import DomainError
from handlers.models import (
    Account, ApiToken, CodeHandle, CreditRecord, Incentive, IncentiveClerk, IncentiveStatus, Notice,
    Organisation, OrganisationKind, Period, QuotaUsage, Redemption, RoleGrant, Role, Scenario, SigningKey,
    Status, Subject,
)

from ..conftest import KEYS, database_of_its_own

# These tests commit for real: they get a database of their own.
database_url, engine = database_of_its_own()

THREADS = 100
POOL = 40          # PostgreSQL allows 100 connections in all; other sessions need some
TOKEN_WINDOW = 300  # seconds: a slow, shared CI machine must not see the tokens expire mid-test


@pytest.fixture(scope="module")
def racing_engine(engine, database_url):
    """A second engine with a pool large enough that most threads hold a connection at once."""
    eng = make_engine(database_url, pool_size=POOL, max_overflow=0, pool_timeout=120)
    yield eng
    eng.dispose()


class World:
    """One organisation with clerks, subjects and one measure, committed; ``cleanup`` deletes them all."""

    def __init__(self, engine):
        self.engine = engine
        self.tag = uuid.uuid4().hex[:10]
        self.rng = random.Random(self.tag)  # not conftest's generator: other tests keep their sequence
        self.ring = signing.KeyRing(KEYS)
        self.subject_ids: list[int] = []
        self.clerk_ids: list[int] = []
        with Session(engine) as s:
            self.kids_before = set(s.scalars(select(SigningKey.kid)))
            org = Organisation(name=f"并发测试-{self.tag}", kind=OrganisationKind.institution, status=Status.approved)
            s.add(org)
            s.flush()
            self.organisation_id = org.id
            s.commit()

    def clerks(self, n: int) -> list[int]:
        with Session(self.engine) as s:
            for i in range(n):
                a = accounts.create(s, f"clerk-{self.tag}-{i}", status=Status.approved)
                accounts.grant(s, a, Role.clerk, organisation_id=self.organisation_id)
                self.clerk_ids.append(a.id)
            s.commit()
        return self.clerk_ids[-n:]

    def subjects(self, n: int) -> list[int]:
        with Session(self.engine) as s:
            for _ in range(n):
                subj = subjects.upsert(s, KEYS, kind="person", identifier=identifiers.make_resident_id(self.rng),
                                       name="李四海")
                s.flush()
                self.subject_ids.append(subj.id)
            s.commit()
        return self.subject_ids[-n:]

    def incentive(self, **kw) -> int:
        fields = dict(title=f"并发测试措施-{self.tag}", scenario=Scenario.tourism, eligible_colours=["blue", "green"],
                      eligible_kinds=["person"], limit_count=1000, limit_period=Period.day, venues=["西湖"],
                      status=IncentiveStatus.open)
        fields.update(kw)
        with Session(self.engine) as s:
            i = Incentive(organisation_id=self.organisation_id, **fields)
            s.add(i)
            s.commit()
            return i.id

    def tokens(self, subject_ids: list[int], per_subject: int = 1) -> list[str]:
        """Fresh tokens (a new nonce each), committed so the handles exist for every thread."""
        with Session(self.engine) as s:
            out = []
            for sid in subject_ids:
                subject = s.get(Subject, sid)
                for _ in range(per_subject):
                    out.append(signing.issue_codes(s, self.ring, subject, window=TOKEN_WINDOW)[0].token)
            s.commit()
        self.ring.invalidate()
        with Session(self.engine) as s:  # every thread shares this ring, as a worker's threads do
            self.ring.load(s)
        return out

    def cleanup(self) -> None:
        with Session(self.engine) as s:
            incentives = select(Incentive.id).where(Incentive.organisation_id == self.organisation_id)
            s.execute(delete(Notice).where(Notice.subject_id.in_(self.subject_ids)))
            s.execute(delete(Redemption).where(Redemption.organisation_id == self.organisation_id))
            s.execute(delete(QuotaUsage).where(QuotaUsage.incentive_id.in_(incentives)))
            s.execute(delete(IncentiveClerk).where(IncentiveClerk.incentive_id.in_(incentives)))
            s.execute(delete(Incentive).where(Incentive.organisation_id == self.organisation_id))
            s.execute(delete(CodeHandle).where(CodeHandle.subject_id.in_(self.subject_ids)))
            s.execute(delete(CreditRecord).where(CreditRecord.subject_id.in_(self.subject_ids)))
            s.execute(delete(ApiToken).where(ApiToken.account_id.in_(self.clerk_ids)))
            s.execute(delete(RoleGrant).where(RoleGrant.account_id.in_(self.clerk_ids)))
            s.execute(delete(Account).where(Account.id.in_(self.clerk_ids)))
            s.execute(delete(Subject).where(Subject.id.in_(self.subject_ids)))
            s.execute(delete(Organisation).where(Organisation.id == self.organisation_id))
            s.execute(delete(SigningKey).where(SigningKey.kid.not_in(self.kids_before) if self.kids_before
                                               else SigningKey.kid.is_not(None)))
            s.commit()


@pytest.fixture
def world(engine):
    w = World(engine)
    yield w
    w.cleanup()


def race(engine, n: int, attempt):
    """Run ``attempt(session, i)`` in n threads released at once; each commits its own transaction.

    Returns the n results in order; a DomainError is returned as its code, anything else re-raised.
    """
    barrier = threading.Barrier(n, timeout=120)

    def run(i):
        with Session(engine, expire_on_commit=False) as s:
            barrier.wait()  # no transaction is open yet: SQLite's BEGIN IMMEDIATE would hold the lock here
            try:
                out = attempt(s, i)
                s.commit()
                return out
            except DomainError as e:
                s.rollback()
                return e.code

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(run, i) for i in range(n)]
        return [f.result(timeout=300) for f in futures]


def redeem(world, token_of, clerk_of=None, key_of=None):
    def attempt(s: Session, i: int):
        clerk = s.get(Account, clerk_of(i) if clerk_of else world.clerk_ids[i % len(world.clerk_ids)])
        return redemptions.redeem(s, world.ring, clerk, token_of(i), world.incentive_id,
                                  idempotency_key=key_of(i) if key_of else f"{world.tag}-{i}")
    return attempt


def outcomes(verdicts) -> Counter:
    return Counter((v.status, v.reason) for v in verdicts)


def rows(engine, incentive_id: int):
    with Session(engine) as s:
        by_status = Counter(s.execute(select(Redemption.status, Redemption.reason)
                                      .where(Redemption.incentive_id == incentive_id)).all())
        incentive = s.get(Incentive, incentive_id)
        quota = dict(s.execute(select(QuotaUsage.subject_id, QuotaUsage.used)
                               .where(QuotaUsage.incentive_id == incentive_id)).all())
        return {(k.value, r): n for (k, r), n in by_status.items()}, incentive.stock_used, quota


def test_same_token_from_100_threads_redeems_once(racing_engine, world):
    world.clerks(10)
    (subject,) = world.subjects(1)
    world.incentive_id = world.incentive(limit_count=1000)
    (token,) = world.tokens([subject])
    verdicts = race(racing_engine, THREADS, redeem(world, lambda i: token))
    assert outcomes(verdicts) == {("redeemed", None): 1, ("rejected", "replayed"): THREADS - 1}
    by_status, _, quota = rows(racing_engine, world.incentive_id)
    assert by_status == {("redeemed", None): 1, ("rejected", "replayed"): THREADS - 1}
    assert quota == {subject: 1}


def test_fresh_tokens_of_one_subject_once_a_day(racing_engine, world):
    n = 50
    world.clerks(5)
    (subject,) = world.subjects(1)
    world.incentive_id = world.incentive(limit_count=1, limit_period=Period.day)
    tokens = world.tokens([subject], per_subject=n)
    assert len(set(tokens)) == n
    verdicts = race(racing_engine, n, redeem(world, lambda i: tokens[i]))
    assert outcomes(verdicts) == {("redeemed", None): 1, ("rejected", "limit_reached"): n - 1}
    by_status, _, quota = rows(racing_engine, world.incentive_id)
    assert by_status == {("redeemed", None): 1, ("rejected", "limit_reached"): n - 1}
    assert quota == {subject: 1}
    with Session(racing_engine) as s:
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.subject_id == subject)) == 1


def test_stock_of_10_and_100_subjects(racing_engine, world):
    world.clerks(10)
    people = world.subjects(THREADS)
    world.incentive_id = world.incentive(limit_count=1, limit_period=Period.day, stock_total=10)
    tokens = world.tokens(people)
    verdicts = race(racing_engine, THREADS, redeem(world, lambda i: tokens[i]))
    assert outcomes(verdicts) == {("redeemed", None): 10, ("rejected", "out_of_stock"): THREADS - 10}
    by_status, stock_used, quota = rows(racing_engine, world.incentive_id)
    assert by_status == {("redeemed", None): 10, ("rejected", "out_of_stock"): THREADS - 10}
    assert stock_used == 10
    # Whoever was refused for stock got the quota back: only the ten winners used theirs.
    winners = {people[i] for i, v in enumerate(verdicts) if v.status == "redeemed"}
    assert {sid for sid, used in quota.items() if used} == winners
    assert all(quota[sid] == 1 for sid in winners)


def test_same_idempotency_key_from_20_threads(racing_engine, world):
    n = 20
    (clerk,) = world.clerks(1)
    (subject,) = world.subjects(1)
    world.incentive_id = world.incentive(limit_count=1000)
    (token,) = world.tokens([subject])
    key = f"retry-{world.tag}"
    verdicts = race(racing_engine, n, redeem(world, lambda i: token, clerk_of=lambda i: clerk, key_of=lambda i: key))
    assert {v.redemption_id for v in verdicts} != {None}
    assert len({v.redemption_id for v in verdicts}) == 1
    assert outcomes(verdicts) == {("redeemed", None): n}
    assert sum(not v.replay_of_request for v in verdicts) == 1  # one did the work, the rest read it back
    by_status, _, quota = rows(racing_engine, world.incentive_id)
    assert by_status == {("redeemed", None): 1}
    assert quota == {subject: 1}


def test_void_from_20_threads_returns_quota_once(racing_engine, world):
    n = 20
    clerks = world.clerks(4)
    (subject,) = world.subjects(1)
    world.incentive_id = world.incentive(limit_count=2, limit_period=Period.day, stock_total=5)
    first, second = world.tokens([subject], per_subject=2)
    with Session(racing_engine) as s:
        v1 = redemptions.redeem(s, world.ring, s.get(Account, clerks[0]), first, world.incentive_id,
                                idempotency_key=f"{world.tag}-a")
        v2 = redemptions.redeem(s, world.ring, s.get(Account, clerks[0]), second, world.incentive_id,
                                idempotency_key=f"{world.tag}-b")
        s.commit()
    assert (v1.status, v2.status) == ("redeemed", "redeemed")
    assert rows(racing_engine, world.incentive_id)[1:] == (2, {subject: 2})

    def attempt(s: Session, i: int):
        clerk = s.get(Account, clerks[i % len(clerks)])
        return redemptions.void(s, clerk, v1.redemption_id).status.value

    results = Counter(race(racing_engine, n, attempt))
    assert results == {"voided": 1, "not_voidable": n - 1}
    by_status, stock_used, quota = rows(racing_engine, world.incentive_id)
    assert by_status == {("voided", None): 1, ("redeemed", None): 1}
    assert (stock_used, quota) == (1, {subject: 1})
    with Session(racing_engine) as s:
        assert s.scalar(select(func.count()).select_from(Notice).where(
            Notice.subject_id == subject, Notice.kind == "redemption_voided")) == 1


def test_void_and_redeem_race_for_the_last_unit(racing_engine, world):
    """A void frees the one unit of stock while 30 others want it: the stock never goes over or under."""
    n = 30
    world.clerks(5)
    people = world.subjects(n + 1)
    world.incentive_id = world.incentive(limit_count=1, limit_period=Period.day, stock_total=1)
    tokens = world.tokens(people)
    with Session(racing_engine) as s:
        held = redemptions.redeem(s, world.ring, s.get(Account, world.clerk_ids[0]), tokens[0], world.incentive_id,
                                  idempotency_key=f"{world.tag}-held")
        s.commit()
    assert held.status == "redeemed"

    def attempt(s: Session, i: int):
        clerk = s.get(Account, world.clerk_ids[i % len(world.clerk_ids)])
        if i == 0:
            return redemptions.void(s, clerk, held.redemption_id).status.value
        return redemptions.redeem(s, world.ring, clerk, tokens[i], world.incentive_id,
                                  idempotency_key=f"{world.tag}-{i}").status

    results = race(racing_engine, n + 1, attempt)
    assert results[0] == "voided"
    redeemed = sum(r == "redeemed" for r in results[1:])
    assert redeemed <= 1
    by_status, stock_used, _ = rows(racing_engine, world.incentive_id)
    assert stock_used == redeemed
    assert by_status.get(("redeemed", None), 0) == redeemed


def test_same_key_for_a_replayed_token_from_20_threads(racing_engine, world):
    """A client retrying one scan of an already used token: every retry gets the one stored 'replayed'."""
    n = 20
    first_clerk, clerk = world.clerks(2)
    (subject,) = world.subjects(1)
    world.incentive_id = world.incentive(limit_count=1000)
    (token,) = world.tokens([subject])
    with Session(racing_engine) as s:
        assert redemptions.redeem(s, world.ring, s.get(Account, first_clerk), token, world.incentive_id,
                                  idempotency_key=f"{world.tag}-first").status == "redeemed"
        s.commit()
    key = f"retry-{world.tag}"
    verdicts = race(racing_engine, n, redeem(world, lambda i: token, clerk_of=lambda i: clerk, key_of=lambda i: key))
    assert outcomes(verdicts) == {("rejected", "replayed"): n}
    assert len({v.redemption_id for v in verdicts}) == 1
    by_status, _, _ = rows(racing_engine, world.incentive_id)
    assert by_status == {("redeemed", None): 1, ("rejected", "replayed"): 1}
