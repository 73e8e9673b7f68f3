"""The evidence log of legal service: an append-only, hash-chained log, its verification and its per-document view.

One global chain. Every entry holds the hash of the entry before it (``prev_hash``) and the SHA-256 of
its own canonical serialisation (``hash``), which covers every column, ``prev_hash`` included. Entries
of one document are also linked to each other (``document_prev_hash``), so a document's entries,
exported on their own, still verify as a chain; the first of them ("served") holds the document's
SHA-256. Why global rather than a chain per document: a per-document chain cannot show that a whole
document's entries were removed, nor order events across documents, and it gives no single head to
publish; the global chain does all three, and the second link keeps each document's view checkable.

Appends are serialised (a PostgreSQL advisory lock held to the end of the transaction; SQLite
transactions here take the write lock at BEGIN), so ``seq`` has no gaps and ``prev_hash`` no forks.
Nothing updates or deletes an entry: the ORM refuses (handlers/models/documents.py), and so do
database triggers (migration 0007). Whoever can bypass both, say a DBA, still cannot make a change
that ``verify`` misses, short of rewriting every later entry too, which a head hash published or
handed out earlier (every receipt carries one) exposes.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from . import timeutil
from .models import Account, EvidenceEntry, LegalDocument

GENESIS = "0" * 64
FORMAT = 1  # of the canonical serialisation; part of every hash
# pg_advisory_xact_lock key of the evidence chain ("xinma" + 7, the migration that made it).
_LOCK_KEY = 0x78696E6D6107

COLUMNS = ("seq", "document_id", "subject_id", "event", "channel", "actor", "at", "payload", "prev_hash",
           "document_prev_hash")


class EvidenceError(Exception):
    """An entry that cannot be hashed canonically (a float, a non-string key …): a programming error."""


def timestamp(at: datetime | str) -> str:
    """UTC, microseconds, 'Z': the one text form of an instant in the hash (both databases keep microseconds)."""
    if isinstance(at, str):  # an exported entry: the text is what was hashed
        return at
    at = timeutil.aware(at)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value, path: str = "payload"):
    """JSON values that survive both databases' JSON columns unchanged: no floats, string keys only."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise EvidenceError(f"{path}: keys must be strings")
        return {k: _plain(v, f"{path}.{k}") for k, v in value.items()}
    raise EvidenceError(f"{path}: {type(value).__name__} is not allowed in evidence (use str or int)")


def canonical(entry: Mapping) -> bytes:
    """The bytes that are hashed: JSON of every column but ``hash``, keys sorted, no spaces, UTF-8."""
    body = {name: entry[name] for name in COLUMNS}
    body["at"] = timestamp(entry["at"])
    body["format"] = FORMAT
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def actor_of(account: Account | None) -> str:
    return f"account:{account.id}" if account is not None else "system"


def _lock(session: Session) -> None:
    """Take the chain's lock for the rest of the database transaction (once per transaction)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.connection()  # begin, so that there is a transaction to hold the lock
    root = session.get_transaction()
    while root is not None and root.parent is not None:
        root = root.parent
    if session.info.get("xinma.evidence_lock") is not root:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        session.info["xinma.evidence_lock"] = root


_LAST = select(EvidenceEntry.seq, EvidenceEntry.hash).order_by(EvidenceEntry.seq.desc()).limit(1)


def _tails(session: Session, document_id: int | None) -> tuple[int, str, str | None]:
    """(last seq, last hash, hash of the document's last entry) in one round trip."""
    last = _LAST.subquery()
    columns = [select(last.c.seq).scalar_subquery(), select(last.c.hash).scalar_subquery()]
    if document_id is not None:
        columns.append(select(EvidenceEntry.hash).where(EvidenceEntry.document_id == document_id)
                       .order_by(EvidenceEntry.seq.desc()).limit(1).scalar_subquery())
    row = session.execute(select(*columns)).one()
    seq, digest = row[0] or 0, row[1] or GENESIS
    return seq, digest, ((row[2] or GENESIS) if document_id is not None else None)


def append(session: Session, event: str, *, actor: str, payload: dict | None = None, document_id: int | None = None,
           subject_id: int | None = None, channel: str | None = None, at: datetime | None = None) -> EvidenceEntry:
    """Add one entry at the end of the chain, in the caller's transaction (it commits with the event itself)."""
    _lock(session)
    last_seq, last_hash, document_prev = _tails(session, document_id)
    fields = {
        "seq": last_seq + 1,
        "document_id": document_id,
        "subject_id": subject_id,
        "event": event,
        "channel": channel,
        "actor": actor,
        "at": at or timeutil.now(),
        "payload": _plain(payload or {}),
        "prev_hash": last_hash,
        "document_prev_hash": document_prev,
    }
    entry = EvidenceEntry(**fields, hash=entry_hash(fields))
    session.add(entry)
    session.flush()
    return entry


def as_dict(entry: EvidenceEntry | Mapping) -> dict:
    """An entry as exported (JSON-ready): every column, the time in the hashed text form."""
    get = entry.__getitem__ if isinstance(entry, Mapping) else lambda name: getattr(entry, name)
    out = {name: get(name) for name in COLUMNS}
    out["at"] = timestamp(out["at"])
    out["hash"] = get("hash")
    return out


def document_entries(session: Session, document_id: int) -> list[EvidenceEntry]:
    return list(session.scalars(select(EvidenceEntry).where(EvidenceEntry.document_id == document_id)
                                .order_by(EvidenceEntry.seq)))


def head(session: Session) -> tuple[int, str] | None:
    row = session.execute(_LAST).first()
    return (row.seq, row.hash) if row else None


# --- verification --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Break:
    seq: int | None     # the first entry found broken (None: something missing after the last entry)
    reason: str         # edited | missing | prev_hash | document_chain | first_entry | document | head
    detail: str

    def describe(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "the chain"
        return f"{where}: {self.reason}: {self.detail}"


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str | None
    broken: Break | None = None


class _Walker:
    """Checks entries one by one, in seq order; the first break wins."""

    def __init__(self, *, whole_chain: bool):
        self.whole_chain = whole_chain
        self.expected = 1
        self.prev = GENESIS
        self.documents: dict[int, str] = {}   # document id -> hash of its latest entry
        self.first: dict[int, dict] = {}      # document id -> its first entry's payload
        self.count = 0
        self.last: tuple[int, str] | None = None
        self.heads: dict[int, str] = {}        # seq -> hash, only those asked for

    def step(self, row: Mapping) -> Break | None:
        seq = row["seq"]
        if self.whole_chain:
            if seq != self.expected:
                return Break(seq, "missing", f"expected entry {self.expected} next, found {seq}: "
                                             f"entries {self.expected}..{seq - 1} were deleted")
            if row["prev_hash"] != self.prev:
                return Break(seq, "prev_hash", "prev_hash is not the hash of the entry before it: that entry was "
                                               "rewritten, or entries were inserted, removed or reordered")
        if entry_hash(row) != row["hash"]:
            return Break(seq, "edited", "the entry's content does not match its hash: it was altered")
        doc = row["document_id"]
        if doc is not None:
            if row["document_prev_hash"] != self.documents.get(doc, GENESIS):
                return Break(seq, "document_chain", f"document {doc}'s entries do not link up: one of its entries "
                                                    f"was removed, inserted or reordered")
            if doc not in self.documents:
                if row["event"] != "served" or not row["payload"].get("content_sha256"):
                    return Break(seq, "first_entry", f"document {doc}'s first entry is not 'served' with the "
                                                     f"document's SHA-256")
                self.first[doc] = row["payload"]
            self.documents[doc] = row["hash"]
        elif row["document_prev_hash"] is not None:
            return Break(seq, "document_chain", "an entry of no document carries a document link")
        self.prev = row["hash"]
        self.expected = seq + 1
        self.count += 1
        self.last = (seq, row["hash"])
        return None


def _rows(session: Session, batch: int) -> Generator[Mapping, None, None]:
    columns = [getattr(EvidenceEntry, name) for name in (*COLUMNS, "hash")]
    result = session.execute(select(*columns).order_by(EvidenceEntry.seq).execution_options(yield_per=batch))
    try:
        for row in result:
            yield row._mapping
    finally:
        result.close()  # a server-side cursor (PostgreSQL) left open when verification stops early


def verify(session: Session, *, progress: bool = False, expect_head: tuple[int, str] | None = None,
           check_documents: bool = True, batch: int = 2000) -> Verification:
    """Walk the whole chain and name the first broken entry.

    ``expect_head`` is a (seq, hash) published or handed out earlier: it must still be in the chain
    (this is what catches a tail cut off, or a chain rewritten from some point on). With
    ``check_documents`` every document must have its 'served' entry, holding the document's SHA-256.
    """
    from tqdm import tqdm

    total = session.scalar(select(func.count()).select_from(EvidenceEntry)) or 0
    walker = _Walker(whole_chain=True)
    broken = None
    rows = _rows(session, batch)
    with tqdm(total=total, disable=not progress, unit="entry", desc="evidence", leave=False) as bar:
        try:
            for row in rows:
                broken = walker.step(row)
                if broken is not None:
                    break
                if expect_head is not None and row["seq"] == expect_head[0]:
                    walker.heads[row["seq"]] = row["hash"]
                bar.update(1)
        finally:
            rows.close()
    if broken is None and expect_head is not None:
        seq, want = expect_head
        got = walker.heads.get(seq)
        if got is None:
            broken = Break(None, "head", f"entry {seq} (a head handed out earlier) is no longer in the chain: "
                                         f"the chain was cut short")
        elif got != want:
            broken = Break(seq, "head", "the entry at a head handed out earlier has another hash now: "
                                        "the chain was rewritten from there or before")
    if broken is None and check_documents:
        broken = _check_documents(session, walker)
    head_seq, head_hash = walker.last or (None, None)
    return Verification(broken is None, walker.count, head_seq, head_hash, broken)


def _check_documents(session: Session, walker: _Walker) -> Break | None:
    for doc_id, sha in session.execute(select(LegalDocument.id, LegalDocument.content_sha256)
                                       .order_by(LegalDocument.id)):
        first = walker.first.get(doc_id)
        if first is None:
            return Break(None, "document", f"document {doc_id} has no 'served' entry: its evidence was removed")
        if first.get("content_sha256") != sha:
            return Break(None, "document", f"document {doc_id}'s SHA-256 differs from the one its evidence holds")
    return None


def verify_document(entries: list[Mapping], *, content_sha256: str | None = None) -> Break | None:
    """Check one document's exported entries on their own: each hash, their links, the first entry.

    Does not need the rest of the chain; ``content_sha256`` (of the file in hand) must be the one the
    first entry holds.
    """
    walker = _Walker(whole_chain=False)
    for row in entries:
        broken = walker.step(row)
        if broken is not None:
            return broken
    if not entries:
        return Break(None, "first_entry", "no entries")
    first = entries[0]["payload"]
    if content_sha256 is not None and first.get("content_sha256") != content_sha256:
        return Break(entries[0]["seq"], "document", "the file's SHA-256 is not the one served")
    return None
