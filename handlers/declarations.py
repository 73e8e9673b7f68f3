"""Honour declarations (申报荣誉信息): a subject's claim with evidence, which a platform admin approves into a record."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import checks, onboarding, paging, records, subjects, timeutil
from .errors import DomainError
from .models import Account, DeclarationStatus, HonourDeclaration, RecordKind, Role

EVIDENCE_MAX = 2000

# A declaration is reviewed once: only a pending one can be approved or rejected.
RULES: dict[str, onboarding.Rule] = {
    "approve": onboarding.Rule(DeclarationStatus.approved, frozenset({DeclarationStatus.pending})),
    "reject": onboarding.Rule(DeclarationStatus.rejected, frozenset({DeclarationStatus.pending}),
                              reason_required=True),
}


def subject_ids_of(actor: Account) -> list[int]:
    """The subjects an account may declare for: its own person, and enterprises it is the agent of."""
    ids = [actor.subject_id] if actor.subject_id is not None else []
    ids += [g.subject_id for g in actor.grants if g.role == Role.enterprise_agent and g.subject_id is not None]
    return ids


def declare(session: Session, actor: Account, *, category: str, title: str, issued_by: str, awarded_on: date,
            evidence: str, valid_until: date | None = None, subject_id: int | None = None) -> HonourDeclaration:
    """Declare an honour for ``subject_id`` (default: the actor's only subject)."""
    mine = subject_ids_of(actor)
    if subject_id is None:
        if not mine:
            raise DomainError("no_subject")
        subject_id = mine[0]
    elif subject_id not in mine:
        raise DomainError("subject_not_found")  # as for reads: a guessed id says nothing
    subject = subjects.get(session, subject_id)
    category_ = records.category_for(session, category, subject)
    if category_.kind != RecordKind.honour:
        raise DomainError("not_an_honour_category")
    title = checks.text(title, "title", max_length=200)
    issued_by = checks.text(issued_by, "issued_by", max_length=100)
    evidence = checks.text(evidence, "evidence", max_length=EVIDENCE_MAX)
    checks.not_in_future(awarded_on, "awarded_on")
    checks.in_order(awarded_on, valid_until, "awarded_on", "valid_until")
    declaration = HonourDeclaration(
        subject_id=subject.id, declared_by_id=actor.id, category_code=category_.code, title=title,
        issued_by=issued_by, awarded_on=awarded_on, valid_until=valid_until, evidence=evidence,
        status=DeclarationStatus.pending)
    session.add(declaration)
    session.flush()
    return declaration


def get(session: Session, declaration_id: int) -> HonourDeclaration:
    declaration = session.get(HonourDeclaration, declaration_id)
    if declaration is None:
        raise DomainError("declaration_not_found")
    return declaration


def review_declaration(session: Session, actor: Account, declaration_id: int, *, decision: str,
                       reason: str | None = None) -> HonourDeclaration:
    """Approve (the honour becomes a record and the colour is refreshed) or reject with a reason."""
    # Locked, so two admins approving at once cannot both make a record.
    declaration = session.scalar(select(HonourDeclaration).where(HonourDeclaration.id == declaration_id)
                                 .with_for_update().execution_options(populate_existing=True))
    if declaration is None:
        raise DomainError("declaration_not_found")
    status, reason = onboarding.decide(declaration.status, decision, reason, RULES)
    if status == DeclarationStatus.approved:
        subject = subjects.get(session, declaration.subject_id)
        record = records.create_record(
            session, subject, records.category_for(session, declaration.category_code, subject),
            source=records.DECLARATION_SOURCE, external_id=f"declaration-{declaration.id}",
            effective_on=declaration.awarded_on, published_until=declaration.valid_until)
        declaration.record_id = record.id
    declaration.status, declaration.review_reason = status, reason
    declaration.reviewed_by_id, declaration.reviewed_at = actor.id, timeutil.now()
    session.flush()
    return declaration


def list_declarations(session: Session, *, status: str | None = None, subject_ids: list[int] | None = None,
                      limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    """Oldest first; ``subject_ids`` narrows to those subjects (an account's own view)."""
    query = select(HonourDeclaration).order_by(HonourDeclaration.created_at, HonourDeclaration.id)
    if status is not None:
        query = query.where(HonourDeclaration.status == checks.choice(DeclarationStatus, status, "bad_status"))
    if subject_ids is not None:
        query = query.where(HonourDeclaration.subject_id.in_(subject_ids))
    return paging.page(session, query, limit=limit, offset=offset)
