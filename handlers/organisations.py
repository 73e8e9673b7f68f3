"""Organisations (入驻): applying, review, and the members an organisation's admins manage."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import accounts, checks, onboarding, paging, subjects
from .errors import DomainError
from .models import Account, Organisation, OrganisationKind, Role, RoleGrant, Status, SubjectKind
from .privacy import Keys

CONTACT_MAX = 200
MEMBER_ROLES = (Role.clerk, Role.org_admin)
# Which kind of subject an organisation with a credit code is.
_SUBJECT_KIND = {
    OrganisationKind.department: SubjectKind.institution,
    OrganisationKind.institution: SubjectKind.institution,
    OrganisationKind.enterprise: SubjectKind.enterprise,
    OrganisationKind.merchant: SubjectKind.enterprise,
}


def get(session: Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise DomainError("organisation_not_found")
    return organisation


def can_manage(account: Account, organisation_id: int) -> bool:
    """An admin of this organisation (not of another), or a platform admin."""
    return (account.has_role(Role.platform_admin)
            or account.has_role(Role.org_admin, organisation_id=organisation_id))


def can_see(account: Account, organisation_id: int) -> bool:
    return can_manage(account, organisation_id) or account.has_role(Role.clerk, organisation_id=organisation_id)


def _managed(session: Session, actor: Account, organisation_id: int, *, active: bool = True) -> Organisation:
    organisation = get(session, organisation_id)
    if not can_manage(actor, organisation_id):
        raise DomainError("forbidden")
    if active and organisation.status != Status.approved:
        raise DomainError("organisation_not_active", detail={"status": organisation.status.value})
    return organisation


def apply_organisation(session: Session, actor: Account, *, name: str, kind: str, contact: str,
                       credit_code: str | None = None, keys: Keys | None = None) -> Organisation:
    """A pending organisation whose applicant becomes its org_admin.

    With a credit code the organisation is linked to its subject, which is created (blue, no
    records) when unknown; an existing subject's stored name is neither checked nor changed,
    because an organisation's display name often differs from its registered one.
    """
    name = subjects.clean_name(name)
    k = checks.choice(OrganisationKind, kind, "bad_organisation_kind")
    contact = checks.text(contact, "contact", max_length=CONTACT_MAX)
    subject_id = None
    if credit_code not in (None, ""):
        if keys is None:
            raise TypeError("keys are needed to look up a credit code")
        subject = subjects.find(session, keys, credit_code, kind=_SUBJECT_KIND[k].value)
        if subject is None:
            subject = subjects.upsert(session, keys, kind=_SUBJECT_KIND[k].value, identifier=credit_code, name=name)
            session.flush()
        subject_id = subject.id
    organisation = Organisation(name=name, kind=k, contact=contact, subject_id=subject_id, status=Status.pending)
    session.add(organisation)
    session.flush()
    accounts.grant(session, actor, Role.org_admin, organisation_id=organisation.id)
    return organisation


def review_organisation(session: Session, actor: Account, organisation_id: int, *, decision: str,
                        reason: str | None = None) -> Organisation:
    organisation = get(session, organisation_id)
    onboarding.review(organisation, actor, decision=decision, reason=reason)
    session.flush()
    return organisation


def edit_organisation(session: Session, actor: Account, organisation_id: int, *, name: str | None = None,
                      contact: str | None = None) -> Organisation:
    """Change the display name or contact; None leaves a field as it is."""
    organisation = _managed(session, actor, organisation_id)
    if name is not None:
        organisation.name = subjects.clean_name(name)
    if contact is not None:
        organisation.contact = checks.text(contact, "contact", max_length=CONTACT_MAX)
    session.flush()
    return organisation


def list_organisations(session: Session, *, status: str | None = None, limit: int = paging.DEFAULT_LIMIT,
                       offset: int = 0) -> paging.Page:
    """Oldest first: the review queue is worked from the front."""
    query = select(Organisation).order_by(Organisation.created_at, Organisation.id)
    if status is not None:
        query = query.where(Organisation.status == checks.choice(Status, status, "bad_status"))
    return paging.page(session, query, limit=limit, offset=offset)


# --- members -------------------------------------------------------------------------------------

def _grants(account: Account, organisation_id: int) -> list[RoleGrant]:
    return [g for g in account.grants if g.organisation_id == organisation_id and g.role in MEMBER_ROLES]


def _admin_count(session: Session, organisation_id: int) -> int:
    return len(session.scalars(select(RoleGrant.account_id).where(
        RoleGrant.organisation_id == organisation_id, RoleGrant.role == Role.org_admin)).all())


def _drop(session: Session, account: Account, organisation_id: int, *, keep: Role | None = None) -> None:
    """Remove the account's member grants here (but ``keep``), never the organisation's last admin."""
    doomed = [g for g in _grants(account, organisation_id) if g.role != keep]
    if any(g.role == Role.org_admin for g in doomed) and _admin_count(session, organisation_id) <= 1:
        raise DomainError("last_org_admin")
    for g in doomed:
        account.grants.remove(g)
    session.flush()


def add_member(session: Session, actor: Account, organisation_id: int, *, login: str, role: str) -> Account:
    """Make an approved account a clerk or org_admin here; one role per member, so this also changes it."""
    _managed(session, actor, organisation_id)
    r = checks.choice(Role, role, "bad_member_role", allowed=MEMBER_ROLES)
    member = session.scalar(select(Account).where(Account.login == login)) if isinstance(login, str) else None
    if member is None:
        raise DomainError("account_not_found")
    if not member.active:
        raise DomainError("member_not_active")
    _drop(session, member, organisation_id, keep=r)
    accounts.grant(session, member, r, organisation_id=organisation_id)
    return member


def remove_member(session: Session, actor: Account, organisation_id: int, account_id: int) -> None:
    _managed(session, actor, organisation_id)
    member = session.get(Account, account_id)
    if member is None or not _grants(member, organisation_id):
        raise DomainError("not_a_member")
    _drop(session, member, organisation_id)


def member_role(account: Account, organisation_id: int) -> Role | None:
    """The member's role here; an admin who is also a clerk counts as admin."""
    roles = {g.role for g in _grants(account, organisation_id)}
    return Role.org_admin if Role.org_admin in roles else next(iter(roles), None)


def list_members(session: Session, actor: Account, organisation_id: int, *, limit: int = paging.DEFAULT_LIMIT,
                 offset: int = 0) -> paging.Page:
    """Accounts holding a member role here, by account id; allowed whatever the organisation's state."""
    _managed(session, actor, organisation_id, active=False)
    member_ids = (select(RoleGrant.account_id)
                  .where(RoleGrant.organisation_id == organisation_id, RoleGrant.role.in_(MEMBER_ROLES)))
    query = select(Account).where(Account.id.in_(member_ids)).order_by(Account.id)
    return paging.page(session, query, limit=limit, offset=offset)
