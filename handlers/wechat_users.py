"""Who is behind a WeChat openid: openids bound to accounts, mini-program login, binding codes, clerk invites,
a clerk's measure; and pruning what the webhook keeps only for WeChat's retries."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from . import accounts, incentives, organisations, timeutil
from .errors import DomainError
from .models import (
    Account, ClerkInvite, Incentive, IncentiveStatus, Organisation, Role, Status, WeChatBindingCode, WeChatIdentity,
    WeChatInbound,
)
from .privacy import Keys
from .wechat import QRCode, WeChat, WeChatError, WeChatUnavailable

INVITE_TTL = timedelta(minutes=30)
INVITE_PREFIX = "ci_"  # scenes of clerk invites; WeChat allows 64 characters


# The account's grants in the same query (joined, not the relationship's own second SELECT): every message
# of a bound user reads them (bot/commands.py: _holder, _clerk).
_IDENTITY = (select(WeChatIdentity).options(joinedload(WeChatIdentity.account).joinedload(Account.grants))
             .where(WeChatIdentity.appid == bindparam("appid"), WeChatIdentity.openid == bindparam("openid")))


def identity(session: Session, appid: str, openid: str) -> WeChatIdentity | None:
    return session.scalars(_IDENTITY, {"appid": appid, "openid": openid}).unique().one_or_none()


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


# --- binding an official-account follower to an existing account -----------------------------------

BINDING_TTL = timedelta(minutes=10)
# No 0/O, 1/I/L: read off one screen and typed on another. 31**8 codes (~40 bits): with a code living ten
# minutes and guesses limited per sender (webhooks/wechat.py), guessing a live code is hopeless.
BINDING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BINDING_LENGTH = 8
_BINDING_SHAPE = re.compile(f"[{BINDING_ALPHABET}]{{{BINDING_LENGTH}}}")


def _binding_hash(keys: Keys, code: str) -> str:
    return keys.identifier_hash("wechat-binding:" + code)


def normalise_binding_code(text: str) -> str:
    """What a person types back: any case, spaces or dashes in between."""
    return re.sub(r"[\s\-]", "", text or "").upper()


def create_binding_code(session: Session, keys: Keys, account: Account, *, ttl: timedelta = BINDING_TTL,
                        at: datetime | None = None) -> tuple[str, WeChatBindingCode]:
    """A fresh binding code for the account (the code in clear is returned once, only its keyed hash is kept).

    Asking again withdraws the account's earlier unused codes: only the newest one on screen works."""
    at = at or timeutil.now()
    session.execute(delete(WeChatBindingCode).where(WeChatBindingCode.account_id == account.id,
                                                    WeChatBindingCode.used_at.is_(None)))
    for _ in range(5):
        code = "".join(secrets.choice(BINDING_ALPHABET) for _ in range(BINDING_LENGTH))
        row = WeChatBindingCode(code_hash=_binding_hash(keys, code), account_id=account.id, created_at=at,
                                expires_at=at + ttl)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            return code, row
        except IntegrityError:  # the same code as a row not yet pruned: draw again
            continue
    raise RuntimeError("could not draw a unique binding code")


def bind_with_code(session: Session, keys: Keys, appid: str, openid: str, code: str, *,
                   at: datetime | None = None) -> Account:
    """Bind the openid that sent ``code`` to the account that asked for the code; once, before it expires.

    One official-account openid per account: binding a new one unbinds the account's previous one (a phone
    given away stops showing the code). An openid bound to another account stays as it is."""
    at = at or timeutil.now()
    code = normalise_binding_code(code)
    if not _BINDING_SHAPE.fullmatch(code):
        raise DomainError("binding_code_invalid")
    row = session.scalar(select(WeChatBindingCode).where(WeChatBindingCode.code_hash == _binding_hash(keys, code)))
    if row is None:
        raise DomainError("binding_code_invalid")
    current = identity(session, appid, openid)
    if current is not None and current.account_id == row.account_id:
        return current.account  # sent again after it worked: nothing to do
    if row.used_at is not None:
        raise DomainError("binding_code_invalid")  # a used code is worth no more than a wrong one
    if row.expires_at <= at:
        raise DomainError("binding_code_expired")
    if current is not None:
        raise DomainError("wechat_already_bound")
    account = session.get(Account, row.account_id)
    if not account.active:
        raise DomainError("account_not_active")
    # Single use under concurrency, as with invites: whoever flips used_at first wins.
    won = session.execute(update(WeChatBindingCode)
                          .where(WeChatBindingCode.id == row.id, WeChatBindingCode.used_at.is_(None))
                          .values(used_at=at, used_by_openid=openid)).rowcount
    if not won:
        raise DomainError("binding_code_invalid")
    session.execute(delete(WeChatIdentity).where(WeChatIdentity.appid == appid,
                                                 WeChatIdentity.account_id == account.id))
    bind(session, account, appid, openid)
    return account


# --- housekeeping -------------------------------------------------------------------------------------

INBOUND_KEEP = timedelta(hours=24)  # WeChat retries within 15 seconds; a day is generous
PRUNE_BATCH = 500


def prune(session: Session, *, keep: timedelta = INBOUND_KEEP, at: datetime | None = None,
          batch: int | None = None) -> tuple[int, int]:
    """Delete inbound messages older than ``keep`` and binding codes that expired more than ``keep`` ago.

    ``batch``: at most that many of each (the webhook prunes a little now and then, not all at once).
    Returns (inbound messages, binding codes) deleted. Flushes, never commits."""
    cutoff = (at or timeutil.now()) - keep
    old_inbound = select(WeChatInbound.key).where(WeChatInbound.created_at < cutoff)
    old_codes = select(WeChatBindingCode.id).where(WeChatBindingCode.expires_at < cutoff)
    if batch:
        old_inbound, old_codes = old_inbound.limit(batch), old_codes.limit(batch)
    inbound = session.execute(delete(WeChatInbound).where(WeChatInbound.key.in_(old_inbound.scalar_subquery()))
                              .execution_options(synchronize_session=False)).rowcount
    codes = session.execute(delete(WeChatBindingCode).where(WeChatBindingCode.id.in_(old_codes.scalar_subquery()))
                            .execution_options(synchronize_session=False)).rowcount
    return inbound, codes


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
    # The measures' named clerks joined in the same query (a chat scan reads them every time), not selectin's
    # second SELECT.
    rows = session.scalars(select(Incentive).options(joinedload(Incentive.clerks))
                           .where(Incentive.organisation_id.in_(orgs), Incentive.status == IncentiveStatus.open)
                           .order_by(Incentive.id)).unique()
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
