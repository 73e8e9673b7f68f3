"""Contact points: the e-mail address and mobile number a person consented to be reached at, never in clear.

An address is normalised, then kept three ways: sealed (AES-GCM under the sealing key, bound to the account,
the kind and the hash, so a blob cannot be moved to another row), masked for display, and as a keyed hash for
look-ups and de-duplication. With it the consent: the exact text the person agreed to and when.
"""
from __future__ import annotations

import re

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import timeutil
from .errors import DomainError
from .models import MAX_ID, Account, ContactKind, ContactPoint
from .privacy import Keys

# What the person agrees to when giving an address; stored with the address, word for word.
CONSENT_TEXT = {
    ContactKind.email: "本人同意信码平台向该电子邮箱发送信用码相关通知（核销回执、政策兑现、法律文书送达提醒等），"
                       "可随时在“我的-联系方式”中删除以撤回同意。",
    ContactKind.mobile: "本人同意信码平台向该手机号码发送信用码相关短信通知（核销回执、政策兑现、法律文书送达提醒等），"
                        "可随时在“我的-联系方式”中删除以撤回同意。",
}

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def normalise_email(address: str) -> str:
    value = address.strip().lower() if isinstance(address, str) else ""
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise DomainError("bad_email")
    return value


def normalise_mobile(number: str) -> str:
    """A mainland mobile number as 11 digits (a +86 / 0086 prefix, spaces and dashes are dropped)."""
    value = re.sub(r"[\s-]", "", number) if isinstance(number, str) else ""
    for prefix in ("+86", "0086", "86"):
        if value.startswith(prefix) and len(value) == len(prefix) + 11:
            value = value[len(prefix):]
            break
    if not _MOBILE.fullmatch(value):
        raise DomainError("bad_mobile")
    return value


def normalise(kind: ContactKind | str, address: str) -> str:
    return normalise_email(address) if ContactKind(kind) == ContactKind.email else normalise_mobile(address)


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[0]}***@{domain}"


def mask_mobile(number: str) -> str:
    return f"{number[:3]}****{number[-4:]}"


def mask(kind: ContactKind | str, address: str) -> str:
    return mask_email(address) if ContactKind(kind) == ContactKind.email else mask_mobile(address)


def address_hash(keys: Keys, kind: ContactKind | str, address: str) -> str:
    return keys.identifier_hash(f"{ContactKind(kind).value}:{address}")


def _bound(account_id: int, kind: ContactKind, hashed: str) -> bytes:
    return f"contact:{account_id}:{kind.value}:{hashed}".encode()


def contacts_of(session: Session, account_id: int) -> list[ContactPoint]:
    return list(session.scalars(select(ContactPoint).where(ContactPoint.account_id == account_id)
                                .order_by(ContactPoint.kind)))


def set_contact(session: Session, keys: Keys, account: Account, kind: str, address: str, *,
                consent: bool) -> ContactPoint:
    """Give (or replace) the account's e-mail or mobile; without consent nothing is stored."""
    try:
        kind_ = ContactKind(kind)
    except ValueError:
        raise DomainError("bad_contact_kind") from None
    value = normalise(kind_, address)
    if consent is not True:
        raise DomainError("consent_required")
    hashed = address_hash(keys, kind_, value)
    point = session.scalar(select(ContactPoint).where(ContactPoint.account_id == account.id,
                                                      ContactPoint.kind == kind_).with_for_update())
    if point is None:
        point = ContactPoint(account_id=account.id, kind=kind_)
        session.add(point)
    point.address_sealed = keys.seal(value.encode(), bound_to=_bound(account.id, kind_, hashed))
    point.address_masked = mask(kind_, value)
    point.address_hash = hashed
    point.consent_text = CONSENT_TEXT[kind_]
    point.consent_at = timeutil.now()
    session.flush()
    return point


def remove_contact(session: Session, account: Account, contact_id: int) -> None:
    """Forget the address (withdraws the consent); another account's id is not found."""
    if not 0 < contact_id <= MAX_ID:
        raise DomainError("contact_not_found")
    done = session.execute(delete(ContactPoint).where(ContactPoint.id == contact_id,
                                                      ContactPoint.account_id == account.id))
    if done.rowcount != 1:
        raise DomainError("contact_not_found")


def unseal(keys: Keys, point: ContactPoint) -> str:
    """The clear address, for the moment of sending only."""
    return keys.unseal(point.address_sealed,
                       bound_to=_bound(point.account_id, ContactKind(point.kind), point.address_hash)).decode()
