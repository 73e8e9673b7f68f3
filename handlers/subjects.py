"""Subjects: registering natural and legal persons and finding them by their (hashed) identifier."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import colours, identifiers
from .errors import DomainError
from .models import Grade, RiskLevel, Subject, SubjectKind
from .privacy import Keys, mask_name


def kind_of(kind: str) -> SubjectKind:
    try:
        return SubjectKind(kind)
    except ValueError:
        raise DomainError("bad_subject_kind") from None


def clean_name(name: str) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise DomainError("bad_name")
    return name


def grade_of(value: str | None) -> Grade | None:
    if value in (None, ""):
        return None
    try:
        return Grade(value.strip().upper())
    except (ValueError, AttributeError):
        raise DomainError("bad_grade") from None


def risk_of(value: str | None) -> RiskLevel | None:
    if value in (None, ""):
        return None
    try:
        return RiskLevel(value.strip())
    except (ValueError, AttributeError):
        raise DomainError("bad_risk_level") from None


def find(session: Session, keys: Keys, identifier: str, *, kind: str | None = None) -> Subject | None:
    kind = kind or identifiers.guess_kind(identifier)
    canonical = identifiers.normalise(kind, identifier)
    return session.scalar(select(Subject).where(Subject.id_hash == keys.identifier_hash(canonical)))


def get(session: Session, subject_id: int) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise DomainError("subject_not_found")
    return subject


def upsert(session: Session, keys: Keys, *, kind: str, identifier: str, name: str,
           grade: str | None = None, grade_evaluated_on: date | None = None,
           risk_level: str | None = None) -> Subject:
    """Create the subject or update its name and grade; the identifier never changes."""
    k = kind_of(kind)
    canonical = identifiers.normalise(k.value, identifier)
    name = clean_name(name)
    id_hash = keys.identifier_hash(canonical)
    subject = session.scalar(select(Subject).where(Subject.id_hash == id_hash))
    if subject is None:
        subject = Subject(kind=k, id_hash=id_hash, id_masked=identifiers.mask(canonical))
        session.add(subject)
    elif subject.kind != k and not (subject.kind != SubjectKind.person and k != SubjectKind.person):
        raise DomainError("bad_subject_kind")
    subject.kind = k
    subject.name_encrypted = keys.encrypt_name(name, bound_to=id_hash)
    subject.name_masked = mask_name(name, person=k == SubjectKind.person)
    if k != SubjectKind.person:
        subject.grade = grade_of(grade)
        subject.grade_evaluated_on = grade_evaluated_on
        subject.risk_level = risk_of(risk_level)
    if subject.colour is None:
        session.flush()
        colours.refresh(session, subject)
    return subject


def full_name(keys: Keys, subject: Subject) -> str:
    """The clear name: for the subject itself and platform admins only, never for logs or clerks."""
    return keys.decrypt_name(subject.name_encrypted, bound_to=subject.id_hash)


def summary(session: Session, subject: Subject) -> dict:
    """What a clerk or a list may show: masked forms and the colour now."""
    out = {
        "id": subject.id,
        "kind": subject.kind.value,
        "name": subject.name_masked,
        "identifier": subject.id_masked,
        "colour": colours.colour(session, subject).value,
    }
    if subject.kind != SubjectKind.person:
        out["grade"] = subject.grade.value if subject.grade else None
        out["grade_evaluated_on"] = subject.grade_evaluated_on.isoformat() if subject.grade_evaluated_on else None
        out["risk_level"] = subject.risk_level.value if subject.risk_level else None
    return out
