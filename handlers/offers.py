"""Offers (免申即享): one policy matched to one enterprise, its state machine, the credit gate and the notices.

matched → notified → confirmed | declined; confirmed → approved → disbursed → received. A credit check
(red or D-grade now) at confirmation, approval and payment moves an offer to held instead, with a reason; an
admin releases it (to where it was, if the credit is good again) or cancels it. Closing a policy expires what
was never confirmed. Every move is a conditional UPDATE … WHERE state IN (sources), so a double click or two
racing requests move an offer once; the loser sees the state the winner left and, when that is what it asked
for, gets the same answer (repeated) without a second notice. Batches (approve, pay) are set-based SQL.
Each move writes a Notice for the enterprise in the same transaction (handlers.outbox pushes it).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, TextClause, bindparam, case, func, select, text, update
from sqlalchemy.orm import Session

from . import bulk, checks, colours, organisations, outbox, paging, subjects, timeutil
from .errors import DomainError
from .models import (
    MAX_ID, Account, Colour, Disbursement, Grade, Notice, Offer, OfferState, Policy, PolicyState, Role, Subject,
)

S = OfferState
# Offers that hold part of the budget; declined, expired and cancelled ones gave it back.
LIVE = (S.matched, S.notified, S.confirmed, S.approved, S.held, S.disbursed, S.received)
CONFIRMED = (S.confirmed, S.approved, S.disbursed, S.received)  # the enterprise said yes
PAID = (S.disbursed, S.received)
# Shown to the enterprise (a draft's preview is not).
VISIBLE = tuple(s for s in S if s != S.matched)
# What the public notice (公示) lists: enterprises that will be (or were) paid.
NOTICE_LISTED = CONFIRMED

HOLD_REASONS = {
    "credit_red": "信用码为红码（存在失信记录）",
    "grade_d": "公共信用等级为D级",
}
PAGE = "/app/#/offers/{id}"
MAX_BATCH_IDS = 10_000
NOTE_MAX = 500
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")

# kind -> (title, first line). The title is prefixed to the policy's title.
NOTICES = {
    "offer_matched": ("免申即享", "您的企业符合政策条件，无需申请，一键确认即可享受"),
    "offer_confirmed": ("已确认", "已收到您的确认，审核通过后拨付"),
    "offer_declined": ("已放弃", "您已放弃本项政策"),
    "offer_approved": ("待拨付", "已审核通过，等待拨付"),
    "offer_held": ("暂缓兑现", "因信用状况变化，本项政策暂缓兑现"),
    "offer_released": ("恢复办理", "信用状况已恢复，本项政策恢复办理"),
    "offer_disbursed": ("已拨付", "资金已拨付，到账后请一键确认"),
    "offer_receipt": ("已确认到账", "感谢确认，本项政策兑现完成"),
    "offer_cancelled": ("已撤销", "本项政策兑现已撤销"),
    "offer_expired": ("已过期", "未在确认期限内确认，本项政策已过期"),
}



def is_id(value: object) -> bool:
    """A value that can be a row id (not a bool, not out of the column's range)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def yuan(fen: int) -> str:
    """12345 -> '123.45' (exact; the SQL of bulk notices computes the same text)."""
    return f"{fen // 100}.{fen % 100:02d}"


# --- notices ---------------------------------------------------------------------------------------

def _extra_lines(kind: str, policy: Policy, extra: dict) -> list[str]:
    lines = []
    if kind == "offer_matched" and policy.confirm_until is not None:
        lines.append(f"请于{policy.confirm_until.isoformat()}前确认")
    if "reason" in extra and extra["reason"] in HOLD_REASONS:
        lines.append(f"原因：{HOLD_REASONS[extra['reason']]}")
    elif extra.get("note"):
        lines.append(f"说明：{extra['note']}")
    if extra.get("payment_reference"):
        lines.append(f"拨付凭证号：{extra['payment_reference']}")
    return lines


def _constant(kind: str, policy: Policy, extra: dict) -> tuple[str, str, list[str], dict]:
    """What every offer's notice of ``kind`` under this policy shares: title, first line, last lines, extras."""
    prefix, first = NOTICES[kind]
    extras = {k: v for k, v in extra.items() if v is not None}
    if kind == "offer_matched" and policy.confirm_until is not None:
        extras["confirm_until"] = policy.confirm_until.isoformat()
    return f"{prefix}：{policy.title}", first, _extra_lines(kind, policy, extra), extras


def notice_body(kind: str, offer: Offer, policy: Policy, **extra) -> dict:
    """The body of an offer's notice: ids, amount, state, and the lines a push shows."""
    _, first, tail, extras = _constant(kind, policy, extra)
    return {"offer_id": offer.id, "policy_id": policy.id, "policy_title": policy.title,
            "amount_fen": offer.amount_fen, "amount": yuan(offer.amount_fen), "state": offer.state.value,
            "lines": [first, f"政策：{policy.title}", f"金额：{yuan(offer.amount_fen)} 元", *tail], **extras}


def tell(session: Session, kind: str, offer: Offer, policy: Policy, **extra) -> Notice:
    title, *_ = _constant(kind, policy, extra)
    return outbox.notify(session, offer.subject_id, kind, title, notice_body(kind, offer, policy, **extra),
                         page=PAGE.format(id=offer.id))


_STAMP = Notice.__table__.c.created_at.type
_STAMP_PARAM = re.compile(r"(?<!:):(\w+_at)\b")


def sql(statement: str) -> TextClause:
    """text() whose :…_at parameters bind as stored timestamps (SQLite compares them as the text it stored)."""
    return text(statement).bindparams(*(bindparam(n, type_=_STAMP) for n in set(_STAMP_PARAM.findall(statement))))


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _body_sql(kind: str, policy: Policy, extra: dict, amount: str) -> list[tuple[bool, str]]:
    """notice_body() as pieces of JSON text: (True, SQL over offer o) or (False, constant text). Concatenating text
    is three times faster than json_build_object over a million rows; every constant is json.dumps'ed, and the
    values from SQL are integers and state names, which need no escaping."""
    _, first, tail, extras = _constant(kind, policy, extra)
    pieces: list[tuple[bool, str]] = [
        (False, '{"offer_id": '), (True, "o.id"), (False, (f', "policy_id": {policy.id}, "policy_title": '
                                                         f'{_dump(policy.title)}, "amount_fen": ')),
        (True, "o.amount_fen"), (False, ', "amount": "'), (True, amount), (False, '", "state": "'), (True, "o.state"),
        (False, f'", "lines": [{_dump(first)}, {_dump("政策：" + policy.title)}, "金额：'), (True, amount),
        (False, ' 元"' + "".join(f", {_dump(line)}" for line in tail) + "]"
         + "".join(f", {_dump(k)}: {_dump(v)}" for k, v in extras.items()) + "}"),
    ]
    return pieces


def notices_sql(dialect: str, kind: str, policy: Policy, source: str, **extra) -> tuple[str, dict]:
    """INSERT INTO notice … SELECT, one notice of ``kind`` per row of ``source`` (SQL naming offer rows ``o``:
    ``offer o WHERE …``, or a CTE of inserted offers), and its constant parameters. The body is notice_body()'s."""
    title, *_ = _constant(kind, policy, extra)
    pg = dialect == "postgresql"
    amount = ("(o.amount_fen / 100)::text || '.' || lpad((o.amount_fen % 100)::text, 2, '0')" if pg
              else "(o.amount_fen / 100) || '.' || substr('0' || (o.amount_fen % 100), -2)")
    binds: dict = {"n_kind": kind, "n_title": title, "n_created_at": timeutil.now()}
    parts = []
    for n, (is_sql, piece) in enumerate(_body_sql(kind, policy, extra, amount)):
        if is_sql:
            parts.append(f"({piece})::text" if pg else f"({piece})")
        else:
            binds[f"n_b{n}"] = piece
            parts.append(f"CAST(:n_b{n} AS text)" if pg else f":n_b{n}")
    body = f"({' || '.join(parts)})" + ("::json" if pg else "")
    page = "'/app/#/offers/' || o.id::text" if pg else "'/app/#/offers/' || o.id"
    return (f"INSERT INTO notice (subject_id, kind, title, body, created_at, page) "
            f"SELECT o.subject_id, :n_kind, :n_title, {body}, :n_created_at, {page} FROM {source}"), binds


def tell_many(session: Session, kind: str, policy: Policy, where: str, params: dict, **extra) -> int:
    """One notice of ``kind`` per offer of ``policy`` matching ``where`` (SQL over offer o), in one INSERT … SELECT."""
    conn = session.connection()
    statement, binds = notices_sql(conn.dialect.name, kind, policy,
                                   f"offer o WHERE o.policy_id = :n_policy_id AND ({where})", **extra)
    return conn.execute(sql(statement), {**binds, **params, "n_policy_id": policy.id}).rowcount


# --- the credit gate --------------------------------------------------------------------------------

def credit_block(subject: Subject, colour: Colour) -> str | None:
    """Why the subject may not receive policy money now: red (a bad record in force) or grade D."""
    if colour == Colour.red:
        return "credit_red"
    if subject.grade == Grade.D:
        return "grade_d"
    return None


def refresh_stale_colours(session: Session, subject_ids: Select, at: datetime | None = None) -> int:
    """Recompute stored colours whose validity window does not hold at ``at``, among ``subject_ids``."""
    at = at or timeutil.now()
    stale = (select(Subject.id).where(Subject.id.in_(subject_ids))
             .where((Subject.colour.is_(None)) | (Subject.colour_valid_until <= at) | (Subject.colour_valid_from > at)))
    if session.scalar(select(func.count()).select_from(stale.subquery())) == 0:
        return 0
    return colours.refresh_all(session, stale, at=at)


def _hold_many(session: Session, policy: Policy, actor: Account | None, where: str, params: dict,
               source: OfferState, at: datetime) -> int:
    """Hold the offers (in ``source``, matching ``where``) whose enterprise is red or D now; tell each. Set-based."""
    refresh_stale_colours(session, select(Offer.subject_id).where(
        Offer.policy_id == policy.id, Offer.state == source), at)
    conn = session.connection()
    held = 0
    tests = {"credit_red": "s.colour = 'red'", "grade_d": "s.grade = 'D'"}
    for reason, test in tests.items():
        stmt = sql(f"UPDATE offer SET state = 'held', held_from = :h_from, reason = :h_reason, held_at = :h_at, "
                   f"updated_at = :h_at, updated_by_id = :h_by "
                   f"WHERE policy_id = :n_policy_id AND state = :h_source AND ({where}) "
                   f"AND subject_id IN (SELECT s.id FROM subject s WHERE {test})")
        n = conn.execute(stmt, {**params, "n_policy_id": policy.id, "h_from": _held_from(source).value,
                               "h_reason": reason, "h_at": at, "h_source": source.value,
                               "h_by": actor.id if actor else None}).rowcount
        if n:
            tell_many(session, "offer_held", policy, "o.state = 'held' AND o.held_at = :t_at AND o.reason = :t_reason",
                      {"t_at": at, "t_reason": reason}, reason=reason)
            held += n
    return held


def _held_from(source: OfferState) -> OfferState:
    """Where a held offer returns on release: the state it was about to reach (the enterprise's yes stays)."""
    return {S.notified: S.confirmed, S.confirmed: S.confirmed, S.approved: S.approved}[source]


# --- reading ---------------------------------------------------------------------------------------

def agent_subject_ids(actor: Account) -> list[int]:
    return [g.subject_id for g in actor.grants if g.role == Role.enterprise_agent and g.subject_id is not None]


def is_agent(actor: Account, offer: Offer) -> bool:
    return actor.active and actor.has_role(Role.enterprise_agent, subject_id=offer.subject_id)


def can_manage(actor: Account | None, policy: Policy) -> bool:
    """Platform admins, and the admins of the issuing department."""
    return actor is not None and actor.active and organisations.can_manage(actor, policy.organisation_id)


def _load(session: Session, offer_id: object, *, fresh: bool = False) -> Offer:
    offer = None
    if is_id(offer_id):
        q = select(Offer).where(Offer.id == offer_id)
        if fresh:
            q = q.execution_options(populate_existing=True)
        offer = session.scalar(q)
    if offer is None:
        raise DomainError("offer_not_found")
    return offer


def get_for(session: Session, actor: Account, offer_id: int) -> Offer:
    """An offer for its enterprise's agents (not a draft's preview), the issuing department's admins, platform admins."""
    offer = _load(session, offer_id)
    if can_manage(actor, offer.policy):
        return offer
    if offer.state == S.matched:
        raise DomainError("offer_not_found")  # a draft's preview: nobody was told
    if not is_agent(actor, offer):
        raise DomainError("not_your_offer")
    return offer


def list_mine(session: Session, actor: Account, *, state: str | None = None, limit: int = paging.DEFAULT_LIMIT,
              offset: int = 0) -> paging.Page:
    """The offers of every enterprise the account is an agent of, newest first."""
    ids = agent_subject_ids(actor)
    query = (select(Offer).where(Offer.subject_id.in_(ids), Offer.state.in_(VISIBLE))
             .order_by(Offer.id.desc()))
    if state not in (None, ""):
        query = query.where(Offer.state == _state(state))
    return paging.page(session, query, limit=limit, offset=offset)


def _state(value: object) -> OfferState:
    try:
        return OfferState(value)
    except ValueError:
        raise DomainError("bad_status") from None


def list_for_policy(session: Session, policy: Policy, *, state: str | None = None,
                    limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    """A policy's offers in priority order (grade, then id), optionally of one state; the caller checked rights."""
    grade_rank = case({"A": 1, "B": 2, "C": 3}, value=Offer.grade, else_=4)
    query = select(Offer).where(Offer.policy_id == policy.id).order_by(grade_rank, Offer.id)
    if state not in (None, ""):
        query = query.where(Offer.state == _state(state))
    return paging.page(session, query, limit=limit, offset=offset)


def committed_fen(session: Session, policy_id: int) -> int:
    """Money the policy's live offers hold (matched … received, held included)."""
    return int(session.scalar(select(func.coalesce(func.sum(Offer.amount_fen), 0))
                              .where(Offer.policy_id == policy_id, Offer.state.in_(LIVE))) or 0)


def stats(session: Session, policy: Policy) -> dict:
    """Counts per state and the money committed, confirmed, disbursed and received, in one query."""
    rows = session.execute(select(Offer.state, func.count(), func.coalesce(func.sum(Offer.amount_fen), 0))
                           .where(Offer.policy_id == policy.id).group_by(Offer.state)).all()
    counts = {s.value: 0 for s in S}
    money = {s: 0 for s in S}
    for state, n, fen in rows:
        counts[OfferState(state).value] = int(n)
        money[OfferState(state)] = int(fen)
    committed = sum(money[s] for s in LIVE)
    return {
        "counts": counts,
        "offers": sum(counts.values()),
        "budget_fen": policy.budget_fen,
        "committed_fen": committed,
        "confirmed_fen": sum(money[s] for s in CONFIRMED),
        "disbursed_fen": sum(money[s] for s in PAID),
        "received_fen": money[S.received],
        "held_fen": money[S.held],
        "remaining_fen": None if policy.budget_fen is None else policy.budget_fen - committed,
        "match_runs": policy.match_runs,
        "matched_at": policy.matched_at,
    }


# --- one offer, one click ----------------------------------------------------------------------------

@dataclass
class Outcome:
    """What an action did: the offer as it now is, and whether this request only repeated an earlier one."""
    offer: Offer
    repeated: bool = False


def _illegal(offer: Offer, action: str) -> DomainError:
    if offer.state == S.expired:
        return DomainError("offer_expired", detail={"state": offer.state.value, "action": action})
    return DomainError("illegal_transition", detail={"state": offer.state.value, "action": action})


def _move(session: Session, offer: Offer, sources: Iterable[OfferState], values: dict) -> bool:
    """The conditional UPDATE every move is: true when this request moved the offer."""
    t = Offer.__table__
    moved = session.execute(update(t).where(t.c.id == offer.id, t.c.state.in_([s.value for s in sources]))
                            .values(**values)).rowcount == 1
    session.refresh(offer)
    return moved


def _agent_action(session: Session, actor: Account, offer_id: int, action: str) -> Offer:
    offer = _load(session, offer_id, fresh=True)
    if offer.state == S.matched:
        raise DomainError("offer_not_found")  # a draft's preview: nobody was told
    if not is_agent(actor, offer):
        raise DomainError("not_your_offer")
    return offer


def _expired(policy: Policy, at: datetime) -> bool:
    return policy.confirm_until is not None and timeutil.local_date(at) > policy.confirm_until


def confirm(session: Session, actor: Account, offer_id: int, *, at: datetime | None = None) -> Outcome:
    """The enterprise's one click (意愿确认). Its credit is checked now: red or D holds the offer instead."""
    at = at or timeutil.now()
    offer = _agent_action(session, actor, offer_id, "confirm")
    policy = offer.policy
    if offer.state in (S.confirmed, S.held) and offer.confirmed_by_id is not None:
        return Outcome(offer, repeated=True)
    if offer.state != S.notified:
        raise _illegal(offer, "confirm")
    if _expired(policy, at):
        raise DomainError("offer_expired", detail={"state": offer.state.value, "action": "confirm",
                                                   "confirm_until": policy.confirm_until.isoformat()})
    subject = subjects.get(session, offer.subject_id)
    reason = credit_block(subject, colours.colour(session, subject, at))
    values = {"confirmed_at": at, "confirmed_by_id": actor.id, "updated_at": at, "updated_by_id": actor.id}
    if reason:
        values.update(state=S.held.value, held_from=S.confirmed.value, reason=reason, held_at=at)
    else:
        values.update(state=S.confirmed.value)
    if not _move(session, offer, (S.notified,), values):
        if offer.state in (S.confirmed, S.held) and offer.confirmed_by_id is not None:
            return Outcome(offer, repeated=True)
        raise _illegal(offer, "confirm")
    if reason:
        tell(session, "offer_held", offer, policy, reason=reason)
    else:
        tell(session, "offer_confirmed", offer, policy)
    return Outcome(offer)


def decline(session: Session, actor: Account, offer_id: int, *, note: str | None = None,
            at: datetime | None = None) -> Outcome:
    """The enterprise does not want it (before approval); its money goes back to the budget."""
    at = at or timeutil.now()
    note = checks.text(note, "note", max_length=NOTE_MAX, required=False)
    offer = _agent_action(session, actor, offer_id, "decline")
    if offer.state == S.declined:
        return Outcome(offer, repeated=True)
    sources = (S.notified, S.confirmed)
    if offer.state not in sources:
        raise _illegal(offer, "decline")
    values = {"state": S.declined.value, "declined_at": at, "note": note, "updated_at": at, "updated_by_id": actor.id}
    if not _move(session, offer, sources, values):
        if offer.state == S.declined:
            return Outcome(offer, repeated=True)
        raise _illegal(offer, "decline")
    tell(session, "offer_declined", offer, offer.policy)
    return Outcome(offer)


def confirm_receipt(session: Session, actor: Account, offer_id: int, *, at: datetime | None = None) -> Outcome:
    """The enterprise's second click: the money arrived (到账确认)."""
    at = at or timeutil.now()
    offer = _agent_action(session, actor, offer_id, "receipt")
    if offer.state == S.received:
        return Outcome(offer, repeated=True)
    if offer.state != S.disbursed:
        raise _illegal(offer, "receipt")
    values = {"state": S.received.value, "received_at": at, "received_by_id": actor.id, "updated_at": at,
                  "updated_by_id": actor.id}
    if not _move(session, offer, (S.disbursed,), values):
        if offer.state == S.received:
            return Outcome(offer, repeated=True)
        raise _illegal(offer, "receipt")
    tell(session, "offer_receipt", offer, offer.policy)
    return Outcome(offer)


# --- admins: one offer -------------------------------------------------------------------------------

def _managed(session: Session, actor: Account, offer_id: int) -> Offer:
    offer = _load(session, offer_id, fresh=True)
    if not can_manage(actor, offer.policy):
        raise DomainError("forbidden")
    return offer


def release(session: Session, actor: Account, offer_id: int, *, at: datetime | None = None) -> Outcome:
    """Take a held offer back to where it was going, once its enterprise's credit allows it again."""
    at = at or timeutil.now()
    offer = _managed(session, actor, offer_id)
    if offer.state != S.held:
        raise _illegal(offer, "release")
    subject = subjects.get(session, offer.subject_id)
    reason = credit_block(subject, colours.colour(session, subject, at))
    if reason:
        raise DomainError("still_ineligible", detail={"reason": reason})
    target = offer.held_from or S.confirmed
    if not _move(session, offer, (S.held,), {"state": target.value, "held_from": None, "reason": None, "updated_at": at,
                                                 "updated_by_id": actor.id}):
        raise _illegal(offer, "release")
    tell(session, "offer_released", offer, offer.policy)
    return Outcome(offer)


CANCELLABLE = (S.matched, S.notified, S.confirmed, S.approved, S.held)


def cancel(session: Session, actor: Account, offer_id: int, *, note: str, at: datetime | None = None) -> Outcome:
    """Withdraw an offer not yet paid (an objection upheld, wrong data …), with the reason told to the enterprise."""
    at = at or timeutil.now()
    note = checks.text(note, "note", max_length=NOTE_MAX)
    offer = _managed(session, actor, offer_id)
    if offer.state not in CANCELLABLE:
        raise _illegal(offer, "cancel")
    was_told = offer.state != S.matched
    if not _move(session, offer, CANCELLABLE, {"state": S.cancelled.value, "reason": "cancelled", "note": note,
                                                   "updated_at": at, "updated_by_id": actor.id}):
        raise _illegal(offer, "cancel")
    if was_told:
        tell(session, "offer_cancelled", offer, offer.policy, note=note)
    return Outcome(offer)


# --- admins: batches ---------------------------------------------------------------------------------

@dataclass
class BatchResult:
    """What a batch did: offers moved, offers held by the credit check, and (payments) the batch row."""
    moved: int
    held: int
    total_fen: int
    disbursement: Disbursement | None = None


def _ids(offer_ids: object) -> list[int]:
    if (not isinstance(offer_ids, (list, tuple)) or not offer_ids or len(offer_ids) > MAX_BATCH_IDS
            or not all(is_id(i) for i in offer_ids)):
        raise DomainError("bad_offer_selection", detail={"max_items": MAX_BATCH_IDS})
    return sorted(set(offer_ids))


def _selection(session: Session, policy: Policy, source: OfferState, offer_ids: object,
               everything: bool) -> tuple[str, dict]:
    """SQL (over offer o / offer) choosing the batch: the listed ids, every one of them in ``source``, or all in
    ``source``."""
    if everything == (offer_ids is not None):
        raise DomainError("bad_offer_selection", detail={"max_items": MAX_BATCH_IDS})
    if everything:
        return "1 = 1", {}
    ids = _ids(offer_ids)
    found = dict(session.execute(select(Offer.id, Offer.state).where(Offer.policy_id == policy.id,
                                                                    Offer.id.in_(ids))).all())
    missing = [i for i in ids if i not in found]
    if missing:
        raise DomainError("offer_not_found", detail={"offer_ids": missing[:50]})
    wrong = [{"id": i, "state": OfferState(s).value} for i, s in found.items() if OfferState(s) != source]
    if wrong:
        raise DomainError("offers_not_ready", detail={"expected": source.value, "offers": wrong[:50]})
    return "id IN (SELECT value FROM offer_batch)", {"_ids": ids}


def _with_batch(session: Session, params: dict) -> None:
    """Stage a batch's ids in a temporary table (an IN list of thousands of parameters is slow on both)."""
    conn = session.connection()
    bulk.create_temp(conn, "offer_batch", [("value", "int")])
    bulk.load(conn, "offer_batch", ["value"], [(i,) for i in params.pop("_ids", [])])


def _open_policy(policy: Policy, action: str) -> None:
    if policy.state == PolicyState.draft:
        raise DomainError("illegal_transition", detail={"policy_state": policy.state.value, "action": action})


def approve(session: Session, actor: Account, policy: Policy, *, offer_ids: list[int] | None = None,
            all_confirmed: bool = False, at: datetime | None = None) -> BatchResult:
    """Approve confirmed offers for payment (the listed ones, or all); the credit check holds the red and D ones."""
    at = at or timeutil.now()
    _open_policy(policy, "approve")
    where, params = _selection(session, policy, S.confirmed, offer_ids, all_confirmed)
    _with_batch(session, params)
    held = _hold_many(session, policy, actor, where, params, S.confirmed, at)
    moved = session.connection().execute(sql(
        f"UPDATE offer SET state = 'approved', approved_at = :a_at, approved_by_id = :a_by, updated_at = :a_at, "
        f"updated_by_id = :a_by WHERE policy_id = :n_policy_id AND state = 'confirmed' AND ({where})"),
        {**params, "a_at": at, "a_by": actor.id, "n_policy_id": policy.id}).rowcount
    _all_or_nothing(offer_ids, moved + held)
    total = 0
    if moved:
        tell_many(session, "offer_approved", policy, "o.state = 'approved' AND o.approved_at = :t_at", {"t_at": at})
        total = _sum(session, policy, "state = 'approved' AND approved_at = :t_at", {"t_at": at})
    _drop_batch(session)
    session.expire_all()
    return BatchResult(moved, held, total)


def _all_or_nothing(offer_ids: list[int] | None, done: int) -> None:
    """A listed batch moves every listed offer or none (another request took some meanwhile)."""
    if offer_ids is not None and done != len(set(offer_ids)):
        raise DomainError("offers_not_ready", detail={"moved": done, "asked": len(set(offer_ids))})


def _sum(session: Session, policy: Policy, where: str, params: dict) -> int:
    stmt = sql(f"SELECT COALESCE(SUM(amount_fen), 0) FROM offer WHERE policy_id = :n_policy_id AND ({where})")
    return int(session.connection().execute(stmt, {**params, "n_policy_id": policy.id}).scalar() or 0)


def _drop_batch(session: Session) -> None:
    bulk.drop_temp(session.connection(), "offer_batch")


def clean_reference(value: object) -> str:
    s = value.strip() if isinstance(value, str) else ""
    if not _REFERENCE.fullmatch(s):
        raise DomainError("bad_payment_reference")
    return s


def disburse(session: Session, actor: Account, policy: Policy, *, payment_reference: str,
             offer_ids: list[int] | None = None, all_approved: bool = False,
             at: datetime | None = None) -> BatchResult:
    """Pay approved offers in one batch with the payment's reference (拨付); the credit check holds red and D ones.

    A listed batch pays every listed offer or fails (offers_not_ready) and writes nothing; a reference pays once.
    """
    at = at or timeutil.now()
    reference = clean_reference(payment_reference)
    _open_policy(policy, "disburse")
    used = session.scalar(select(Disbursement.id).where(Disbursement.payment_reference == reference))
    if used is not None:
        raise DomainError("payment_reference_used", detail={"disbursement_id": used})
    where, params = _selection(session, policy, S.approved, offer_ids, all_approved)
    _with_batch(session, params)
    batch = Disbursement(policy_id=policy.id, payment_reference=reference, offer_count=0, total_fen=0, held_count=0,
                         created_by_id=actor.id, created_at=at)
    session.add(batch)
    session.flush()
    held = _hold_many(session, policy, actor, where, params, S.approved, at)
    moved = session.connection().execute(sql(
        f"UPDATE offer SET state = 'disbursed', disbursed_at = :d_at, disbursement_id = :d_id, updated_at = :d_at, "
        f"updated_by_id = :d_by WHERE policy_id = :n_policy_id AND state = 'approved' AND ({where})"),
        {**params, "d_at": at, "d_id": batch.id, "d_by": actor.id, "n_policy_id": policy.id}).rowcount
    _all_or_nothing(offer_ids, moved + held)
    if moved == 0 and held == 0:
        raise DomainError("offers_not_ready", detail={"expected": S.approved.value, "offers": []})
    batch.offer_count, batch.held_count = moved, held
    batch.total_fen = _sum(session, policy, "disbursement_id = :t_d", {"t_d": batch.id})
    if moved:
        tell_many(session, "offer_disbursed", policy, "o.disbursement_id = :t_d", {"t_d": batch.id},
                  payment_reference=reference)
    _drop_batch(session)
    session.flush()
    session.expire_all()
    return BatchResult(moved, held, batch.total_fen, batch)


def expire_unconfirmed(session: Session, policy: Policy, at: datetime) -> int:
    """When a policy closes: offers still waiting for a click expire (their money goes back), and are told."""
    n = session.connection().execute(sql(
        "UPDATE offer SET state = 'expired', updated_at = :e_at WHERE policy_id = :n_policy_id AND state = 'notified'"
    ), {"e_at": at, "n_policy_id": policy.id}).rowcount
    if n:
        tell_many(session, "offer_expired", policy, "o.state = 'expired' AND o.updated_at = :t_at", {"t_at": at})
    return n

