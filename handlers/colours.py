"""The colour rule (red / green / blue) and its materialisation with a validity window.

A subject's colour only changes on the (Asia/Shanghai) days when one of its records starts,
stops being published, is repaired, or enters or leaves a suspension. So we store the colour
with the window [valid_from, valid_until) between two such days; a scan reads one row and,
as long as ``at`` is inside the window, needs no look at the records. Every operation that
changes a record refreshes its subject's colour in the same transaction; bulk imports refresh
the subjects they touched in one pass.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import NamedTuple

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from . import bulk, timeutil
from .models import Colour, CreditRecord, RecordKind, Subject

_DAY = timedelta(days=1)


class RecordDates(NamedTuple):
    """What the colour rule needs of a record: its kind and its dates."""

    kind: RecordKind | str
    effective_on: date
    published_until: date | None = None
    repaired_on: date | None = None
    suspended_on: date | None = None
    suspended_until: date | None = None


@dataclass(frozen=True)
class ColourState:
    colour: Colour
    valid_from: datetime | None   # None: since forever
    valid_until: datetime | None  # None: until a record changes

    def holds_at(self, at: datetime) -> bool:
        return ((self.valid_from is None or self.valid_from <= at)
                and (self.valid_until is None or at < self.valid_until))


def in_force(r: RecordDates, day: date) -> bool:
    """Does the record count on this local day?"""
    if r.effective_on > day:
        return False
    if r.published_until is not None and day > r.published_until:
        return False
    if r.kind == RecordKind.bad:
        if r.repaired_on is not None and r.repaired_on <= day:
            return False
        if (r.suspended_on is not None and r.suspended_on <= day
                and (r.suspended_until is None or day <= r.suspended_until)):
            return False
    return True


def _change_days(r: RecordDates) -> Iterator[date]:
    """The first days on which the record's in-force status may differ from the day before."""
    yield r.effective_on
    if r.published_until is not None:
        yield r.published_until + _DAY
    if r.kind == RecordKind.bad:
        if r.repaired_on is not None:
            yield r.repaired_on
        if r.suspended_on is not None:
            yield r.suspended_on
            if r.suspended_until is not None:
                yield r.suspended_until + _DAY


def compute(records: Iterable[RecordDates], at: datetime) -> ColourState:
    """The colour at ``at`` and the window around ``at`` in which it stays the same."""
    day = timeutil.local_date(at)
    bad = honour = False
    last_change: date | None = None
    next_change: date | None = None
    for r in records:
        if in_force(r, day):
            if r.kind == RecordKind.bad:
                bad = True
            else:
                honour = True
        for d in _change_days(r):
            if d <= day:
                if last_change is None or d > last_change:
                    last_change = d
            elif next_change is None or d < next_change:
                next_change = d
    colour = Colour.red if bad else Colour.green if honour else Colour.blue
    return ColourState(
        colour,
        timeutil.start_of(last_change) if last_change else None,
        timeutil.start_of(next_change) if next_change else None,
    )


_DATES = (CreditRecord.kind, CreditRecord.effective_on, CreditRecord.published_until,
          CreditRecord.repaired_on, CreditRecord.suspended_on, CreditRecord.suspended_until)


def _records_of(session: Session, subject_id: int) -> list[RecordDates]:
    rows = session.execute(select(*_DATES).where(CreditRecord.subject_id == subject_id))
    return [RecordDates(*row) for row in rows]


def cached(subject: Subject) -> ColourState | None:
    if subject.colour is None:
        return None
    return ColourState(subject.colour, subject.colour_valid_from, subject.colour_valid_until)


def colour(session: Session, subject: Subject, at: datetime | None = None) -> Colour:
    """The subject's colour at ``at`` (default: now). One row read while the stored window holds."""
    return colour_state(session, subject, at).colour


def colour_state(session: Session, subject: Subject, at: datetime | None = None) -> ColourState:
    at = at or timeutil.now()
    state = cached(subject)
    if state is not None and state.holds_at(at):
        return state
    state = compute(_records_of(session, subject.id), at)
    if abs(at - timeutil.now()) < timedelta(minutes=5):
        store(subject, state)  # only the present is worth keeping
    return state


def store(subject: Subject, state: ColourState) -> None:
    subject.colour = state.colour
    subject.colour_valid_from = state.valid_from
    subject.colour_valid_until = state.valid_until


def refresh(session: Session, subject: Subject, at: datetime | None = None) -> ColourState:
    """Recompute after the subject's records changed; call in the same transaction as the change."""
    session.flush()
    state = compute(_records_of(session, subject.id), at or timeutil.now())
    store(subject, state)
    return state


def compute_many(rows: Iterable[tuple], at: datetime) -> Iterator[tuple[int, ColourState]]:
    """States for many subjects from rows of (subject_id, *RecordDates) ordered by subject_id.

    A subject without records may come as one row of NULLs (from an outer join): it is blue.
    """
    for subject_id, group in groupby(rows, key=lambda row: row[0]):
        yield subject_id, compute((RecordDates(*row[1:]) for row in group if row[1] is not None), at)


_REFRESH_COLUMNS = ("id", "colour", "valid_from", "valid_until")


def refresh_all(session: Session, subject_ids: Iterable[int] | Select | None = None, *,
                at: datetime | None = None, batch: int = 5000) -> int:
    """Recompute the stored colour of the given subjects (default: all). Returns how many were written.

    ``subject_ids`` may be ids or a SELECT of distinct ids (what a bulk import passes, so that even
    millions of ids are never held in memory). Subjects without records become blue. Used after
    bulk changes: records stream through in subject order, the new states go to a staging table,
    and one UPDATE ... FROM writes them, which is many times faster than an UPDATE per subject.
    """
    session.flush()
    at = at or timeutil.now()
    conn = session.connection()
    # What SQLAlchemy would bind for these columns (SQLite keeps datetimes as text of its own format).
    valid_type = Subject.__table__.c.colour_valid_from.type.dialect_impl(conn.dialect)
    valid = valid_type.bind_processor(conn.dialect) or (lambda v: v)
    bulk.create_temp(conn, "colour_refresh", [("id", "int"), ("colour", "text"),
                                              ("valid_from", "timestamp"), ("valid_until", "timestamp")])
    if subject_ids is None:
        subject_ids = select(Subject.id)
    if isinstance(subject_ids, Select):
        ids = subject_ids.subquery()
        query = (select(ids.c[0], *_DATES)
                 .outerjoin(CreditRecord, CreditRecord.subject_id == ids.c[0])
                 .order_by(ids.c[0]))
        states = compute_many(_raw_rows(conn, query, batch), at)
    else:
        states = _states_of(conn, sorted(set(subject_ids)), at, batch)
    written = 0
    for chunk in _chunked(states, batch):
        bulk.load(conn, "colour_refresh", _REFRESH_COLUMNS,
                  [(sid, s.colour.value, valid(s.valid_from), valid(s.valid_until)) for sid, s in chunk])
        written += len(chunk)
    bulk.analyze(conn, "colour_refresh")
    conn.exec_driver_sql(
        "UPDATE subject SET colour = r.colour, colour_valid_from = r.valid_from, colour_valid_until = r.valid_until"
        " FROM colour_refresh r WHERE subject.id = r.id")
    bulk.drop_temp(conn, "colour_refresh")
    return written


def _raw_rows(conn, query: Select, batch: int) -> Iterator[tuple]:
    """Stream (subject_id, *RecordDates) rows without SQLAlchemy's per-value result processing,
    which costs more than the colour rule itself; SQLite's ISO date text is parsed here instead."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    result = conn.exec_driver_sql(sql, execution_options={"stream_results": True, "max_row_buffer": batch})
    parse = conn.dialect.name == "sqlite"
    fromiso = date.fromisoformat
    for part in result.partitions(batch):
        if not parse:
            yield from part
            continue
        for sid, kind, *dates in part:
            yield (sid, kind, *(d if d is None else fromiso(d) for d in dates))


def _states_of(conn, ids: list[int], at: datetime, batch: int) -> Iterator[tuple[int, ColourState]]:
    blue = ColourState(Colour.blue, None, None)
    for i in range(0, len(ids), batch):
        chunk = ids[i:i + batch]
        rows = conn.execute(
            select(CreditRecord.subject_id, *_DATES)
            .where(CreditRecord.subject_id.in_(chunk))
            .order_by(CreditRecord.subject_id))
        states = dict(compute_many(rows, at))
        for sid in chunk:
            yield sid, states.get(sid, blue)


def _chunked(it: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for x in it:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
