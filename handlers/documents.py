"""Electronic service of legal documents (法律文书电子送达): issuing, serving, reading, acknowledging, the receipt,
and what keeping (or not) the service-address commitment does to the recipient's credit record.

An issuer is a member (org_admin or clerk) of an approved organisation of an ISSUER_KINDS kind (courts
and administrative departments are both ``department`` here). A document is served on a subject with
a commitment in force: one outbox message per committed address, all at once, and the in-app notice.
Who may read it: the subject's agents (the recipient) and the issuing organisation's members; anyone
else is told it does not exist. Every read, and every step of delivery, is an evidence entry
(handlers/evidence.py).
"""
from __future__ import annotations

import hashlib
import hmac
import io
import logging
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import checks, evidence, outbox, paging, records, service_address, subjects, timeutil
from .errors import DomainError
from .models import (
    Account, DocumentDelivery, DocumentLink, DocumentStatus, EvidenceEntry, LegalDocument, Notice, Organisation,
    OrganisationKind, OutboxAttempt, OutboxMessage, Role, ServiceChannel, Status, Subject,
)
from .privacy import Keys
from .storage import DocumentStore, StoreError

log = logging.getLogger("xinma.audit")

KIND = "legal_document"           # of the notice and of the outbox messages
PAGE = "/app/#/documents/{id}"    # the mini-program page a push opens
ISSUER_KINDS = frozenset({OrganisationKind.department})
ISSUER_ROLES = (Role.org_admin, Role.clerk)
RECORD_SOURCE = "legal_service"   # of the credit records made from documents
HONOUR_CATEGORY, EVADED_CATEGORY = "legal_service_honoured", "legal_service_evaded"
HONOUR_PUBLISHED = timedelta(days=365)      # an honoured service counts for a year …
EVADED_PUBLISHED = timedelta(days=3 * 365)  # … an evaded one for three
# What a committed channel becomes in the outbox. WeChat: the mini-program subscription message, because
# the document opens in the mini-program.
OUTBOX_CHANNEL = {ServiceChannel.wechat: "subscribe", ServiceChannel.email: "email", ServiceChannel.sms: "sms"}
CASE_NUMBER_MAX, TITLE_MAX = 64, 200

# Content types recognised by their first bytes; the name and the declared type of an upload are ignored.
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
_PILLOW_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG"}
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}


@dataclass(frozen=True)
class Settings:
    max_bytes: int = 10 * 1024 * 1024
    answer_days: int = 7                          # opened or acknowledged within: honoured; else evaded
    link_ttl: timedelta = timedelta(days=7)       # an e-mail/SMS link, until opened
    link_session: timedelta = timedelta(minutes=30)  # viewing after opening a link
    link_base: str = ""                           # absolute base of /d/<token> links

    @classmethod
    def from_config(cls, cfg: Mapping, *, link_base: str = "") -> Settings:
        return cls(max_bytes=int(cfg.get("DOCUMENT_MAX_BYTES") or cls.max_bytes),
                   answer_days=int(cfg.get("DOCUMENT_ANSWER_DAYS") or cls.answer_days),
                   link_ttl=timedelta(hours=float(cfg.get("DOCUMENT_LINK_HOURS") or 168)),
                   link_base=cfg.get("OUTBOX_LINK_BASE") or link_base)


# --- who may do what -------------------------------------------------------------------------------

def issuer_organisations(session: Session, actor: Account) -> list[Organisation]:
    """Organisations the actor may serve documents for (approved or not; serve() checks)."""
    ids = {g.organisation_id for g in actor.grants if g.role in ISSUER_ROLES and g.organisation_id is not None}
    if not ids:
        return []
    return list(session.scalars(select(Organisation).where(Organisation.id.in_(ids),
                                                           Organisation.kind.in_(ISSUER_KINDS))
                                .order_by(Organisation.id)))


def _issuer(session: Session, actor: Account, organisation_id: int | None) -> Organisation:
    orgs = issuer_organisations(session, actor)
    if organisation_id is not None:
        orgs = [o for o in orgs if o.id == organisation_id]
    if not orgs:
        raise DomainError("not_an_issuer")
    if len(orgs) > 1:
        raise DomainError("issuer_ambiguous", detail={"organisation_ids": [o.id for o in orgs]})
    if orgs[0].status != Status.approved:
        raise DomainError("organisation_not_active", detail={"status": orgs[0].status.value})
    return orgs[0]


def role_of(actor: Account, document: LegalDocument) -> str | None:
    """'recipient' (an agent of the subject, or the person), 'issuer' (a member of the issuing organisation)."""
    if actor.has_role(Role.enterprise_agent, subject_id=document.subject_id) or actor.subject_id == document.subject_id:
        return "recipient"
    if any(actor.has_role(r, organisation_id=document.organisation_id) for r in ISSUER_ROLES):
        return "issuer"
    return None


def get(session: Session, actor: Account, document_id: int) -> tuple[LegalDocument, str]:
    """The document and the actor's role; 404 for a document the actor may not see, as for one that is not there."""
    document = session.get(LegalDocument, document_id)
    role = role_of(actor, document) if document is not None else None
    if role is None:
        raise DomainError("document_not_found")
    return document, role


def list_for(session: Session, actor: Account, *, limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    """Documents served on the actor's subjects and by its organisations, newest first (a list is not a read)."""
    subject_ids = [g.subject_id for g in actor.grants if g.role == Role.enterprise_agent and g.subject_id]
    if actor.subject_id is not None:
        subject_ids.append(actor.subject_id)
    org_ids = [g.organisation_id for g in actor.grants if g.role in ISSUER_ROLES and g.organisation_id]
    query = (select(LegalDocument)
             .where(LegalDocument.subject_id.in_(subject_ids) | LegalDocument.organisation_id.in_(org_ids))
             .order_by(LegalDocument.served_at.desc(), LegalDocument.id.desc()))
    return paging.page(session, query, limit=limit, offset=offset)


def deliveries(session: Session, document_id: int) -> list[DocumentDelivery]:
    return list(session.scalars(select(DocumentDelivery).where(DocumentDelivery.document_id == document_id)
                                .order_by(DocumentDelivery.id)))


# --- the file ------------------------------------------------------------------------------------

def sniff(data: bytes) -> str:
    """The content type, from the content: a PDF, a PNG or a JPEG that Pillow can read; else an error."""
    ctype = next((t for magic, t in _MAGIC if data.startswith(magic)), None)
    if ctype is None:
        raise DomainError("document_type_not_allowed")
    if ctype == "application/pdf":
        if b"%%EOF" not in data[-2048:]:
            raise DomainError("document_type_not_allowed", detail={"reason": "truncated PDF"})
        return ctype
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format
                image.verify()
    except Exception:  # noqa: BLE001 - anything Pillow cannot read is not an image we accept
        raise DomainError("document_type_not_allowed", detail={"reason": "unreadable image"}) from None
    if fmt != _PILLOW_FORMAT[ctype]:
        raise DomainError("document_type_not_allowed")
    return ctype


# --- serving -------------------------------------------------------------------------------------

def _subject(session: Session, keys: Keys, subject_id: int | None, identifier: str | None) -> Subject:
    if (subject_id is None) == (identifier in (None, "")):
        raise DomainError("subject_required")
    if subject_id is not None:
        return subjects.get(session, subject_id)
    subject = subjects.find(session, keys, identifier)
    if subject is None:
        raise DomainError("subject_not_found")
    return subject


def serve(session: Session, keys: Keys, store: DocumentStore, actor: Account, settings: Settings, *, data: bytes,
          case_number: str, title: str, subject_id: int | None = None, identifier: str | None = None,
          organisation_id: int | None = None) -> LegalDocument:
    """Store the file, record the service and send it through every committed channel at once.

    Refused before anything is written: not an issuer, a file too large or of the wrong type, no such
    subject, or no commitment in force (``no_service_address`` / ``service_address_revoked``: the
    issuer is told, nothing is dropped silently). The file is written to the store first; a
    transaction that then rolls back leaves only an unreferenced file, never a row without its file.
    """
    issuer = _issuer(session, actor, organisation_id)
    case_number = checks.text(case_number, "case_number", max_length=CASE_NUMBER_MAX)
    title = checks.text(title, "title", max_length=TITLE_MAX)
    if not isinstance(data, bytes | bytearray) or not data:
        raise DomainError("document_type_not_allowed", detail={"reason": "empty"})
    if len(data) > settings.max_bytes:
        raise DomainError("document_too_large", detail={"max_bytes": settings.max_bytes})
    content_type = sniff(bytes(data))
    subject = _subject(session, keys, subject_id, identifier)
    commitment = service_address.in_force(session, subject.id)
    committed = service_address.addresses(session, commitment.id)

    sha = store.put(bytes(data))
    now = timeutil.now()
    document = LegalDocument(
        subject_id=subject.id, organisation_id=issuer.id, issued_by_id=actor.id, commitment_id=commitment.id,
        case_number=case_number, title=title, content_sha256=sha, content_type=content_type, size_bytes=len(data),
        served_at=now, deadline_at=now + timedelta(days=settings.answer_days), status=DocumentStatus.served)
    session.add(document)
    session.flush()
    commitment_entry = session.get(EvidenceEntry, commitment.evidence_seq)
    evidence.append(session, "served", actor=evidence.actor_of(actor), document_id=document.id,
                    subject_id=subject.id, at=now, payload={
                        "content_sha256": sha, "content_type": content_type, "size_bytes": len(data),
                        "case_number": case_number, "title": title,
                        "issuer": {"organisation_id": issuer.id, "name": issuer.name, "account_id": actor.id},
                        "recipient": {"subject_id": subject.id, "name": subject.name_masked,
                                      "identifier": subject.id_masked},
                        "commitment": {"id": commitment.id, "version": commitment.version,
                                       "consent_sha256": commitment.consent_sha256,
                                       "evidence_seq": commitment.evidence_seq,
                                       "evidence_hash": commitment_entry.hash if commitment_entry else None},
                        "addresses": [{"position": a.position, "channel": a.channel.value,
                                       "address": a.address_masked} for a in committed],
                        "deadline_at": evidence.timestamp(document.deadline_at),
                    })
    lines = [f"案号：{case_number}", f"文书：{title}", f"送达机关：{issuer.name}",
             f"请于{timeutil.local_date(document.deadline_at).isoformat()}前查阅并签收。"]
    for address in committed:
        _send(session, keys, settings, document, address, lines)
    notice = outbox.notify(session, subject.id, KIND, f"法律文书送达：{title}",
                           {"document_id": document.id, "case_number": case_number, "issuer": issuer.name,
                            "lines": lines}, page=PAGE.format(id=document.id))
    evidence.append(session, "notified", actor="system", document_id=document.id, subject_id=subject.id,
                    channel="notice", payload={"notice_id": notice.id})
    log.info("document served", extra={"document_id": document.id, "subject_id": subject.id,
                                       "organisation_id": issuer.id, "by": actor.id, "channels": len(committed)})
    return document


def _send(session: Session, keys: Keys, settings: Settings, document: LegalDocument, address, lines: list[str]) -> None:
    """One direct message to one committed address; e-mails and SMS carry a one-time link of their own."""
    channel = ServiceChannel(address.channel)
    payload = {"title": "法律文书送达通知", "lines": lines, "url": None, "page": PAGE.format(id=document.id),
               "document_id": document.id}
    link = None
    if channel == ServiceChannel.wechat:
        message = outbox.send_direct(session, event_key=f"{KIND}:{document.id}", channel=OUTBOX_CHANNEL[channel],
                                     kind=KIND, payload=payload, account_id=address.account_id, keys=keys)
    else:
        token, link = _new_link(session, settings, document, address)
        payload["url"] = f"{settings.link_base.rstrip('/')}/d/{token}"
        message = outbox.send_direct(session, event_key=f"{KIND}:{document.id}", channel=OUTBOX_CHANNEL[channel],
                                     kind=KIND, payload=payload, address=service_address.unseal(keys, address),
                                     keys=keys)
    session.add(DocumentDelivery(document_id=document.id, channel=channel.value, address_id=address.id,
                                 address_masked=address.address_masked, outbox_message_id=message.id))
    evidence.append(session, "sent", actor="system", document_id=document.id, subject_id=document.subject_id,
                    channel=channel.value, payload={
                        "address": address.address_masked, "position": address.position,
                        "outbox_message_id": message.id,
                        "link_expires_at": evidence.timestamp(link.expires_at) if link else None})


# --- one-time links ------------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_link(session: Session, settings: Settings, document: LegalDocument, address) -> tuple[str, DocumentLink]:
    token = secrets.token_urlsafe(32)
    link = DocumentLink(document_id=document.id, address_id=address.id, channel=address.channel.value,
                        token_hash=_hash(token), expires_at=timeutil.now() + settings.link_ttl)
    session.add(link)
    session.flush()
    return token, link


def _link(session: Session, token: str) -> DocumentLink:
    link = (session.scalar(select(DocumentLink).where(DocumentLink.token_hash == _hash(token)).with_for_update())
            if isinstance(token, str) and 20 <= len(token) <= 100 else None)
    if link is None:
        raise DomainError("link_not_found")
    return link


def peek_link(session: Session, token: str) -> DocumentLink:
    """The link, if it can still be opened (the landing page: nothing is consumed or recorded)."""
    link = _link(session, token)
    if link.used_at is not None:
        raise DomainError("link_used")
    if link.expires_at <= timeutil.now():
        raise DomainError("link_expired")
    return link


def open_link(session: Session, settings: Settings, token: str) -> str:
    """Consume a one-time link and begin a short view session; returns the session token (a cookie's value;
    only its hash is kept). The page it leads to records the opening (view_via_link)."""
    link = peek_link(session, token)
    now = timeutil.now()
    view = secrets.token_urlsafe(32)
    link.used_at, link.session_hash, link.session_expires_at = now, _hash(view), now + settings.link_session
    session.flush()
    return view


def link_session(session: Session, view: str | None) -> tuple[LegalDocument, DocumentLink]:
    link = (session.scalar(select(DocumentLink).where(DocumentLink.session_hash == _hash(view)))
            if isinstance(view, str) and 20 <= len(view) <= 100 else None)
    if link is None or link.session_expires_at is None or link.session_expires_at <= timeutil.now():
        raise DomainError("link_session_expired")
    return session.get(LegalDocument, link.document_id), link


def link_csrf(view: str) -> str:
    """The form token that proves a POST comes from the page this view session rendered."""
    return hmac.new(view.encode(), b"acknowledge", hashlib.sha256).hexdigest()


# --- reading and acknowledging -------------------------------------------------------------------

def _maybe_honour(session: Session, document: LegalDocument, at: datetime) -> None:
    if document.status != DocumentStatus.served or at > document.deadline_at:
        return
    _record(session, document, DocumentStatus.honoured, HONOUR_CATEGORY, at, HONOUR_PUBLISHED)


def _record(session: Session, document: LegalDocument, status: DocumentStatus, category: str, at: datetime,
            published: timedelta) -> None:
    """The credit record of a kept or broken commitment, once per document (source + external id are unique)."""
    subject = subjects.get(session, document.subject_id)
    day = timeutil.local_date(at)
    record = records.create_record(
        session, subject, records.category_for(session, category, subject), source=RECORD_SOURCE,
        external_id=f"document-{document.id}", effective_on=day, published_until=day + published)
    session.flush()
    document.status, document.credit_record_id = status, record.id
    evidence.append(session, status.value, actor="system", document_id=document.id, subject_id=document.subject_id,
                    at=at, payload={"credit_record_id": record.id, "category": category,
                                    "deadline_at": evidence.timestamp(document.deadline_at)})


def _recipient_event(session: Session, document: LegalDocument, event: str, *, actor: str, channel: str,
                     at: datetime, payload: dict) -> None:
    evidence.append(session, event, actor=actor, document_id=document.id, subject_id=document.subject_id,
                    channel=channel, at=at, payload=payload)
    if document.opened_at is None:
        document.opened_at = at
    _maybe_honour(session, document, at)
    session.flush()


def read(session: Session, actor: Account, document_id: int, *, what: str = "metadata") -> tuple[LegalDocument, str]:
    """Whoever may see the document reads it (metadata or content); the read itself is evidence.

    A recipient's read is 'opened' (metadata) or 'downloaded' (content), through the mini-program; an
    issuer's is 'issuer_read'. Returns the document and the reader's role."""
    document, role = get(session, actor, document_id)
    now = timeutil.now()
    if role == "recipient":
        _recipient_event(session, document, "opened" if what == "metadata" else "downloaded",
                         actor=evidence.actor_of(actor), channel="miniprogram", at=now, payload={"what": what})
    else:
        evidence.append(session, "issuer_read", actor=evidence.actor_of(actor), document_id=document.id,
                        subject_id=document.subject_id, at=now, payload={"what": what})
    return document, role


def read_via_link(session: Session, document: LegalDocument, link: DocumentLink, *, what: str = "metadata") -> None:
    """The holder of an opened link reads the document: 'opened' (the page) or 'downloaded' (the file)."""
    _recipient_event(session, document, "opened" if what == "metadata" else "downloaded", actor=f"link:{link.id}",
                     channel=link.channel, at=timeutil.now(), payload={"what": what, "via": "link"})


def content(store: DocumentStore, document: LegalDocument) -> bytes:
    try:
        return store.get(document.content_sha256)
    except StoreError:
        log.error("document content missing or altered", extra={"document_id": document.id})
        raise DomainError("document_content_unavailable") from None


def _acknowledge(session: Session, document: LegalDocument, *, actor: str, account_id: int | None,
                 channel: str) -> LegalDocument:
    if document.acknowledged_at is not None:
        return document  # one click is enough; a second changes nothing
    now = timeutil.now()
    document.acknowledged_at, document.acknowledged_by_id = now, account_id
    evidence.append(session, "acknowledged", actor=actor, document_id=document.id, subject_id=document.subject_id,
                    channel=channel, at=now, payload={})
    _maybe_honour(session, document, now)
    session.flush()
    return document


def acknowledge(session: Session, actor: Account, document_id: int) -> LegalDocument:
    """The recipient confirms receipt with one click (签收); idempotent. The issuer cannot."""
    document, role = get(session, actor, document_id)
    if role != "recipient":
        raise DomainError("not_the_recipient")
    document = session.get(LegalDocument, document.id, with_for_update=True, populate_existing=True)
    return _acknowledge(session, document, actor=evidence.actor_of(actor), account_id=actor.id,
                        channel="miniprogram")


def acknowledge_via_link(session: Session, document: LegalDocument, link: DocumentLink) -> LegalDocument:
    document = session.get(LegalDocument, document.id, with_for_update=True, populate_existing=True)
    return _acknowledge(session, document, actor=f"link:{link.id}", account_id=None, channel=link.channel)


def export_evidence(session: Session, actor: Account, document_id: int) -> tuple[LegalDocument, list]:
    """The document's entries for its recipient or issuer; the export is itself recorded first."""
    document, role = get(session, actor, document_id)
    evidence.append(session, "evidence_exported", actor=evidence.actor_of(actor), document_id=document.id,
                    subject_id=document.subject_id, payload={"role": role})
    return document, evidence.document_entries(session, document.id)


# --- delivery outcomes (the outbox worker's hook) -------------------------------------------------

@outbox.on_outcome(KIND)
def delivery_outcome(session: Session, message: OutboxMessage, outcome: str, attempt: OutboxAttempt) -> None:
    """A message of a document reached 'sent' (WeChat, SMTP or the gateway accepted it) or 'dead'."""
    delivery = session.scalar(select(DocumentDelivery).where(DocumentDelivery.outbox_message_id == message.id))
    at = timeutil.aware(attempt.finished_at) or timeutil.now()
    detail = {"outbox_message_id": message.id, "attempt": attempt.number, "code": attempt.errcode,
              "external_id": message.external_id}
    if delivery is not None:
        if outcome == "sent":
            delivery.delivered_at = at
            _forget_link(message)
        else:
            delivery.failed_at = at
        evidence.append(session, "delivered" if outcome == "sent" else "delivery_failed", actor="outbox",
                        document_id=delivery.document_id, channel=delivery.channel, at=at,
                        subject_id=session.get(LegalDocument, delivery.document_id).subject_id,
                        payload={**detail, "address": delivery.address_masked, "committed": True,
                                 "reply": (attempt.reply or "")[:200] if outcome != "sent" else None})
        return
    # A push of the in-app notice to one of the subject's accounts (not a committed address).
    document_id = (message.payload or {}).get("document_id")
    if document_id is None and message.notice_id is not None:
        notice = session.get(Notice, message.notice_id)
        document_id = (notice.body or {}).get("document_id") if notice is not None else None
    document = session.get(LegalDocument, document_id) if isinstance(document_id, int) else None
    if document is None:
        return
    evidence.append(session, "notice_pushed" if outcome == "sent" else "notice_push_failed", actor="outbox",
                    document_id=document.id, subject_id=document.subject_id, channel=attempt.channel.value, at=at,
                    payload={**detail, "account_id": message.account_id, "committed": False})


def _forget_link(message: OutboxMessage) -> None:
    """A link's token waits in clear in its outbox message until sent; once sent, only its hash remains."""
    url = (message.payload or {}).get("url")
    if isinstance(url, str) and "/d/" in url:
        message.payload = {**message.payload, "url": url.rsplit("/d/", 1)[0] + "/d/[sent]"}


# --- the deadline --------------------------------------------------------------------------------

def close_overdue(session: Session, *, now: datetime | None = None) -> list[int]:
    """Documents whose deadline passed unopened and unacknowledged become 'evaded', with a bad record.

    Idempotent: only documents still 'served' are looked at, each once (locked, skipped when another
    run holds it). Returns their ids."""
    now = now or timeutil.now()
    q = (select(LegalDocument).where(LegalDocument.status == DocumentStatus.served, LegalDocument.deadline_at < now)
         .order_by(LegalDocument.id).with_for_update(skip_locked=True))
    done = []
    for document in session.scalars(q).all():
        _record(session, document, DocumentStatus.evaded, EVADED_CATEGORY, now, EVADED_PUBLISHED)
        done.append(document.id)
        log.info("document service evaded", extra={"document_id": document.id, "subject_id": document.subject_id})
    session.flush()
    return done


# --- the receipt (送达回证) ------------------------------------------------------------------------

RECIPIENT_READS = ("opened", "downloaded")


def receipt(entries: list[Mapping]) -> dict:
    """What the document's evidence says, as a receipt: per channel sent, delivered, failed; first opened;
    acknowledged; and when service is deemed complete: the earliest of reaching a committed address,
    the recipient opening it, and the recipient acknowledging it. Built from the entries alone."""
    def at(e):
        return e["at"] if isinstance(e["at"], str) else evidence.timestamp(e["at"])

    served = entries[0] if entries and entries[0]["event"] == "served" else None
    channels: dict[tuple[str, int | None], dict] = {}
    by_message: dict[int, tuple[str, int | None]] = {}
    opened = acknowledged = delivered = None
    for e in entries:
        p, ev = e["payload"], e["event"]
        if ev == "sent":
            key = (e["channel"], p.get("position"))
            channels[key] = {"channel": e["channel"], "address": p.get("address"), "sent_at": at(e),
                             "delivered_at": None, "failed_at": None, "seq": e["seq"]}
            by_message[p.get("outbox_message_id")] = key
        elif ev in ("delivered", "delivery_failed") and p.get("outbox_message_id") in by_message:
            row = channels[by_message[p["outbox_message_id"]]]
            field = "delivered_at" if ev == "delivered" else "failed_at"
            row[field] = row[field] or at(e)
            if ev == "delivered" and delivered is None:
                delivered = e
        elif ev in RECIPIENT_READS and opened is None:
            opened = e
        elif ev == "acknowledged" and acknowledged is None:
            acknowledged = e
    candidates = [(at(e), basis, e["seq"]) for e, basis in ((delivered, "delivered"), (opened, "opened"),
                                                             (acknowledged, "acknowledged")) if e is not None]
    deemed = min(candidates) if candidates else None
    return {
        "document": {k: served["payload"].get(k) for k in ("case_number", "title", "content_sha256",
                                                           "content_type", "size_bytes", "deadline_at")}
                    if served else None,
        "issuer": served["payload"].get("issuer") if served else None,
        "recipient": served["payload"].get("recipient") if served else None,
        "commitment": served["payload"].get("commitment") if served else None,
        "served_at": at(served) if served else None,
        "channels": list(channels.values()),
        "opened_at": at(opened) if opened else None,
        "opened_via": opened["channel"] if opened else None,
        "acknowledged_at": at(acknowledged) if acknowledged else None,
        "deemed_served_at": deemed[0] if deemed else None,
        "deemed_served_basis": deemed[1] if deemed else None,
        "deemed_served_seq": deemed[2] if deemed else None,
        "rule": "送达完成时间：文书到达受送达人确认的电子送达地址之日，或受送达人查阅、签收文书之日，以在先者为准。",
    }
