"""Accounts, role grants and bearer sessions."""
from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, lazyload
from werkzeug.security import check_password_hash, generate_password_hash

from . import checks, onboarding, paging, timeutil
from .errors import DomainError
from .models import Account, ApiToken, Role, RoleGrant, Status, Subject, SubjectKind
from .privacy import Keys

SESSION_LIFETIME = timedelta(days=7)
# Compared against when the login is unknown, so a wrong login costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")
_LOGIN = re.compile(r"[A-Za-z0-9_.-]{3,64}")
PASSWORD_MIN, PASSWORD_MAX = 8, 256


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


# Every authenticated request runs this: one statement (account and its grants joined, the bound subject
# left to a lazy load that few endpoints trigger), built once rather than per call.
_BY_TOKEN = (select(Account, ApiToken.expires_at)
             .join(ApiToken, ApiToken.account_id == Account.id)
             .where(ApiToken.token_hash == bindparam("token_hash"))
             .options(lazyload(Account.subject), joinedload(Account.grants)))


def account_for_token(session: Session, token: str) -> Account:
    row = session.execute(_BY_TOKEN, {"token_hash": _hash(token)}).unique().first()
    if row is None:
        raise DomainError("not_authenticated")
    account, expires_at = row
    if expires_at <= timeutil.now():
        raise DomainError("session_expired")
    return account


class GrantRow(NamedTuple):
    role: Role
    organisation_id: int | None
    subject_id: int | None


@dataclass(frozen=True)
class Principal:
    """Who a bearer token speaks for, without the ORM: id, status and grants, read by one Core statement.

    For the scan endpoints, which run for every code a clerk scans and need nothing else of the account;
    the role rules are Account's own.
    """

    id: int
    status: Status
    grants: tuple[GrantRow, ...]

    has_role = Account.has_role
    active = Account.active


_PRINCIPAL = (select(Account.id, Account.status, ApiToken.expires_at, RoleGrant.role, RoleGrant.organisation_id,
                     RoleGrant.subject_id)
              .join(ApiToken, ApiToken.account_id == Account.id)
              .outerjoin(RoleGrant, RoleGrant.account_id == Account.id)
              .where(ApiToken.token_hash == bindparam("token_hash")))


def principal_for_token(session: Session, token: str) -> Principal:
    """As account_for_token (the same errors), but a Principal rather than an Account."""
    rows = session.connection().execute(_PRINCIPAL, {"token_hash": _hash(token)}).all()
    if not rows:
        raise DomainError("not_authenticated")
    account_id, status, expires_at = rows[0][:3]
    if expires_at <= timeutil.now():
        raise DomainError("session_expired")
    return Principal(account_id, status, tuple(GrantRow(*r[3:]) for r in rows if r[3] is not None))


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


# --- registration and review (注册审核) --------------------------------------------------------------

def clean_login(login: object) -> str:
    if not isinstance(login, str) or not _LOGIN.fullmatch(login):
        raise DomainError("bad_login")
    return login


def check_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise DomainError("weak_password")
    if len(password) > PASSWORD_MAX:
        raise DomainError("bad_text", detail={"field": "password", "max_length": PASSWORD_MAX})
    return password


def _same_name(a: str, b: str) -> bool:
    # NFKC folds full-width brackets and spaces, which people type either way in enterprise names.
    def fold(s: str) -> str:
        return "".join(unicodedata.normalize("NFKC", s).split())
    return fold(a) == fold(b)


def register(session: Session, keys: Keys, *, login: str, password: str, identifier: str, name: str) -> Account:
    """A pending account that proves who it is by identifier and name.

    A resident ID binds the account to that person's subject (role citizen); a credit code makes it an
    enterprise_agent of that enterprise. A subject already known (imported) must carry the same name,
    else identity_mismatch, which does not say what the stored name is.
    """
    from . import identifiers, subjects

    login = clean_login(login)
    check_password(password)
    kind = identifiers.guess_kind(identifier)
    canonical = identifiers.normalise(kind, identifier)
    name = subjects.clean_name(name)
    if session.scalar(select(Account.id).where(Account.login == login)) is not None:
        raise DomainError("login_taken")
    subject = subjects.find(session, keys, canonical, kind=kind)
    if subject is None:
        subject = subjects.upsert(session, keys, kind=kind, identifier=canonical, name=name)
        session.flush()
    elif not _same_name(subjects.full_name(keys, subject), name):
        raise DomainError("identity_mismatch")
    elif subject.kind == SubjectKind.person and _holder(session, subject) is not None:
        raise DomainError("identity_taken")

    if subject.kind == SubjectKind.person:
        account = create(session, login, password=password, subject_id=subject.id)
        grant(session, account, Role.citizen)
    else:
        account = create(session, login, password=password)
        grant(session, account, Role.enterprise_agent, subject_id=subject.id)
    return account


def _holder(session: Session, subject: Subject) -> Account | None:
    """The account a person's subject is already bound to; a rejected one does not block a new try."""
    return session.scalar(select(Account).where(Account.subject_id == subject.id,
                                                Account.status != Status.rejected).limit(1))


def get(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise DomainError("account_not_found")
    return account


def review_account(session: Session, actor: Account, account_id: int, *, decision: str,
                   reason: str | None = None) -> Account:
    """A platform admin approves, rejects, suspends or re-approves a registration."""
    account = get(session, account_id)
    # Tokens stay: every request checks the status, and /me still shows the owner why.
    onboarding.review(account, actor, decision=decision, reason=reason)
    session.flush()
    return account


def list_accounts(session: Session, *, status: str | None = None, limit: int = paging.DEFAULT_LIMIT,
                  offset: int = 0) -> paging.Page:
    """Oldest first: the review queue is worked from the front."""
    query = select(Account).order_by(Account.created_at, Account.id)
    if status is not None:
        query = query.where(Account.status == checks.choice(Status, status, "bad_status"))
    return paging.page(session, query, limit=limit, offset=offset)
