"""Reading redemptions back: the holder's own list, an organisation's list and its totals."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from . import paging, timeutil
from .errors import DomainError
from .models import Account, Incentive, Redemption, RedemptionStatus, Subject


@dataclass(frozen=True)
class Filters:
    """What an organisation narrows its list to; days are Asia/Shanghai calendar days, inclusive."""
    status: str | None = None
    incentive_id: int | None = None
    day_from: date | None = None
    day_to: date | None = None

    def apply(self, query: Select) -> Select:
        if self.status is not None:
            try:
                query = query.where(Redemption.status == RedemptionStatus(self.status))
            except ValueError:
                raise DomainError("bad_status") from None
        if self.incentive_id is not None:
            query = query.where(Redemption.incentive_id == self.incentive_id)
        if self.day_from is not None:
            query = query.where(Redemption.created_at >= timeutil.start_of(self.day_from))
        if self.day_to is not None:
            query = query.where(Redemption.created_at < timeutil.start_of(self.day_to + timedelta(days=1)))
        return query


@dataclass(frozen=True)
class Row:
    """A redemption with what a list shows beside it, loaded in bulk (no query per row)."""
    redemption: Redemption
    incentive: Incentive
    subject: Subject | None
    clerk: Account | None


def _newest_first(query: Select) -> Select:
    return query.order_by(Redemption.created_at.desc(), Redemption.id.desc())


def _rows(session: Session, page: paging.Page, *, with_people: bool) -> paging.Page:
    items: list[Redemption] = page.items
    incentive_ids = {r.incentive_id for r in items}
    incentives = {i.id: i for i in session.scalars(select(Incentive).where(Incentive.id.in_(incentive_ids)))}
    subjects: dict[int, Subject] = {}
    clerks: dict[int, Account] = {}
    if with_people:
        ids = {r.subject_id for r in items if r.subject_id is not None}
        subjects = {s.id: s for s in session.scalars(select(Subject).where(Subject.id.in_(ids)))} if ids else {}
        ids = {r.clerk_id for r in items}
        clerks = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids)))} if ids else {}
    rows = [Row(r, incentives[r.incentive_id], subjects.get(r.subject_id), clerks.get(r.clerk_id)) for r in items]
    return page._replace(items=rows)


def for_subject(session: Session, subject_id: int, *, status: str | None = None,
                limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    """The holder's own redemptions, newest first, rejected attempts included (a replay shows misuse)."""
    query = Filters(status=status).apply(select(Redemption).where(Redemption.subject_id == subject_id))
    return _rows(session, paging.page(session, _newest_first(query), limit=limit, offset=offset), with_people=False)


def for_organisation(session: Session, organisation_id: int, filters: Filters, *,
                     limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    query = filters.apply(select(Redemption).where(Redemption.organisation_id == organisation_id))
    return _rows(session, paging.page(session, _newest_first(query), limit=limit, offset=offset), with_people=True)


def totals(session: Session, organisation_id: int, filters: Filters) -> list[dict]:
    """Per incentive: how many redeemed, rejected and voided under the same filters (not paged)."""
    query = filters.apply(
        select(Redemption.incentive_id, Incentive.title, Redemption.status, func.count())
        .join(Incentive, Incentive.id == Redemption.incentive_id)
        .where(Redemption.organisation_id == organisation_id)
        .group_by(Redemption.incentive_id, Incentive.title, Redemption.status))
    out: dict[int, dict] = {}
    for incentive_id, title, status, n in session.execute(query):
        entry = out.setdefault(incentive_id, {"incentive_id": incentive_id, "title": title,
                                              **{s.value: 0 for s in RedemptionStatus}})
        entry[RedemptionStatus(status).value] = n
    return [out[k] for k in sorted(out)]
