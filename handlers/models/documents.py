"""Electronic service of legal documents: address commitments, documents, their links and the evidence log."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column

from .. import timeutil
from . import Base, StrEnum, _enum


class CommitmentStatus(StrEnum):
    active = "active"            # the address in force
    superseded = "superseded"    # replaced by a later version
    revoked = "revoked"          # withdrawn; no address in force until a new commitment


class ServiceChannel(StrEnum):
    wechat = "wechat"   # a named agent's WeChat (the mini-program subscription message)
    email = "email"
    sms = "sms"


class DocumentStatus(StrEnum):
    served = "served"        # sent out; the recipient has not yet opened or acknowledged it
    honoured = "honoured"    # opened or acknowledged before the deadline (a recordable honour)
    evaded = "evaded"        # the deadline passed without either (a recordable bad record)


class ServiceCommitment(Base):
    """One version of an enterprise's commitment to an electronic service address (送达地址承诺).

    A change is a new version; the old one is superseded, never edited, so the history stays.
    Consent is the exact text of CONSENT_TEXTS[consent_version], pinned by its SHA-256.
    """

    __tablename__ = "service_commitment"
    __table_args__ = (
        UniqueConstraint("subject_id", "version", name="uq_service_commitment_subject_id_version"),
        # At most one commitment in force per subject.
        Index("uq_service_commitment_active_subject", "subject_id", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[CommitmentStatus] = mapped_column(_enum(CommitmentStatus, "commitment_status"))
    committed_by_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    consent_version: Mapped[str] = mapped_column(String(16))
    consent_sha256: Mapped[str] = mapped_column(String(64))
    consented_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    ended_at: Mapped[datetime | None]                      # superseded or revoked at
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    evidence_seq: Mapped[int | None]                       # the evidence entry that records the consent


class ServiceAddress(Base):
    """One address of a commitment: a named agent's account (WeChat), or an e-mail or mobile number kept sealed."""

    __tablename__ = "service_address"
    __table_args__ = (
        UniqueConstraint("commitment_id", "position", name="uq_service_address_commitment_id_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    commitment_id: Mapped[int] = mapped_column(ForeignKey("service_commitment.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)        # 1, 2, … within the commitment; part of the seal's binding
    channel: Mapped[ServiceChannel] = mapped_column(_enum(ServiceChannel, "service_channel"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))  # wechat
    address_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)        # email, sms (Keys.seal)
    address_hash: Mapped[str] = mapped_column(String(64))  # keyed hash of the normalised address (or account id)
    address_masked: Mapped[str] = mapped_column(String(100))


class LegalDocument(Base):
    """A document an issuer served on a subject; its content lives in the store under its SHA-256."""

    __tablename__ = "legal_document"
    __table_args__ = (
        Index("ix_legal_document_subject_served", "subject_id", "served_at"),
        Index("ix_legal_document_organisation_served", "organisation_id", "served_at"),
        Index("ix_legal_document_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    commitment_id: Mapped[int] = mapped_column(ForeignKey("service_commitment.id"))
    case_number: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    content_sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    served_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    deadline_at: Mapped[datetime]
    # First times, denormalised from the evidence log for lists and close-overdue; the log is the record.
    opened_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    status: Mapped[DocumentStatus] = mapped_column(_enum(DocumentStatus, "document_status"),
                                                   default=DocumentStatus.served)
    credit_record_id: Mapped[int | None] = mapped_column(ForeignKey("credit_record.id"))


class DocumentDelivery(Base):
    """One outbox message of a served document: to a committed address, or a push of its in-app notice."""

    __tablename__ = "document_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("legal_document.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))       # wechat | email | sms
    address_id: Mapped[int | None] = mapped_column(ForeignKey("service_address.id"))
    address_masked: Mapped[str] = mapped_column(String(100))
    outbox_message_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    sent_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]


class DocumentLink(Base):
    """A one-time, expiring link to a document, sent to one committed e-mail or mobile; only hashes are kept.

    Opening consumes the link and starts a short view session (its own random token, hashed too).
    """

    __tablename__ = "document_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("legal_document.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("service_address.id"))
    channel: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    session_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_expires_at: Mapped[datetime | None]


class EvidenceEntry(Base):
    """One entry of the append-only, hash-chained evidence log (handlers/evidence.py).

    One global chain: ``prev_hash`` is the previous entry's hash; ``document_prev_hash`` links a
    document's own entries, so one document's entries verify on their own. ``hash`` is the SHA-256 of
    the canonical serialisation of every other column. Nothing ever updates or deletes a row: the ORM
    refuses (below), and database triggers refuse (migration 0007).
    """

    __tablename__ = "evidence_entry"
    __table_args__ = (
        Index("ix_evidence_entry_document_seq", "document_id", "seq"),
        Index("ix_evidence_entry_subject_seq", "subject_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document_id: Mapped[int | None]   # no foreign key: the log outlives and never depends on other rows
    subject_id: Mapped[int | None]
    event: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    payload: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    document_prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


def _append_only(_mapper, _connection, target: EvidenceEntry) -> None:
    raise RuntimeError(f"evidence_entry is append-only (seq {target.seq})")


event.listen(EvidenceEntry, "before_update", _append_only)
event.listen(EvidenceEntry, "before_delete", _append_only)
