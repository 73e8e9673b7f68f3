"""Credit records kept by platform admins: adding, repair (信用修复), suspension (暂缓), and their categories.

Every change refreshes the subject's colour in the same transaction. CreditRecord has no author
column, so who did what is written to the audit log (ids only, never identifiers or names).
"""
from __future__ import annotations

import logging
import re
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import checks, colours, paging, subjects
from .errors import DomainError
from .models import Account, AppliesTo, Category, CreditRecord, RecordKind, Subject, SubjectKind
from .privacy import Keys

log = logging.getLogger("xinma.audit")

DECLARATION_SOURCE = "declaration"  # records made from approved honour declarations; not for manual entry
REASON_MAX = 2000
_CATEGORY_CODE = re.compile(r"[a-z0-9_]{2,48}")


# --- categories ----------------------------------------------------------------------------------

def list_categories(session: Session, *, limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    return paging.page(session, select(Category).order_by(Category.kind, Category.code), limit=limit, offset=offset)


def create_category(session: Session, actor: Account, *, code: str, name: str, kind: str,
                    applies_to: str) -> Category:
    if not isinstance(code, str) or not _CATEGORY_CODE.fullmatch(code):
        raise DomainError("bad_category_code")
    name = checks.text(name, "name", max_length=64)
    k = checks.choice(RecordKind, kind, "bad_record_kind")
    a = checks.choice(AppliesTo, applies_to, "bad_applies_to")
    if session.get(Category, code) is not None:
        raise DomainError("category_exists")
    category = Category(code=code, name=name, kind=k, applies_to=a)
    session.add(category)
    session.flush()
    log.info("category created", extra={"category": code, "by": actor.id})
    return category


def applies(category: Category, subject: Subject) -> bool:
    if category.applies_to == AppliesTo.any:
        return True
    return (category.applies_to == AppliesTo.person) == (subject.kind == SubjectKind.person)


def category_for(session: Session, code: str, subject: Subject) -> Category:
    """The category named ``code``, which must apply to this kind of subject."""
    category = session.get(Category, code) if isinstance(code, str) else None
    if category is None:
        raise DomainError("unknown_category")
    if not applies(category, subject):
        raise DomainError("category_kind_mismatch")
    return category


# --- records -------------------------------------------------------------------------------------

def get(session: Session, record_id: int) -> CreditRecord:
    record = session.get(CreditRecord, record_id)
    if record is None:
        raise DomainError("record_not_found")
    return record


def _refresh(session: Session, subject_id: int) -> None:
    colours.refresh(session, subjects.get(session, subject_id))


def create_record(session: Session, subject: Subject, category: Category, *, source: str, external_id: str,
                  effective_on: date, published_until: date | None = None) -> CreditRecord:
    """Insert a checked record and refresh the colour; shared by manual entry and declaration approval."""
    checks.in_order(effective_on, published_until, "effective_on", "published_until")
    if session.scalar(select(CreditRecord.id).where(CreditRecord.source == source,
                                                    CreditRecord.external_id == external_id)) is not None:
        raise DomainError("record_exists")
    record = CreditRecord(subject_id=subject.id, kind=category.kind, category_code=category.code, source=source,
                          external_id=external_id, effective_on=effective_on, published_until=published_until)
    session.add(record)
    colours.refresh(session, subject)
    return record


def add_record(session: Session, actor: Account, *, subject_id: int, category: str, source: str,
               external_id: str, effective_on: date, published_until: date | None = None) -> CreditRecord:
    """A platform admin enters one honour or bad record; ``external_id`` is unique per source."""
    source = checks.text(source, "source", max_length=64)
    if source == DECLARATION_SOURCE:
        raise DomainError("reserved_source")
    external_id = checks.text(external_id, "external_id", max_length=128)
    subject = subjects.get(session, subject_id)
    record = create_record(session, subject, category_for(session, category, subject), source=source,
                           external_id=external_id, effective_on=effective_on, published_until=published_until)
    log.info("record added", extra={"record_id": record.id, "subject_id": subject.id, "by": actor.id})
    return record


def _bad(session: Session, record_id: int) -> CreditRecord:
    record = get(session, record_id)
    if record.kind != RecordKind.bad:
        raise DomainError("not_a_bad_record")
    if record.repaired_on is not None:
        raise DomainError("already_repaired")
    return record


def _reason(reason: str | None, message: str) -> str:
    reason = checks.text(reason, "reason", max_length=REASON_MAX, required=False)
    if not reason:
        raise DomainError("reason_required", message)
    return reason


def repair(session: Session, actor: Account, record_id: int, *, repaired_on: date, reason: str) -> CreditRecord:
    """信用修复: the bad record stops counting from ``repaired_on``."""
    record = _bad(session, record_id)
    reason = _reason(reason, "信用修复必须填写原因")
    checks.in_order(record.effective_on, repaired_on, "effective_on", "repaired_on")
    record.repaired_on, record.repair_reason = repaired_on, reason
    _refresh(session, record.subject_id)
    log.info("record repaired", extra={"record_id": record.id, "by": actor.id})
    return record


def _suspended_now(record: CreditRecord, today: date) -> bool:
    return (record.suspended_on is not None
            and (record.suspended_until is None or record.suspended_until >= today))


def suspend(session: Session, actor: Account, record_id: int, *, suspended_on: date, reason: str,
            suspended_until: date | None = None) -> CreditRecord:
    """暂缓: the bad record does not count from ``suspended_on`` through ``suspended_until`` (open: until lifted).

    A record holds one suspension; one that has not ended must be lifted before another is set.
    """
    record = _bad(session, record_id)
    reason = _reason(reason, "暂缓必须填写原因")
    checks.in_order(record.effective_on, suspended_on, "effective_on", "suspended_on")
    checks.in_order(suspended_on, suspended_until, "suspended_on", "suspended_until")
    if _suspended_now(record, checks.today()):
        raise DomainError("already_suspended")
    record.suspended_on, record.suspended_until, record.suspension_reason = suspended_on, suspended_until, reason
    _refresh(session, record.subject_id)
    log.info("record suspended", extra={"record_id": record.id, "by": actor.id})
    return record


def lift_suspension(session: Session, actor: Account, record_id: int) -> CreditRecord:
    """End the suspension today: the record counts again from today (Asia/Shanghai)."""
    record = get(session, record_id)
    today = checks.today()
    if not _suspended_now(record, today):
        raise DomainError("not_suspended")
    if record.suspended_on >= today:
        # Not yet begun (or begun today): as if it never was.
        record.suspended_on = record.suspended_until = record.suspension_reason = None
    else:
        record.suspended_until = date.fromordinal(today.toordinal() - 1)
    _refresh(session, record.subject_id)
    log.info("record suspension lifted", extra={"record_id": record.id, "by": actor.id})
    return record


def lookup_subject(session: Session, keys: Keys, identifier: str) -> Subject:
    """A platform admin's look-up by ID number or credit code, through the keyed hash only."""
    subject = subjects.find(session, keys, identifier)
    if subject is None:
        raise DomainError("subject_not_found")
    return subject
