"""The evidence log: a hash chain that verifies, refuses changes (ORM and database), and names the first entry an
insider altered, deleted, reordered or inserted."""
from datetime import timedelta, UTC

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from handlers import evidence
from handlers.models import EvidenceEntry

from ..conftest import create_account
from ..documents_support import commit, court, disable_triggers, enterprise, serve
import itertools


def _chain(db, n=5, *, document_id=None):
    actor = create_account(db, role=None)
    return [evidence.append(db, "test_event", actor=evidence.actor_of(actor), document_id=document_id,
                            payload={"i": i, "text": "证据"}) for i in range(n)]


def test_entries_link_up_and_verify(db):
    before = evidence.head(db)
    entries = _chain(db, 4)
    start = before[0] + 1 if before else 1
    assert [e.seq for e in entries] == list(range(start, start + 4))
    assert entries[0].prev_hash == (before[1] if before else evidence.GENESIS)
    for a, b in itertools.pairwise(entries):
        assert b.prev_hash == a.hash
    for e in entries:
        assert e.hash == evidence.entry_hash(evidence.as_dict(e)) == evidence.entry_hash(
            {c: getattr(e, c) for c in evidence.COLUMNS})
    result = evidence.verify(db)
    assert result.ok and result.broken is None
    assert (result.head_seq, result.head_hash) == (entries[-1].seq, entries[-1].hash)


def test_the_hash_covers_every_column(db):
    e = evidence.as_dict(_chain(db, 1)[0])
    base = evidence.entry_hash(e)
    changes = {"seq": e["seq"] + 1, "document_id": 99, "subject_id": 7, "event": "other", "channel": "email",
               "actor": "account:0", "at": "2026-01-01T00:00:00.000000Z", "payload": {"i": 1},
               "prev_hash": "f" * 64, "document_prev_hash": "e" * 64}
    assert set(changes) == set(evidence.COLUMNS)
    for column, value in changes.items():
        assert evidence.entry_hash({**e, column: value}) != base, column


def test_canonical_form_is_fixed():
    """The bytes hashed are part of the evidence: pin them (docs/legal-service.md describes them)."""
    from datetime import datetime
    entry = {"seq": 1, "document_id": 2, "subject_id": 3, "event": "served", "channel": None, "actor": "account:4",
             "at": datetime(2026, 11, 22, 8, 0, 0, 123456, tzinfo=UTC), "payload": {"b": 1, "a": "文"},
             "prev_hash": evidence.GENESIS, "document_prev_hash": evidence.GENESIS}
    assert evidence.canonical(entry) == (
        '{"actor":"account:4","at":"2026-11-22T08:00:00.123456Z","channel":null,"document_id":2,'
        '"document_prev_hash":"' + "0" * 64 + '","event":"served","format":1,"payload":{"a":"文","b":1},'
        '"prev_hash":"' + "0" * 64 + '","seq":1,"subject_id":3}').encode()


def test_payloads_that_would_not_survive_a_round_trip_are_refused(db):
    with pytest.raises(evidence.EvidenceError):
        evidence.append(db, "x", actor="system", payload={"amount": 1.5})
    with pytest.raises(evidence.EvidenceError):
        evidence.append(db, "x", actor="system", payload={1: "non-string key"})


def test_the_orm_refuses_to_update(db):
    entry = _chain(db, 1)[0]
    entry.event = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        db.flush()


def test_the_orm_refuses_to_delete(db):
    entry = _chain(db, 1)[0]
    db.delete(entry)
    with pytest.raises(RuntimeError, match="append-only"):
        db.flush()


@pytest.mark.parametrize("statement", [
    "UPDATE evidence_entry SET event = 'rewritten' WHERE seq = :seq",
    "DELETE FROM evidence_entry WHERE seq = :seq",
])
def test_the_database_refuses_to_update_or_delete(db, connection, statement):
    seq = _chain(db, 2)[0].seq
    with pytest.raises(DatabaseError, match="append-only"), connection.begin_nested():
        connection.execute(text(statement), {"seq": seq})
    assert db.get(EvidenceEntry, seq).event == "test_event"


def test_postgresql_also_refuses_truncate(db, connection):
    if connection.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    _chain(db, 1)
    with pytest.raises(DatabaseError, match="append-only"), connection.begin_nested():
        connection.execute(text("TRUNCATE evidence_entry"))


# --- tampering: an insider who can drop the triggers ------------------------------------------------

def _tamper(db, connection, *statements, **params):
    disable_triggers(connection)
    for s in statements:
        connection.execute(text(s), params)
    db.expire_all()


def test_an_edited_entry_is_named(db, connection):
    entries = _chain(db, 5)
    victim = entries[2]
    _tamper(db, connection, "UPDATE evidence_entry SET payload = :p WHERE seq = :seq",
            p='{"i": 99, "text": "证据"}', seq=victim.seq)
    result = evidence.verify(db)
    assert not result.ok
    assert (result.broken.seq, result.broken.reason) == (victim.seq, "edited")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(db, connection):
    entries = _chain(db, 5)
    victim = evidence.as_dict(entries[1])
    victim["payload"] = {"i": 42, "text": "伪造"}
    forged = evidence.entry_hash(victim)
    _tamper(db, connection, "UPDATE evidence_entry SET payload = :p, hash = :h WHERE seq = :seq",
            p='{"i": 42, "text": "伪造"}', h=forged, seq=entries[1].seq)
    result = evidence.verify(db)
    assert (result.broken.seq, result.broken.reason) == (entries[2].seq, "prev_hash")


def test_a_deleted_entry_is_named(db, connection):
    seqs = [e.seq for e in _chain(db, 5)]
    _tamper(db, connection, "DELETE FROM evidence_entry WHERE seq = :seq", seq=seqs[2])
    result = evidence.verify(db)
    assert (result.broken.seq, result.broken.reason) == (seqs[3], "missing")
    assert f"{seqs[2]}..{seqs[2]}" in result.broken.detail


def test_reordered_entries_are_named(db, connection):
    entries = _chain(db, 5)
    a, b = entries[1].seq, entries[2].seq
    _tamper(db, connection, "UPDATE evidence_entry SET seq = -1 WHERE seq = :a",
            "UPDATE evidence_entry SET seq = :a WHERE seq = :b", "UPDATE evidence_entry SET seq = :b WHERE seq = -1",
            a=a, b=b)
    result = evidence.verify(db)
    assert result.broken.seq == a and result.broken.reason in ("prev_hash", "edited")


def test_an_inserted_entry_is_named(db, connection):
    entries = _chain(db, 4)
    seqs, k = [e.seq for e in entries], entries[2].seq
    # Make room at k by moving the later entries up one, then put a well-formed forgery there that links
    # to the entry before it: everything about it checks out, but the entry it pushed aside no longer does.
    forged = {**evidence.as_dict(entries[1]), "seq": k, "event": "acknowledged", "payload": {"forged": True},
              "prev_hash": entries[1].hash}
    forged["at"] = entries[1].at
    forged_hash = evidence.entry_hash(forged)
    _tamper(db, connection, "UPDATE evidence_entry SET seq = -seq WHERE seq >= :k",
            "UPDATE evidence_entry SET seq = 1 - seq WHERE seq < 0", k=k)
    connection.execute(EvidenceEntry.__table__.insert().values({**forged, "hash": forged_hash}))
    result = evidence.verify(db)
    assert (result.broken.seq, result.broken.reason) == (k + 1, "prev_hash")
    assert seqs[-1] + 1 == db.scalar(select(EvidenceEntry.seq).order_by(EvidenceEntry.seq.desc()).limit(1))


def test_a_cut_off_tail_is_caught_by_a_head_handed_out_earlier(db, connection):
    entries = _chain(db, 4)
    head = (entries[-1].seq, entries[-1].hash)
    assert evidence.verify(db, expect_head=head).ok
    _tamper(db, connection, "DELETE FROM evidence_entry WHERE seq = :seq", seq=head[0])
    assert evidence.verify(db).ok  # the chain alone cannot see its own end cut off …
    result = evidence.verify(db, expect_head=head)
    assert not result.ok and result.broken.reason == "head"  # … a published head can


def test_a_documents_missing_evidence_is_caught(db, connection, tmp_path):
    _org, member = court(db)
    subject, (agent,) = enterprise(db)
    commit(db, agent, subject)
    document = serve(db, tmp_path, member, subject)
    assert evidence.verify(db).ok
    db.execute(text("UPDATE legal_document SET content_sha256 = :h WHERE id = :id"),
               {"h": "a" * 64, "id": document.id})
    db.expire_all()
    result = evidence.verify(db)
    assert result.broken.reason == "document" and f"document {document.id}" in result.broken.detail
    assert evidence.verify(db, check_documents=False).ok


def test_a_documents_entries_verify_on_their_own(db, tmp_path):
    _org, member = court(db)
    subject, (agent,) = enterprise(db)
    commit(db, agent, subject)
    document = serve(db, tmp_path, member, subject)
    _chain(db, 2)  # entries of nothing in particular, between the document's own
    evidence.append(db, "opened", actor="system", document_id=document.id, payload={})
    rows = [evidence.as_dict(e) for e in evidence.document_entries(db, document.id)]
    assert rows[0]["event"] == "served" and rows[0]["document_prev_hash"] == evidence.GENESIS
    assert evidence.verify_document(rows, content_sha256=document.content_sha256) is None
    assert evidence.verify_document(rows, content_sha256="b" * 64).reason == "document"
    dropped = rows[:1] + rows[2:]
    assert evidence.verify_document(dropped).reason == "document_chain"
    edited = [dict(r) for r in rows]
    edited[-1]["at"] = "2020-01-01T00:00:00.000000Z"
    assert evidence.verify_document(edited).reason == "edited"


def test_appends_are_serialised_and_times_stay_exact(db):
    """Microseconds survive the round trip on both databases: the stored entry hashes the same."""
    from handlers import timeutil
    at = timeutil.now().replace(microsecond=123457) + timedelta(seconds=1)
    entry = evidence.append(db, "x", actor="system", payload={}, at=at)
    db.expire_all()
    again = db.get(EvidenceEntry, entry.seq)
    assert again.at == at and evidence.entry_hash(evidence.as_dict(again)) == again.hash


def test_entries_of_no_document_carry_no_document_link(db):
    e = evidence.append(db, "address_committed", actor="system", subject_id=1, payload={"x": 1})
    assert e.document_id is None and e.document_prev_hash is None
