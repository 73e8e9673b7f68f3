"""Who is behind a WeChat openid: openids bound to accounts, mini-program login, clerk invites, a clerk's measure."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import accounts, incentives, organisations, timeutil
from .errors import DomainError
from .models import Account, ClerkInvite, Incentive, IncentiveStatus, Organisation, Role, Status, WeChatIdentity
from .wechat import QRCode, WeChat, WeChatError, WeChatUnavailable

INVITE_TTL = timedelta(minutes=30)
INVITE_PREFIX = "ci_"  # scenes of clerk invites; WeChat allows 64 characters


def identity(session: Session, appid: str, openid: str) -> WeChatIdentity | None:
    return session.scalar(select(WeChatIdentity).where(WeChatIdentity.appid == appid,
                                                       WeChatIdentity.openid == openid))


def _new_account(session: Session, status: Status) -> Account:
    # No password: such an account signs in through WeChat only. The login is a handle, not a name.
    return accounts.create(session, "wx_" + secrets.token_hex(10), status=status)


def bind(session: Session, account: Account, appid: str, openid: str, unionid: str | None = None) -> WeChatIdentity:
    ident = WeChatIdentity(appid=appid, openid=openid, unionid=unionid, account_id=account.id)
    session.add(ident)
    session.flush()
    return ident


def identity_or_new(session: Session, appid: str, openid: str, *, unionid: str | None = None,
                    status: Status = Status.pending) -> WeChatIdentity:
    """The openid's identity, or a new account bound to it (linked through unionid to another app's account).

    A new account is pending: it has no subject until the person binds their identity."""
    ident = identity(session, appid, openid)
    if ident is not None:
        return ident
    try:
        with session.begin_nested():
            account = None
            if unionid:
                other = session.scalar(select(WeChatIdentity).where(WeChatIdentity.unionid == unionid).limit(1))
                account = other.account if other is not None else None
            if account is None:
                account = _new_account(session, status)
            return bind(session, account, appid, openid, unionid)
    except IntegrityError:  # the same openid's first login, twice at once: the other one won
        ident = identity(session, appid, openid)
        if ident is None:
            raise
        return ident


def login(session: Session, mini_program: WeChat, code: str) -> Account:
    """A mini-program login code -> the account of its openid (created on first login).

    WeChat's refusal (bad, expired or reused code) is ``wechat_login_failed`` with WeChat's errcode;
    WeChatUnavailable passes through for the edge to answer 503."""
    try:
        openid, unionid = mini_program.code_to_session(code)
    except WeChatUnavailable:
        raise
    except WeChatError as e:
        raise DomainError("wechat_login_failed", detail={"errcode": e.errcode}) from None
    return identity_or_new(session, mini_program.appid, openid, unionid=unionid).account


# --- clerk invites ----------------------------------------------------------------------------------

def _scene_hash(scene: str) -> str:
    return hashlib.sha256(scene.encode()).hexdigest()


def is_invite_scene(scene: str | None) -> bool:
    return bool(scene) and scene.startswith(INVITE_PREFIX)


def create_clerk_invite(session: Session, official_account: WeChat, actor: Account, organisation_id: int, *,
                        ttl: timedelta = INVITE_TTL, at: datetime | None = None) -> tuple[ClerkInvite, QRCode]:
    """An org admin's invitation: a temporary parametric QR code whose scene binds the scanner as a clerk."""
    org = organisations.get(session, organisation_id)
    if not organisations.can_manage(actor, organisation_id):
        raise DomainError("forbidden")
    if org.status != Status.approved:
        raise DomainError("organisation_not_active", detail={"status": org.status.value})
    at = at or timeutil.now()
    scene = INVITE_PREFIX + secrets.token_urlsafe(24)
    invite = ClerkInvite(scene_hash=_scene_hash(scene), organisation_id=org.id, created_by_id=actor.id,
                         created_at=at, expires_at=at + ttl)
    session.add(invite)
    session.flush()
    qr = official_account.create_qrcode(scene, expire_seconds=int(ttl.total_seconds()))
    return invite, qr


def accept_clerk_invite(session: Session, appid: str, openid: str, scene: str, *,
                        at: datetime | None = None) -> tuple[Account, Organisation]:
    """Bind the openid that scanned an invite's QR code as a clerk of its organisation; once, before it expires."""
    at = at or timeutil.now()
    invite = session.scalar(select(ClerkInvite).where(ClerkInvite.scene_hash == _scene_hash(scene)))
    if invite is None:
        raise DomainError("invite_not_found")
    if invite.used_at is not None:
        raise DomainError("invite_used")
    if invite.expires_at <= at:
        raise DomainError("invite_expired")
    org = organisations.get(session, invite.organisation_id)
    if org.status != Status.approved:
        raise DomainError("organisation_not_active", detail={"status": org.status.value})
    # The organisation's admin vouches for whoever scans: a new account is approved at once.
    account = identity_or_new(session, appid, openid, status=Status.approved).account
    if account.status in (Status.rejected, Status.suspended):
        raise DomainError("account_not_active")
    if account.status == Status.pending and account.subject_id is None and account.password_hash is None:
        account.status = Status.approved  # made by a WeChat login, awaiting nothing but a role
    # Single use under concurrency: whoever flips used_at first wins.
    won = session.execute(update(ClerkInvite).where(ClerkInvite.id == invite.id, ClerkInvite.used_at.is_(None))
                          .values(used_at=at, used_by_id=account.id)).rowcount
    if not won:
        raise DomainError("invite_used")
    accounts.grant(session, account, Role.clerk, organisation_id=org.id)
    session.flush()
    return account, org


# --- the measure a clerk redeems from the chat menu ---------------------------------------------------

def clerk_measures(session: Session, account: Account) -> list[Incentive]:
    """Open measures of the clerk's organisations that this clerk may redeem, by id."""
    orgs = {g.organisation_id for g in account.grants
            if g.role in (Role.clerk, Role.org_admin) and g.organisation_id is not None}
    if not orgs:
        return []
    rows = session.scalars(select(Incentive).where(Incentive.organisation_id.in_(orgs),
                                                   Incentive.status == IncentiveStatus.open).order_by(Incentive.id))
    return [i for i in rows if incentives.can_redeem(account, i)]


def choose_measure(session: Session, ident: WeChatIdentity, incentive_id: int) -> Incentive:
    chosen = next((i for i in clerk_measures(session, ident.account) if i.id == incentive_id), None)
    if chosen is None:
        raise DomainError("incentive_not_found")  # not one of mine: a guessed id says nothing
    ident.incentive_id = chosen.id
    session.flush()
    return chosen


def current_measure(session: Session, ident: WeChatIdentity) -> Incentive | None:
    """The chosen measure while the clerk may still redeem it; with exactly one measure, that one (stored)."""
    measures = clerk_measures(session, ident.account)
    chosen = next((i for i in measures if i.id == ident.incentive_id), None)
    if chosen is None and len(measures) == 1:
        chosen = measures[0]
        ident.incentive_id = chosen.id
        session.flush()
    return chosen
