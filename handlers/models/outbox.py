"""The outbox: messages to deliver (one per event, recipient and channel chain), every delivery attempt, and
the contact points (e-mail, mobile) people consented to be reached at. See handlers/outbox.py and docs/outbox.md."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .. import timeutil
from . import Base, StrEnum, _enum


class Channel(StrEnum):
    subscribe = "subscribe"  # mini-program subscription message (the mini-program openid)
    template = "template"    # official-account template message (the official-account openid)
    email = "email"          # SMTP
    sms = "sms"              # the SMS gateway


class OutboxState(StrEnum):
    pending = "pending"  # due at next_attempt_at; in flight while lease_until is in the future
    sent = "sent"        # a channel accepted it (WeChat errcode 0, SMTP 250, the gateway's 2xx)
    dead = "dead"        # gave up: attempts exhausted or no channel left; an admin may retry it


class ContactKind(StrEnum):
    email = "email"
    mobile = "mobile"


class OutboxMessage(Base):
    """One thing to deliver to one recipient, trying ``channels`` in order (fan-out of a notice), or on one
    channel only (a direct message). Addresses are never stored in clear: an account's openid or contact point
    is looked up when sending; a direct e-mail/SMS address is sealed to this row's dedupe key."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        # What workers claim: pending rows by due time (a partial index stays as small as the backlog).
        Index("ix_outbox_message_due", "next_attempt_at",
              sqlite_where=text("state = 'pending'"), postgresql_where=text("state = 'pending'")),
        Index("ix_outbox_message_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # notice:<notice id>:<account id> (fan-out) | direct:<event key>:<channel>:<account id | address hash>
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), index=True)
    payload: Mapped[dict] = mapped_column(JSON)  # {title, lines, url, page, ...}
    channels: Mapped[list[str]] = mapped_column(JSON)  # the order to try
    channel_index: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))  # channels[channel_index]
    address_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # direct e-mail/SMS only
    address_masked: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState, "outbox_state"), default=OutboxState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    lease_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(200))  # WeChat msgid, SMTP Message-ID, gateway id
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    sent_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]


class OutboxAttempt(Base):
    """One try of one message on one channel: when, by which worker, and what the channel answered."""

    __tablename__ = "outbox_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, … per message
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    # sent | retry (transient, tried again later) | next_channel (refused, unbound, bad address) | dead
    outcome: Mapped[str] = mapped_column(String(16))
    errcode: Mapped[int | None]  # WeChat's errcode, SMTP's reply code, the gateway's HTTP status
    reply: Mapped[str | None] = mapped_column(String(500))  # WeChat's errmsg, SMTP's reply text … (no address)
    worker: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    finished_at: Mapped[datetime] = mapped_column(default=timeutil.now)


class ContactPoint(Base):
    """An e-mail address or mobile number a person gave, with their consent (the text they agreed to, when).

    Sealed (AES-GCM, bound to account, kind and hash), masked for display, keyed hash for look-ups."""

    __tablename__ = "contact_point"
    __table_args__ = (UniqueConstraint("account_id", "kind", name="uq_contact_point_account_id_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    kind: Mapped[ContactKind] = mapped_column(_enum(ContactKind, "contact_kind"))
    address_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    address_masked: Mapped[str] = mapped_column(String(64))
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    consent_text: Mapped[str] = mapped_column(Text)
    consent_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)


__all__ = ["Channel", "ContactKind", "ContactPoint", "OutboxAttempt", "OutboxMessage", "OutboxState"]
