"""Accounts, role grants and bearer sessions."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import timeutil
from .errors import DomainError
from .models import Account, ApiToken, Role, RoleGrant, Status

SESSION_LIFETIME = timedelta(days=7)
# Compared against when the login is unknown, so a wrong login costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")


def create(session: Session, login: str, *, password: str | None = None, subject_id: int | None = None,
           status: Status = Status.pending, is_demo: bool = False) -> Account:
    if session.scalar(select(Account.id).where(Account.login == login)) is not None:
        raise DomainError("login_taken")
    account = Account(login=login, subject_id=subject_id, status=status, is_demo=is_demo,
                      password_hash=generate_password_hash(password) if password else None)
    session.add(account)
    session.flush()
    return account


def grant(session: Session, account: Account, role: Role, *, organisation_id: int | None = None,
          subject_id: int | None = None) -> RoleGrant:
    for g in account.grants:
        if (g.role, g.organisation_id, g.subject_id) == (role, organisation_id, subject_id):
            return g
    g = RoleGrant(role=role, organisation_id=organisation_id, subject_id=subject_id)
    account.grants.append(g)
    session.flush()
    return g


def authenticate(session: Session, login: str, password: str) -> Account:
    account = session.scalar(select(Account).where(Account.login == login))
    if account is None or not account.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        raise DomainError("bad_credentials")
    if not check_password_hash(account.password_hash, password):
        raise DomainError("bad_credentials")
    return account


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, account: Account, *, lifetime: timedelta = SESSION_LIFETIME) -> tuple[str, datetime]:
    """Issue a bearer token; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    expires = timeutil.now() + lifetime
    session.add(ApiToken(account_id=account.id, token_hash=_hash(token), expires_at=expires))
    session.flush()
    return token, expires


def account_for_token(session: Session, token: str) -> Account:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None:
        raise DomainError("not_authenticated")
    if row.expires_at <= timeutil.now():
        raise DomainError("session_expired")
    return row.account


def close_session(session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is not None:
        session.delete(row)


def describe(session: Session, account: Account) -> dict:
    """The account as its owner sees it: roles with their scope, and the bound subject's summary."""
    from . import subjects  # subjects imports colours; keep this module light for the auth path

    return {
        "id": account.id,
        "login": account.login,
        "status": account.status.value,
        "status_reason": account.status_reason,
        "roles": [{"role": g.role.value, "organisation_id": g.organisation_id, "subject_id": g.subject_id}
                  for g in account.grants],
        "subject": subjects.summary(session, account.subject) if account.subject else None,
    }
