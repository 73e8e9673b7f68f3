"""Incentive measures (激励措施): publishing and changing them, and which of them a subject may use now."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, contains_eager

from . import checks, colours, organisations, paging, subjects, timeutil
from .declarations import subject_ids_of
from .errors import DomainError
from .models import (
    Account, Colour, Grade, Incentive, IncentiveClerk, IncentiveStatus, Organisation, Period, QuotaUsage, Redemption,
    RedemptionStatus, RoleGrant, Scenario, Status, Subject, SubjectKind,
)
from .redemptions import REASONS, _can_redeem, _open, eligibility, period_key

TITLE_MAX = 100
DESCRIPTION_MAX = 2000
VENUE_MAX, VENUES_MAX = 100, 50
CLERKS_MAX = 200
RECENT = 5  # redemptions shown with each measure in "measures for me"

SCENARIO_NAMES = {
    Scenario.administrative_approval: "行政审批", Scenario.transport: "交通出行", Scenario.tourism: "景点旅游",
    Scenario.library: "图书借阅", Scenario.finance: "融资贷款", Scenario.medical: "医疗就医",
    Scenario.housing: "租赁安居", Scenario.other: "其他",
}
_SCENARIO_ORDER = {s: n for n, s in enumerate(Scenario)}
# Everything an admin may set; ``clerk_ids`` is the measure's clerk list, the rest are columns.
FIELDS = ("title", "description", "scenario", "eligible_colours", "eligible_kinds", "min_grade", "limit_count",
          "limit_period", "stock_total", "valid_from", "valid_until", "venues", "clerk_ids")
_REQUIRED = ("title", "scenario", "eligible_colours", "eligible_kinds")
_DEFAULTS = {"description": None, "min_grade": None, "limit_count": None, "limit_period": None, "stock_total": None,
             "valid_from": None, "valid_until": None, "venues": [], "clerk_ids": []}


# --- reading one -----------------------------------------------------------------------------------

def get(session: Session, incentive_id: int) -> Incentive:
    incentive = session.get(Incentive, incentive_id) if isinstance(incentive_id, int) else None
    if incentive is None:
        raise DomainError("incentive_not_found")
    return incentive


def can_manage(actor: Account | None, incentive: Incentive) -> bool:
    return actor is not None and actor.active and organisations.can_manage(actor, incentive.organisation_id)


def visible(actor: Account | None, incentive: Incentive) -> Incentive:
    """Anyone sees a measure of an approved organisation; its members and platform admins see any of theirs."""
    if incentive.organisation.status != Status.approved and not (
            actor is not None and actor.active and organisations.can_see(actor, incentive.organisation_id)):
        raise DomainError("incentive_not_found")  # as for subjects: a guessed id says nothing
    return incentive


def is_open(incentive: Incentive, at: datetime | None = None) -> bool:
    """Open and within its dates (the organisation's state aside): what redeem() checks."""
    return _open(incentive, at or timeutil.now())


def stock_remaining(incentive: Incentive) -> int | None:
    return None if incentive.stock_total is None else max(incentive.stock_total - incentive.stock_used, 0)


# --- changing --------------------------------------------------------------------------------------

def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _subset(cls, values: object, code: str) -> list[str]:
    """A non-empty set of ``cls`` members, as values in the enum's order."""
    if not isinstance(values, (list, tuple, set, frozenset)) or not values:
        raise DomainError(code)
    chosen = {checks.choice(cls, v, code) for v in values}
    return [m.value for m in cls if m in chosen]


def _date(value: object, name: str) -> date | None:
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise DomainError("bad_date", detail={"field": name})
    return value


def _venues(values: object) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, (list, tuple)) or len(values) > VENUES_MAX:
        raise DomainError("bad_venues", detail={"max_items": VENUES_MAX, "max_length": VENUE_MAX})
    out: list[str] = []
    for v in values:
        s = v.strip() if isinstance(v, str) else ""
        if not s or len(s) > VENUE_MAX:
            raise DomainError("bad_venues", detail={"max_items": VENUES_MAX, "max_length": VENUE_MAX})
        if s not in out:
            out.append(s)
    return out


def _clerk_ids(session: Session, organisation_id: int, values: object) -> list[int]:
    """Accounts that are clerks or admins of this organisation; an empty list means all its clerks."""
    if values is None:
        return []
    if (not isinstance(values, (list, tuple)) or len(values) > CLERKS_MAX
            or not all(_is_int(v, 1) for v in values)):
        raise DomainError("bad_incentive_clerk")
    wanted = sorted(set(values))
    members = set(session.scalars(select(RoleGrant.account_id).where(
        RoleGrant.account_id.in_(wanted), RoleGrant.organisation_id == organisation_id,
        RoleGrant.role.in_(organisations.MEMBER_ROLES))))
    strangers = [a for a in wanted if a not in members]
    if strangers:
        raise DomainError("bad_incentive_clerk", detail={"account_ids": strangers})
    return wanted


def _validated(session: Session, incentive: Incentive | None, organisation_id: int, values: dict) -> dict:
    """Every field of the measure as it would be after the change, checked together; nothing is assigned."""
    v = dict(values)
    out = {
        "title": checks.text(v["title"], "title", max_length=TITLE_MAX),
        "description": checks.text(v["description"], "description", max_length=DESCRIPTION_MAX, required=False),
        "scenario": checks.choice(Scenario, v["scenario"], "bad_scenario"),
        "eligible_colours": _subset(Colour, v["eligible_colours"], "bad_eligible_colours"),
        "eligible_kinds": _subset(SubjectKind, v["eligible_kinds"], "bad_eligible_kinds"),
        "min_grade": None if v["min_grade"] is None else checks.choice(Grade, v["min_grade"], "bad_grade"),
    }
    if out["min_grade"] is not None and SubjectKind.person.value in out["eligible_kinds"]:
        # Grades (公共信用等级) are given to enterprises and institutions. redeem() applies a minimum grade to every
        # subject, so persons (who have none) would be refused: a measure with a grade is for organisations only.
        raise DomainError("min_grade_not_applicable")

    count, period = v["limit_count"], v["limit_period"]
    if count is not None and not _is_int(count, 1):
        raise DomainError("bad_limit_count")
    period = None if period is None else checks.choice(Period, period, "bad_limit_period")
    if (count is None) != (period is None):
        raise DomainError("limit_incomplete")
    out["limit_count"], out["limit_period"] = count, period

    stock = v["stock_total"]
    if stock is not None and not _is_int(stock, 0):
        raise DomainError("bad_stock")
    used = incentive.stock_used if incentive is not None else 0
    if stock is not None and stock < used:
        raise DomainError("stock_below_used", detail={"stock_used": used})
    out["stock_total"] = stock

    out["valid_from"] = _date(v["valid_from"], "valid_from")
    out["valid_until"] = _date(v["valid_until"], "valid_until")
    checks.in_order(out["valid_from"], out["valid_until"], "valid_from", "valid_until")
    out["venues"] = _venues(v["venues"])
    out["clerk_ids"] = _clerk_ids(session, organisation_id, v["clerk_ids"])
    return out


def _apply(incentive: Incentive, clean: dict) -> None:
    clerk_ids = clean.pop("clerk_ids")
    for name, value in clean.items():
        setattr(incentive, name, value)
    # Keep the rows that stay (their primary key is the pair), drop the others, add the new.
    incentive.clerks = [c for c in incentive.clerks if c.account_id in clerk_ids] + [
        IncentiveClerk(account_id=a) for a in clerk_ids if a not in {c.account_id for c in incentive.clerks}]


def _unknown(values: dict) -> None:
    extra = sorted(set(values) - set(FIELDS))
    if extra:
        raise TypeError(f"unknown incentive fields: {', '.join(extra)}")


def create_incentive(session: Session, actor: Account, organisation_id: int, **values) -> Incentive:
    """Publish a measure (open at once) for an approved organisation the actor administers."""
    _unknown(values)
    organisations._managed(session, actor, organisation_id)
    missing = [name for name in _REQUIRED if name not in values]
    if missing:
        raise DomainError("missing_field", detail={"fields": missing})
    clean = _validated(session, None, organisation_id, {**_DEFAULTS, **values})
    incentive = Incentive(organisation_id=organisation_id, status=IncentiveStatus.open, created_by_id=actor.id,
                          stock_used=0, clerks=[])
    _apply(incentive, clean)
    session.add(incentive)
    session.flush()
    return incentive


def _current(incentive: Incentive) -> dict:
    values = {name: getattr(incentive, name) for name in FIELDS if name != "clerk_ids"}
    values["clerk_ids"] = [c.account_id for c in incentive.clerks]
    return values


def _locked(session: Session, actor: Account, incentive_id: int) -> Incentive:
    """The measure, row-locked so that its stock count cannot move while we check against it."""
    incentive = session.scalar(select(Incentive).where(Incentive.id == incentive_id)
                               .with_for_update(of=Incentive)
                               .execution_options(populate_existing=True)) if isinstance(incentive_id, int) else None
    if incentive is None:
        raise DomainError("incentive_not_found")
    organisations._managed(session, actor, incentive.organisation_id)
    return incentive


def update_incentive(session: Session, actor: Account, incentive_id: int, **changes) -> Incentive:
    """Change some fields; None clears an optional one. The result is checked as a whole."""
    _unknown(changes)
    incentive = _locked(session, actor, incentive_id)
    clean = _validated(session, incentive, incentive.organisation_id, {**_current(incentive), **changes})
    _apply(incentive, clean)
    session.flush()
    return incentive


def set_status(session: Session, actor: Account, incentive_id: int, status: IncentiveStatus) -> Incentive:
    """Close or reopen. Asking for the state it is already in changes nothing (a double tap is harmless)."""
    incentive = _locked(session, actor, incentive_id)
    incentive.status = status
    session.flush()
    return incentive


def close_incentive(session: Session, actor: Account, incentive_id: int) -> Incentive:
    return set_status(session, actor, incentive_id, IncentiveStatus.closed)


def reopen_incentive(session: Session, actor: Account, incentive_id: int) -> Incentive:
    return set_status(session, actor, incentive_id, IncentiveStatus.open)


# --- lists -----------------------------------------------------------------------------------------

def _scenario(value: object) -> Scenario | None:
    return None if value in (None, "") else checks.choice(Scenario, value, "bad_scenario")


def published(at: datetime, *, scenario: Scenario | None = None) -> Select:
    """Open measures of approved organisations that have not ended (some may start later)."""
    day = timeutil.local_date(at)
    query = (select(Incentive).join(Incentive.organisation).options(contains_eager(Incentive.organisation))
             .where(Incentive.status == IncentiveStatus.open, Organisation.status == Status.approved,
                    or_(Incentive.valid_until.is_(None), Incentive.valid_until >= day)))
    if scenario is not None:
        query = query.where(Incentive.scenario == scenario)
    return query


def list_published(session: Session, *, scenario: str | None = None, at: datetime | None = None,
                   limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    """The public catalogue, oldest first."""
    query = published(at or timeutil.now(), scenario=_scenario(scenario)).order_by(Incentive.id)
    return paging.page(session, query, limit=limit, offset=offset)


def list_for_organisation(session: Session, actor: Account, organisation_id: int, *, status: str | None = None,
                          scenario: str | None = None, limit: int = paging.DEFAULT_LIMIT,
                          offset: int = 0) -> paging.Page:
    """All of an organisation's measures, for its admins and clerks (clerks pick one at the counter)."""
    organisations.get(session, organisation_id)
    if not organisations.can_see(actor, organisation_id):
        raise DomainError("forbidden")
    query = select(Incentive).where(Incentive.organisation_id == organisation_id).order_by(Incentive.id)
    if status not in (None, ""):
        query = query.where(Incentive.status == checks.choice(IncentiveStatus, status, "bad_status"))
    if (s := _scenario(scenario)) is not None:
        query = query.where(Incentive.scenario == s)
    return paging.page(session, query, limit=limit, offset=offset)


def can_redeem(actor: Account, incentive: Incentive) -> bool:
    """Whether this account is among the clerks allowed to redeem the measure (the rule redeem() applies)."""
    return _can_redeem(actor, incentive)


# --- measures for me -------------------------------------------------------------------------------

@dataclass
class Entry:
    """One measure as a subject sees it: can I use it now, and if not, why."""
    incentive: Incentive
    reason: str | None
    remaining: dict
    recent: list[Redemption] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.reason is None

    @property
    def message(self) -> str | None:
        return REASONS[self.reason] if self.reason else None


@dataclass
class ForSubject:
    subject: Subject
    colour: Colour
    entries: list[Entry]

    @property
    def usable(self) -> list[Entry]:
        return [e for e in self.entries if e.usable]

    @property
    def not_usable(self) -> list[Entry]:
        return [e for e in self.entries if not e.usable]


def subject_for(session: Session, actor: Account, subject_id: int | None = None) -> Subject:
    """The actor's own subject, or an enterprise it is the agent of."""
    mine = subject_ids_of(actor)
    if subject_id is None:
        if actor.subject_id is None:
            raise DomainError("no_subject")
        subject_id = actor.subject_id
    elif subject_id not in mine:
        raise DomainError("subject_not_found")  # a guessed id says nothing
    return subjects.get(session, subject_id)


def _used(session: Session, subject_id: int, wanted: dict[int, str]) -> dict[int, int]:
    """This period's uses of each measure (id -> period key) by the subject, in one query."""
    if not wanted:
        return {}
    rows = session.execute(select(QuotaUsage.incentive_id, QuotaUsage.period_key, QuotaUsage.used).where(
        QuotaUsage.subject_id == subject_id, QuotaUsage.incentive_id.in_(list(wanted)),
        QuotaUsage.period_key.in_(sorted(set(wanted.values())))))
    return {i: used for i, key, used in rows if wanted[i] == key}


def _recent(session: Session, subject_id: int, incentive_ids: list[int]) -> dict[int, list[Redemption]]:
    """The last RECENT redemptions (voided ones included) of each measure by the subject, in one query."""
    if not incentive_ids:
        return {}
    rank = func.row_number().over(partition_by=Redemption.incentive_id,
                                  order_by=(Redemption.created_at.desc(), Redemption.id.desc())).label("rank")
    ranked = (select(Redemption.id, rank)
              .where(Redemption.subject_id == subject_id, Redemption.incentive_id.in_(incentive_ids),
                     Redemption.status.in_((RedemptionStatus.redeemed, RedemptionStatus.voided)))
              .subquery())
    rows = session.scalars(select(Redemption).join(ranked, ranked.c.id == Redemption.id)
                           .where(ranked.c.rank <= RECENT)
                           .order_by(Redemption.created_at.desc(), Redemption.id.desc()))
    out: dict[int, list[Redemption]] = {}
    for r in rows:
        out.setdefault(r.incentive_id, []).append(r)
    return out


def for_subject(session: Session, actor: Account, subject_id: int | None = None, *, scenario: str | None = None,
                at: datetime | None = None) -> ForSubject:
    """Every published measure, each usable now or not with the reason a clerk's scan would give.

    The reasons are redeem()'s, checked in its order (closed, colour/kind/grade, limit, stock) and
    with the colour now; a scan can still differ if the state changes in between.
    """
    at = at or timeutil.now()
    subject = subject_for(session, actor, subject_id)
    colour = colours.colour(session, subject, at)
    measures = sorted(session.scalars(published(at, scenario=_scenario(scenario))),
                      key=lambda i: (_SCENARIO_ORDER[i.scenario], i.id))
    keys = {i.id: period_key(i.limit_period, at) for i in measures if i.limit_count is not None}
    used = _used(session, subject.id, keys)
    recent = _recent(session, subject.id, [i.id for i in measures])
    entries = []
    for i in measures:
        quota = None if i.limit_count is None else max(i.limit_count - used.get(i.id, 0), 0)
        stock = stock_remaining(i)
        reason = ("incentive_closed" if not _open(i, at)
                  else eligibility(i, subject, colour.value)
                  or ("limit_reached" if quota == 0 else "out_of_stock" if stock == 0 else None))
        remaining = {"quota": quota, "period": i.limit_period.value if i.limit_period else None, "stock": stock}
        entries.append(Entry(i, reason, remaining, recent.get(i.id, [])))
    return ForSubject(subject, colour, entries)

