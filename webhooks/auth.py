"""Who is asking: the bearer token's account, and the role checks every endpoint makes."""
from __future__ import annotations

from flask import g, request

from handlers import accounts, declarations, organisations
from handlers.errors import DomainError
from handlers.models import Account, Role

from . import db


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def account(*, active: bool = True) -> Account:
    """The signed-in account, or DomainError not_authenticated (401) / account_not_active (403)."""
    if "account" not in g:
        token = bearer_token()
        if token is None:
            raise DomainError("not_authenticated")
        g.account = accounts.account_for_token(db.session(), token)
    if active and not g.account.active:
        raise DomainError("account_not_active")
    return g.account


def optional_account() -> Account | None:
    return account(active=False) if bearer_token() else None


def require_platform_admin() -> Account:
    a = account()
    if not a.has_role(Role.platform_admin):
        raise DomainError("forbidden")
    return a


def require_org_admin(organisation_id: int) -> Account:
    """An admin of this organisation (not of another), or a platform admin."""
    a = account()
    if not organisations.can_manage(a, organisation_id):
        raise DomainError("forbidden")
    return a


def can_see_subject(a: Account, subject_id: int) -> bool:
    """A citizen sees their own subject; an enterprise agent the enterprise; a platform admin any."""
    return (a.subject_id == subject_id
            or a.has_role(Role.enterprise_agent, subject_id=subject_id)
            or a.has_role(Role.platform_admin))


def require_subject(subject_id: int) -> Account:
    a = account()
    if not can_see_subject(a, subject_id):
        # 404, not 403: a guessed id must not tell whether the subject exists.
        raise DomainError("subject_not_found")
    return a


def require_clerk() -> accounts.Principal:
    """An approved account that scans for some organisation (clerk or org admin), or 403 not_a_clerk.

    Which measures it may redeem is the domain's question (not_your_incentive is a verdict, not an error).
    Scans are the hot path: the account comes as a Principal (id, status, grants; one Core statement),
    not an ORM Account; the same errors as account().
    """
    if "principal" not in g:
        token = bearer_token()
        if token is None:
            raise DomainError("not_authenticated")
        g.principal = accounts.principal_for_token(db.session(), token)
    a = g.principal
    if not a.active:
        raise DomainError("account_not_active")
    if not any(g.role in (Role.clerk, Role.org_admin) and g.organisation_id is not None for g in a.grants):
        raise DomainError("not_a_clerk")
    return a


def holder_subject(subject_id: int | None) -> int:
    """The subject whose code (or receipts) the caller asks for: their own, or with ``subject_id`` an
    enterprise they are agent of. The same rule as declaring an honour; a guessed id gets 404."""
    mine = declarations.subject_ids_of(account())
    if subject_id is None:
        if not mine:
            raise DomainError("no_subject")
        return mine[0]
    if subject_id not in mine:
        raise DomainError("subject_not_found")
    return subject_id
