"""Scan-to-redeem: the whole decision in one function, exactly once under concurrency.

Like pretix's check-in, ``redeem`` takes the actor explicitly, treats a repeated idempotency key
as a no-op returning the first verdict, and consumes before it trusts a count: the token's use is
claimed by inserting the redemption row (a partial unique index on the nonce refuses a second
one), the per-subject quota and the stock by conditional updates. Each of those is one statement,
so there is no window between check and use, on PostgreSQL and on SQLite alike.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import time
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import codes, colours, timeutil
from .codes import CodeError
from .errors import DomainError
from .models import (
    Account, CodeHandle, Colour, Grade, Incentive, IncentiveClerk, IncentiveStatus, Notice, Organisation, Period,
    QuotaUsage, Redemption, RedemptionStatus, Role, Scenario, Status, Subject, SubjectKind,
)
from .signing import SKEW, KeyRing

log = logging.getLogger("xinma.audit")

VOID_WINDOW = timedelta(minutes=10)
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Stable reason codes of a rejected verdict, with what the clerk reads (docs/errors.md lists them).
REASONS: dict[str, str] = {
    "bad_format": "无法识别的二维码",
    "bad_signature": "信用码签名无效（可能是伪造的）",
    "unknown_key": "信用码签名密钥未知或已失效",
    "expired": "信用码已过期，请让对方刷新",
    "not_yet_valid": "信用码尚未生效，请检查手机时间",
    "revoked": "信用码已作废（已更换），请让对方刷新",
    "replayed": "该信用码已使用过，请让对方刷新后重新出示",
    "colour_not_eligible": "信用码颜色不符合本措施条件",
    "kind_not_eligible": "主体类型不符合本措施条件",
    "grade_not_eligible": "企业信用等级不符合本措施条件",
    "limit_reached": "已达到本周期使用次数上限",
    "out_of_stock": "本措施名额已用完",
    "incentive_closed": "本措施已关闭或不在有效期内",
    "not_your_incentive": "您无权核销本措施",
    "organisation_inactive": "本机构未通过审核或已停用",
}
_GRADE_RANK = {Grade.A: 1, Grade.B: 2, Grade.C: 3, Grade.D: 4}


@dataclass
class Verdict:
    status: str                  # redeemed | rejected (| voided when read back later)
    reason: str | None
    message: str
    subject: dict | None
    incentive: dict
    remaining: dict
    redemption_id: int | None
    replay_of_request: bool = False  # the answer is the stored first verdict of this idempotency key

    def as_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, "message": self.message, "subject": self.subject,
                "incentive": self.incentive, "remaining": self.remaining, "redemption_id": self.redemption_id}


def period_key(period: Period | None, at: datetime) -> str:
    day = timeutil.local_date(at)
    if period in (None, Period.ever):
        return "ever"
    if period == Period.day:
        return day.isoformat()
    if period == Period.week:
        y, w, _ = day.isocalendar()
        return f"{y}-W{w:02d}"
    if period == Period.month:
        return f"{day:%Y-%m}"
    return f"{day:%Y}"


def _insert(session: Session, table):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


# --- the hot path's statements, built once per dialect -------------------------------------------------
# A scan runs these on every request; building them per call (and loading ORM objects) cost more CPU
# than the database spent answering them. They run on the session's connection, in its transaction.

class _Org(NamedTuple):
    name: str
    status: Status


class _ClerkRef(NamedTuple):
    account_id: int


@dataclass(frozen=True)
class Measure:
    """What a scan needs of an incentive measure: its rules, its organisation's name and status, its
    clerks. Read by one statement; same attribute names as Incentive, so the rule helpers take either."""

    id: int
    organisation_id: int
    title: str
    scenario: Scenario
    eligible_colours: list[str]
    eligible_kinds: list[str]
    min_grade: Grade | None
    limit_count: int | None
    limit_period: Period | None
    stock_total: int | None
    stock_used: int | None  # None in a cached copy: read it where it is shown (conditional updates take it)
    valid_from: date | None
    valid_until: date | None
    status: IncentiveStatus
    organisation: _Org
    clerks: tuple[_ClerkRef, ...]


_MEASURE = (select(Incentive.id, Incentive.organisation_id, Incentive.title, Incentive.scenario,
                   Incentive.eligible_colours, Incentive.eligible_kinds, Incentive.min_grade, Incentive.limit_count,
                   Incentive.limit_period, Incentive.stock_total, Incentive.stock_used, Incentive.valid_from,
                   Incentive.valid_until, Incentive.status, Organisation.name, Organisation.status,
                   IncentiveClerk.account_id)
            .join(Organisation, Organisation.id == Incentive.organisation_id)
            .outerjoin(IncentiveClerk, IncentiveClerk.incentive_id == Incentive.id)
            .where(Incentive.id == bindparam("incentive_id")))


def load_measure(session: Session, incentive_id: int) -> Measure | None:
    rows = _conn(session).execute(_MEASURE, {"incentive_id": incentive_id}).all()
    if not rows:
        return None
    r = rows[0]
    return Measure(*r[:14], organisation=_Org(r[14], r[15]),
                   clerks=tuple(_ClerkRef(row[16]) for row in rows if row[16] is not None))


# How long a process may answer scans from its copy of a measure (rules, status, validity, clerks, the
# organisation's name and status). Stock and per-subject limits are never taken from it: the conditional
# updates in _consume enforce them in SQL. So staleness means only this: a measure closed or changed, a
# clerk removed, or an organisation suspended in *another* process keeps being judged by its previous
# rules here for up to MEASURE_TTL seconds. Changes made in this process drop the copy at once.
MEASURE_TTL = 3.0
_CACHES: weakref.WeakSet[MeasureCache] = weakref.WeakSet()


class MeasureCache:
    """Measures by id for MEASURE_TTL seconds, one per app (per process)."""

    def __init__(self, ttl: float = MEASURE_TTL):
        self.ttl = ttl
        self._entries: dict[int, tuple[float, Measure]] = {}
        _CACHES.add(self)

    def get(self, session: Session, incentive_id: int) -> Measure | None:
        now = time.monotonic()
        hit = self._entries.get(incentive_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        measure = load_measure(session, incentive_id)
        if measure is None:
            self._entries.pop(incentive_id, None)
            return None
        measure = dataclasses.replace(measure, stock_used=None)  # a count, not a rule: never cached
        self._entries[incentive_id] = (now + self.ttl, measure)
        return measure

    def forget(self, incentive_id: int | None = None) -> None:
        if incentive_id is None:
            self._entries.clear()
        else:
            self._entries.pop(incentive_id, None)


@event.listens_for(Session, "after_flush")
def _forget_changed_measures(session: Session, _flush_context) -> None:
    """A measure, its clerks or an organisation changed through the ORM in this process: drop the copies.
    (Runs only for a flush with something in it; a scan flushes nothing.)"""
    if not _CACHES:
        return
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Incentive):
            ids = [obj.id]
        elif isinstance(obj, IncentiveClerk):
            ids = [obj.incentive_id]
        elif isinstance(obj, Organisation):
            ids = [None]
        else:
            continue
        for cache in list(_CACHES):
            for i in ids:
                cache.forget(i)


class SubjectRow(NamedTuple):
    """What a scan shows and judges of the holder (the same attribute names as Subject)."""

    id: int
    kind: SubjectKind
    grade: Grade | None
    name_masked: str


_HANDLE = (select(CodeHandle.revoked_at, Subject.id, Subject.kind, Subject.grade, Subject.name_masked,
                  Subject.colour, Subject.colour_valid_from, Subject.colour_valid_until)
           .join(Subject, Subject.id == CodeHandle.subject_id)
           .where(CodeHandle.handle == bindparam("handle")))


class _Statements:
    """The claim, the quota and the notice as prebuilt Core statements, per dialect."""

    def __init__(self, dialect: str):
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        r, q = Redemption.__table__, QuotaUsage.__table__
        self.claim = ins(r).on_conflict_do_nothing().returning(r.c.id)
        self.quota = (ins(q).values(incentive_id=bindparam("incentive_id"), subject_id=bindparam("subject_id"),
                                    period_key=bindparam("period_key"), used=1)
                      .on_conflict_do_update(index_elements=[q.c.incentive_id, q.c.subject_id, q.c.period_key],
                                             set_={"used": q.c.used + 1}, where=q.c.used < bindparam("limit"))
                      .returning(q.c.used))
        self.notice = insert(Notice.__table__)


_STATEMENTS: dict[str, _Statements] = {}


def _conn(session: Session):
    """The session's connection for a Core statement, with the session's pending changes flushed first
    (what session.execute would do: a record added earlier in the transaction must count)."""
    session.flush()
    return session.connection()


def _statements(session: Session) -> _Statements:
    name = session.get_bind().dialect.name
    stmts = _STATEMENTS.get(name)
    if stmts is None:
        stmts = _STATEMENTS[name] = _Statements(name)
    return stmts


def incentive_view(i: Incentive) -> dict:
    return {"id": i.id, "title": i.title, "organisation_id": i.organisation_id, "organisation": i.organisation.name,
            "scenario": i.scenario.value}


def subject_view(subject: Subject, colour: str) -> dict:
    """All a clerk may see: a masked name, the colour in force now, the kind (and grade)."""
    return {"name": subject.name_masked, "colour": colour, "kind": subject.kind.value,
            "grade": subject.grade.value if subject.grade else None}


def _can_redeem(clerk: Account, incentive: Incentive) -> bool:
    org = incentive.organisation_id
    if not (clerk.has_role(Role.clerk, organisation_id=org) or clerk.has_role(Role.org_admin, organisation_id=org)):
        return False
    return not incentive.clerks or any(c.account_id == clerk.id for c in incentive.clerks)


def _open(incentive: Incentive, at: datetime) -> bool:
    day = timeutil.local_date(at)
    return (incentive.status == IncentiveStatus.open
            and (incentive.valid_from is None or incentive.valid_from <= day)
            and (incentive.valid_until is None or day <= incentive.valid_until))


def eligibility(incentive: Incentive, subject: Subject, colour: str) -> str | None:
    """Why this subject, with this colour now, may not use the measure (None: it may)."""
    if colour not in incentive.eligible_colours:
        return "colour_not_eligible"
    if subject.kind.value not in incentive.eligible_kinds:
        return "kind_not_eligible"
    if incentive.min_grade is not None and (
            subject.grade is None or _GRADE_RANK[subject.grade] > _GRADE_RANK[incentive.min_grade]):
        return "grade_not_eligible"
    return None


@dataclass
class _Scan:
    """What a token resolves to: the claims, and the subject with its colour now — or why not."""
    claims: codes.Claims | None = None
    subject: SubjectRow | None = None
    colour: str | None = None
    reason: str | None = None


def _resolve(session: Session, ring: KeyRing, token: str, at: datetime) -> _Scan:
    try:
        claims, _, _ = codes.parse(token)
        claims = codes.verify(token, ring.verify_keys(session, claims.kid), now=at.timestamp(), skew=SKEW)
    except CodeError as e:
        return _Scan(reason=e.code)
    row = _conn(session).execute(_HANDLE, {"handle": claims.handle}).first()
    if row is None or row.revoked_at is not None:
        return _Scan(claims=claims, reason="revoked")
    subject = SubjectRow(row.id, row.kind, row.grade, row.name_masked)
    stored = colours.ColourState(row.colour, row.colour_valid_from, row.colour_valid_until)
    if row.colour is not None and stored.holds_at(at):  # the stored window: no look at the records
        colour: Colour = row.colour
    else:  # outside it: the colour rule, which also stores the new window on the subject row
        colour = colours.colour(session, session.get(Subject, row.id), at)
    return _Scan(claims=claims, subject=subject, colour=colour.value)


def check(session: Session, ring: KeyRing, token: str, *, incentive: Incentive | None = None,
          clerk: Account | None = None, at: datetime | None = None) -> dict:
    """The verdict without redeeming, for gates that only check the colour (or a measure's rules).

    With a measure and the clerk asking, the clerk must be one who may redeem it: a measure's rules are
    its organisation's business, not every clerk's.
    """
    at = at or timeutil.now()
    if incentive is not None and clerk is not None and not _can_redeem(clerk, incentive):
        return {"status": "invalid", "reason": "not_your_incentive", "message": REASONS["not_your_incentive"],
                "subject": None, "valid_until": None}
    scan = _resolve(session, ring, token, at)
    reason = scan.reason
    if reason is None and incentive is not None:
        reason = ("incentive_closed" if not _open(incentive, at) else eligibility(incentive, scan.subject, scan.colour))
    return {
        "status": "valid" if reason is None else "invalid",
        "reason": reason,
        "message": REASONS[reason] if reason else "信用码有效",
        "subject": subject_view(scan.subject, scan.colour) if scan.subject else None,
        "valid_until": scan.claims.valid_until() if scan.claims else None,
    }


def _remaining(session: Session, incentive: Incentive, subject_id: int | None, pkey: str | None) -> dict:
    quota = None
    if incentive.limit_count is not None and subject_id is not None:
        used = session.scalar(select(QuotaUsage.used).where(
            QuotaUsage.incentive_id == incentive.id, QuotaUsage.subject_id == subject_id,
            QuotaUsage.period_key == pkey)) or 0
        quota = max(incentive.limit_count - used, 0)
    stock = None if incentive.stock_total is None else max(incentive.stock_total - _stock_used(session, incentive), 0)
    return {"quota": quota, "period": incentive.limit_period.value if incentive.limit_period else None,
            "stock": stock}


def verdict_of(session: Session, r: Redemption) -> Verdict:
    """A stored redemption read back (idempotent retries, lists)."""
    incentive = load_measure(session, r.incentive_id)
    subject = session.get(Subject, r.subject_id) if r.subject_id else None
    pkey = r.period_key or period_key(incentive.limit_period, r.created_at)
    return Verdict(r.status.value, r.reason, REASONS[r.reason] if r.reason else "核销成功",
                   subject_view(subject, r.colour.value) if subject and r.colour else None,
                   incentive_view(incentive), _remaining(session, incentive, r.subject_id, pkey), r.id, True)


def _by_key(session: Session, clerk: Account, key: str) -> Redemption | None:
    return session.scalar(select(Redemption).where(Redemption.clerk_id == clerk.id,
                                                   Redemption.idempotency_key == key))


def redeem(session: Session, ring: KeyRing, clerk: Account, token: str, incentive_id: int, *,
           idempotency_key: str, venue: str | None = None, at: datetime | None = None,
           measures: MeasureCache | None = None) -> Verdict:
    """Redeem ``incentive_id`` for the holder of ``token``, at most once, within the measure's quotas.

    With ``measures`` (the web app's), the measure's rules may come from that process-wide copy (see
    MEASURE_TTL for what that means); without, they are read in this transaction.
    """
    if not isinstance(idempotency_key, str) or not _KEY.fullmatch(idempotency_key):
        raise DomainError("bad_idempotency_key")
    at = at or timeutil.now()
    started = time.perf_counter()
    # No look-up of the idempotency key up front: the claim below inserts with ON CONFLICT DO NOTHING,
    # so a retried request meets its first row there and answers with it (one round trip fewer per scan).
    incentive = measures.get(session, incentive_id) if measures is not None else load_measure(session, incentive_id)
    if incentive is None:
        previous = _by_key(session, clerk, idempotency_key)
        if previous is not None:
            return verdict_of(session, previous)
        raise DomainError("incentive_not_found")

    scan = _Scan()
    if not _can_redeem(clerk, incentive):
        scan.reason = "not_your_incentive"
    elif incentive.organisation.status != Status.approved:
        scan.reason = "organisation_inactive"
    elif not _open(incentive, at):
        scan.reason = "incentive_closed"
    else:
        scan = _resolve(session, ring, token, at)
        if scan.reason is None:
            scan.reason = eligibility(incentive, scan.subject, scan.colour)

    pkey = period_key(incentive.limit_period, at) if incentive.limit_count is not None else None
    row = {
        "incentive_id": incentive.id, "organisation_id": incentive.organisation_id, "clerk_id": clerk.id,
        "subject_id": scan.subject.id if scan.subject else None, "colour": scan.colour,
        "token_kid": scan.claims.kid if scan.claims else None,
        "token_nonce": scan.claims.nonce_hex if scan.claims else None,
        "venue": venue, "idempotency_key": idempotency_key, "period_key": pkey, "created_at": at,
        "status": RedemptionStatus.rejected if scan.reason else RedemptionStatus.redeemed, "reason": scan.reason,
    }
    taken = _Taken()
    # Claim: one statement that either inserts our row or meets another's (same token or same key).
    stmts, conn = _statements(session), _conn(session)
    rid = conn.execute(stmts.claim, row).scalar()
    if rid is None:
        previous = _by_key(session, clerk, idempotency_key)
        if previous is not None:  # the same request again (a retry, or sent twice at once): its first verdict
            return verdict_of(session, previous)
        scan.reason = "replayed"
        row.update(status=RedemptionStatus.rejected, reason="replayed")
        # A rejected row is outside the token index, so only the idempotency key can conflict here: the
        # same request retried while we looked (PostgreSQL). Its row is committed by now; answer with it.
        rid = conn.execute(stmts.claim, row).scalar()
        if rid is None:
            return verdict_of(session, _by_key(session, clerk, idempotency_key))
    elif scan.reason is None:
        taken = _consume(session, incentive, scan.subject.id, pkey)
        scan.reason = taken.reason
        if scan.reason is not None:
            session.execute(update(Redemption).where(Redemption.id == rid)
                            .values(status=RedemptionStatus.rejected, reason=scan.reason))
        else:
            _tell_holder(session, incentive, scan.subject.id, rid, at)

    status = "rejected" if scan.reason else "redeemed"
    remaining = (_remaining_after(session, incentive, taken) if taken.reason or status == "redeemed"
                 else _remaining(session, incentive, scan.subject.id if scan.subject else None, pkey))
    log.info("redemption", extra={"redemption_id": rid, "incentive_id": incentive.id, "clerk_id": clerk.id,
                                  "status": status, "reason": scan.reason,
                                  "ms": round((time.perf_counter() - started) * 1000, 2)})
    return Verdict(status, scan.reason, REASONS[scan.reason] if scan.reason else "核销成功",
                   subject_view(scan.subject, scan.colour) if scan.subject else None,
                   incentive_view(incentive), remaining, rid)


@dataclass
class _Taken:
    reason: str | None = None        # limit_reached / out_of_stock, or None: both taken
    used: int | None = None          # the subject's uses in this period, ours included
    stock_used: int | None = None


def _consume(session: Session, incentive: Incentive, subject_id: int, pkey: str | None) -> _Taken:
    """Take one from the subject's quota, then one from the stock, each by a conditional update."""
    taken = _Taken()
    if incentive.limit_count is not None:
        taken.used = _conn(session).execute(_statements(session).quota, {
            "incentive_id": incentive.id, "subject_id": subject_id, "period_key": pkey,
            "limit": incentive.limit_count}).scalar()
        if taken.used is None:
            taken.reason = "limit_reached"
            return taken
    if incentive.stock_total is not None:
        t = Incentive.__table__
        taken.stock_used = session.execute(
            update(t).where(t.c.id == incentive.id, t.c.stock_used < t.c.stock_total)
            .values(stock_used=t.c.stock_used + 1).returning(t.c.stock_used)).scalar()
        if taken.stock_used is None:
            if incentive.limit_count is not None:
                _give_back_quota(session, incentive.id, subject_id, pkey)
            taken.reason = "out_of_stock"
    return taken


def _stock_used(session: Session, incentive: Incentive | Measure) -> int:
    if incentive.stock_used is not None:
        return incentive.stock_used
    return _conn(session).execute(select(Incentive.stock_used).where(Incentive.id == incentive.id)).scalar_one()


def _remaining_after(session: Session, incentive: Incentive, taken: _Taken) -> dict:
    quota = stock = None
    if incentive.limit_count is not None:
        quota = 0 if taken.reason == "limit_reached" or taken.used is None else incentive.limit_count - taken.used
    if incentive.stock_total is not None:
        stock = 0 if taken.reason == "out_of_stock" else incentive.stock_total - (
            taken.stock_used if taken.stock_used is not None else _stock_used(session, incentive))
    return {"quota": quota, "period": incentive.limit_period.value if incentive.limit_period else None,
            "stock": stock}


def _give_back_quota(session: Session, incentive_id: int, subject_id: int, pkey: str) -> None:
    session.execute(update(QuotaUsage).where(QuotaUsage.incentive_id == incentive_id,
                                             QuotaUsage.subject_id == subject_id, QuotaUsage.period_key == pkey,
                                             QuotaUsage.used > 0)
                    .values(used=QuotaUsage.used - 1))


def _tell_holder(session: Session, incentive: Incentive, subject_id: int, redemption_id: int, at: datetime,
                 *, voided: bool = False) -> None:
    title = f"{'已撤销' if voided else '已核销'}：{incentive.title}"
    _conn(session).execute(_statements(session).notice, {
        "subject_id": subject_id, "kind": "redemption_voided" if voided else "redemption", "title": title,
        "body": {"redemption_id": redemption_id, "incentive_id": incentive.id,
                 "organisation": incentive.organisation.name, "at": at.isoformat()},
        "created_at": at})


def void(session: Session, clerk: Account, redemption_id: int, *, at: datetime | None = None) -> Redemption:
    """Undo a redemption within ten minutes (the wrong button); its quota and stock come back."""
    at = at or timeutil.now()
    r = session.scalar(select(Redemption).where(Redemption.id == redemption_id).with_for_update())
    if r is None or not (clerk.has_role(Role.clerk, organisation_id=r.organisation_id)
                         or clerk.has_role(Role.org_admin, organisation_id=r.organisation_id)):
        raise DomainError("redemption_not_found")
    if r.status != RedemptionStatus.redeemed:
        raise DomainError("not_voidable", detail={"status": r.status.value})
    if at - r.created_at > VOID_WINDOW:
        raise DomainError("void_window_passed")
    incentive = session.get(Incentive, r.incentive_id)
    r.status, r.voided_at, r.voided_by_id = RedemptionStatus.voided, at, clerk.id
    if incentive.limit_count is not None and r.subject_id is not None:
        _give_back_quota(session, incentive.id, r.subject_id, r.period_key)
    if incentive.stock_total is not None:
        t = Incentive.__table__
        session.execute(update(t).where(t.c.id == incentive.id, t.c.stock_used > 0)
                        .values(stock_used=t.c.stock_used - 1))
    _tell_holder(session, incentive, r.subject_id, r.id, at, voided=True)
    session.flush()
    log.info("redemption voided", extra={"redemption_id": r.id, "clerk_id": clerk.id})
    return r
