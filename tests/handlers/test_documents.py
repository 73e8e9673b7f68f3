"""Serving legal documents: who may issue, what is refused, what goes out, who may read, acknowledgement, the
delivery hook, the receipt's rule, and the credit records of honoured and evaded services."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import documents, evidence, outbox, timeutil
from handlers.errors import DomainError
from handlers.models import (
    Channel, CreditRecord, DocumentLink, DocumentStatus, EvidenceEntry, LegalDocument, Notice, OutboxAttempt,
    OutboxMessage, OutboxState, Role, Status,
)
from handlers.storage import FileSystemStore, StoreError, sha256_hex

from ..conftest import KEYS, count
from ..documents_support import PDF, SETTINGS, commit, court, enterprise, jpeg, png, serve, store


@pytest.fixture
def world(db):
    org, member = court(db)
    subject, (agent,) = enterprise(db)
    commit(db, agent, subject)
    return org, member, subject, agent


def _events(db, document_id):
    return [(e.event, e.channel) for e in evidence.document_entries(db, document_id)]


def test_serving_sends_to_every_committed_address_at_once(db, tmp_path, world):
    _org, member, subject, agent = world
    document = serve(db, tmp_path, member, subject)
    assert document.content_sha256 == sha256_hex(PDF) and document.content_type == "application/pdf"
    assert store(tmp_path).get(document.content_sha256) == PDF
    assert document.deadline_at - document.served_at == timedelta(days=SETTINGS.answer_days)
    messages = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "legal_document")
                          .order_by(OutboxMessage.id)).all()
    assert [(m.channel, m.account_id, m.address_masked) for m in messages] == [
        (Channel.subscribe, agent.id, None), (Channel.email, None, "l***@pengcheng.example"),
        (Channel.sms, None, "138****8000")]
    assert all(m.state == OutboxState.pending and m.payload["document_id"] == document.id for m in messages)
    # E-mail and SMS carry a one-time link each; the mini-program message opens the page.
    assert messages[0].payload["page"] == f"/app/#/documents/{document.id}" and messages[0].payload["url"] is None
    urls = [m.payload["url"] for m in messages[1:]]
    assert all(u.startswith("http://testserver/d/") for u in urls) and len(set(urls)) == 2
    assert count(db, DocumentLink) >= 2
    notice = db.scalar(select(Notice).where(Notice.subject_id == subject.id, Notice.kind == "legal_document"))
    assert notice.body["document_id"] == document.id and notice.page == f"/app/#/documents/{document.id}"
    assert _events(db, document.id) == [("served", None), ("sent", "wechat"), ("sent", "email"), ("sent", "sms"),
                                        ("notified", "notice")]
    served = evidence.document_entries(db, document.id)[0].payload
    assert served["content_sha256"] == document.content_sha256
    assert served["commitment"]["version"] == 1 and served["commitment"]["evidence_hash"]
    assert evidence.verify(db).ok


def test_the_clear_addresses_are_nowhere_but_sealed(db, tmp_path, world):
    _org, member, subject, _agent = world
    document = serve(db, tmp_path, member, subject)
    for e in evidence.document_entries(db, document.id):
        assert "13800138000" not in str(e.payload) and "legal@pengcheng" not in str(e.payload)
    for m in db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "legal_document")):
        assert "13800138000" not in str(m.payload) and "legal@pengcheng" not in str(m.payload)


@pytest.mark.parametrize("data, code", [
    (b"", "document_type_not_allowed"),
    (b"MZ\x90\x00 an executable named judgment.pdf", "document_type_not_allowed"),
    (b"%PDF-1.4 but cut short", "document_type_not_allowed"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "document_type_not_allowed"),
    (b"\xff\xd8\xff" + b"garbage", "document_type_not_allowed"),
    (PDF + b"x" * (1024 * 1024), "document_too_large"),
])
def test_bad_files_are_refused_and_nothing_is_written(db, tmp_path, world, data, code):
    _org, member, subject, _agent = world
    before = count(db, LegalDocument), count(db, EvidenceEntry), count(db, OutboxMessage), count(db, Notice)
    small = documents.Settings(max_bytes=1024 * 1024, link_base="http://testserver")
    with pytest.raises(DomainError) as e:
        documents.serve(db, KEYS, store(tmp_path), member, small, data=data, subject_id=subject.id,
                        case_number="（2026）粤13民初1号", title="判决书")
    assert e.value.code == code
    assert (count(db, LegalDocument), count(db, EvidenceEntry), count(db, OutboxMessage), count(db, Notice)) == before
    assert not (tmp_path / "documents").exists()


@pytest.mark.parametrize("make, ctype", [(png, "image/png"), (jpeg, "image/jpeg")])
def test_images_are_accepted_by_content(db, tmp_path, world, make, ctype):
    _org, member, subject, _agent = world
    assert serve(db, tmp_path, member, subject, data=make()).content_type == ctype


def test_a_subject_without_commitment_is_refused_clearly(db, tmp_path):
    _org, member = court(db)
    subject, (agent,) = enterprise(db)
    before = count(db, LegalDocument), count(db, OutboxMessage)
    with pytest.raises(DomainError) as e:
        serve(db, tmp_path, member, subject)
    assert e.value.code == "no_service_address"
    commit(db, agent, subject)
    from handlers import service_address
    service_address.revoke(db, agent, subject.id)
    with pytest.raises(DomainError) as e:
        serve(db, tmp_path, member, subject)
    assert e.value.code == "service_address_revoked"
    assert (count(db, LegalDocument), count(db, OutboxMessage)) == before


def test_the_subject_by_its_credit_code(db, tmp_path, world):
    _org, member, subject, _agent = world
    document = documents.serve(db, KEYS, store(tmp_path), member, SETTINGS, data=PDF,
                               identifier=subject.identifier_for_test, case_number="（2026）粤13民初2号",
                               title="传票")
    assert document.subject_id == subject.id
    for kw, code in (({"identifier": "91441302MA00000000"}, "bad_check_digit"),
                     ({}, "subject_required"),
                     ({"identifier": subject.identifier_for_test, "subject_id": subject.id}, "subject_required")):
        with pytest.raises(DomainError) as e:
            documents.serve(db, KEYS, store(tmp_path), member, SETTINGS, data=PDF, case_number="x", title="y", **kw)
        assert e.value.code in (code, "bad_identifier"), kw


def test_who_may_issue(db, tmp_path, world, citizen):
    org, _member, subject, agent = world
    _, clerk = court(db, role=Role.clerk, name="惠城区人民法院")
    assert serve(db, tmp_path, clerk, subject).organisation_id != org.id  # a clerk of a court may serve
    _, library_admin = court(db, kind="institution", name="慈云图书馆")
    _, pending_admin = court(db, status=Status.pending, name="新设法庭")
    cases = ((library_admin, "not_an_issuer"), (citizen, "not_an_issuer"), (agent, "not_an_issuer"),
             (pending_admin, "organisation_not_active"))
    for actor, code in cases:
        with pytest.raises(DomainError) as e:
            serve(db, tmp_path, actor, subject)
        assert e.value.code == code


def test_an_issuer_of_two_organisations_must_say_which(db, tmp_path, world):
    org, member, subject, _agent = world
    other, _ = court(db, name="惠阳区人民法院")
    from handlers import accounts
    accounts.grant(db, member, Role.clerk, organisation_id=other.id)
    with pytest.raises(DomainError) as e:
        serve(db, tmp_path, member, subject)
    assert e.value.code == "issuer_ambiguous" and set(e.value.detail["organisation_ids"]) == {org.id, other.id}
    assert serve(db, tmp_path, member, subject, organisation_id=other.id).organisation_id == other.id


def test_only_the_recipient_and_the_issuer_may_read_and_every_read_is_evidence(db, tmp_path, world, citizen,
                                                                                platform_admin):
    _org, member, subject, agent = world
    document = serve(db, tmp_path, member, subject)
    _, (stranger,) = enterprise(db)
    _, other_court = court(db, name="深圳前海合作区人民法院")
    for outsider in (stranger, other_court, citizen, platform_admin):
        with pytest.raises(DomainError) as e:
            documents.read(db, outsider, document.id)
        assert e.value.code == "document_not_found"
    with pytest.raises(DomainError) as e:
        documents.read(db, agent, 10**9)
    assert e.value.code == "document_not_found"
    assert documents.read(db, member, document.id, what="content")[1] == "issuer"
    assert document.opened_at is None  # the issuer's read is not the recipient opening it
    assert documents.read(db, agent, document.id)[1] == "recipient"
    assert documents.read(db, agent, document.id, what="content")[1] == "recipient"
    assert _events(db, document.id)[-4:] == [("issuer_read", None), ("opened", "miniprogram"), ("honoured", None),
                                             ("downloaded", "miniprogram")]
    assert document.opened_at is not None and document.status == DocumentStatus.honoured


def test_acknowledge_once_honours_the_commitment(db, tmp_path, world):
    _org, member, subject, agent = world
    document = serve(db, tmp_path, member, subject)
    with pytest.raises(DomainError) as e:
        documents.acknowledge(db, member, document.id)
    assert e.value.code == "not_the_recipient"
    first = documents.acknowledge(db, agent, document.id).acknowledged_at
    again = documents.acknowledge(db, agent, document.id)
    assert again.acknowledged_at == first and again.acknowledged_by_id == agent.id
    events = [e for e, _ in _events(db, document.id)]
    assert events.count("acknowledged") == 1 and events[-1] == "honoured"
    assert again.status == DocumentStatus.honoured
    record = db.get(CreditRecord, again.credit_record_id)
    assert (record.category_code, record.kind.value, record.source, record.external_id) == (
        "legal_service_honoured", "honour", "legal_service", f"document-{document.id}")


def test_after_the_deadline_close_overdue_records_the_evasion_once(db, tmp_path, world):
    _org, member, subject, agent = world
    kept = serve(db, tmp_path, member, subject)
    dodged = serve(db, tmp_path, member, subject)
    documents.read(db, agent, kept.id)
    assert kept.status == DocumentStatus.honoured
    assert documents.close_overdue(db) == []  # nothing is overdue yet
    later = timeutil.now() + timedelta(days=SETTINGS.answer_days, seconds=1)
    closed = documents.close_overdue(db, now=later)
    assert dodged.id in closed and kept.id not in closed
    assert documents.close_overdue(db, now=later) == []  # idempotent
    db.refresh(dodged)
    assert dodged.status == DocumentStatus.evaded
    record = db.get(CreditRecord, dodged.credit_record_id)
    assert (record.category_code, record.kind.value) == ("legal_service_evaded", "bad")
    assert _events(db, dodged.id)[-1] == ("evaded", None)
    from handlers import colours, subjects
    assert colours.colour(db, subjects.get(db, subject.id), at=later).value == "red"  # honour or not, a bad record
    # Opening it late is recorded, and changes nothing about the outcome.
    documents.read(db, agent, dodged.id)
    db.refresh(dodged)
    assert dodged.status == DocumentStatus.evaded
    assert evidence.verify(db).ok


def _attempt(message, outcome="sent"):
    return OutboxAttempt(message_id=message.id, number=1, channel=message.channel, outcome=outcome, errcode=0,
                         reply="ok", worker="test", started_at=timeutil.now(), finished_at=timeutil.now())


def test_the_outbox_hook_records_delivery_and_failure(db, tmp_path, world):
    _org, member, subject, _agent = world
    document = serve(db, tmp_path, member, subject)
    assert documents.delivery_outcome in outbox._HOOKS["legal_document"]
    _wechat, email, sms = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "legal_document")
                                    .order_by(OutboxMessage.id)).all()
    token_url = email.payload["url"]
    documents.delivery_outcome(db, email, "sent", _attempt(email))
    documents.delivery_outcome(db, sms, "dead", _attempt(sms, "dead"))
    db.flush()
    db.expire_all()
    # Once sent, the link's token is no longer kept in clear; a dead message keeps it for a retry.
    assert db.get(OutboxMessage, email.id).payload["url"] == token_url.rsplit("/d/", 1)[0] + "/d/[sent]"
    assert "/d/[sent]" not in db.get(OutboxMessage, sms.id).payload["url"]
    tail = _events(db, document.id)[-2:]
    assert tail == [("delivered", "email"), ("delivery_failed", "sms")]
    receipt = documents.receipt([evidence.as_dict(e) for e in evidence.document_entries(db, document.id)])
    by_channel = {c["channel"]: c for c in receipt["channels"]}
    assert by_channel["email"]["delivered_at"] and by_channel["sms"]["failed_at"]
    assert by_channel["wechat"]["delivered_at"] is None
    assert (receipt["deemed_served_basis"], receipt["opened_at"]) == ("delivered", None)


def test_the_hook_records_pushes_of_the_notice_as_not_committed(db, tmp_path, world):
    _org, member, subject, agent = world
    document = serve(db, tmp_path, member, subject)
    notice = db.scalar(select(Notice).where(Notice.body["document_id"].as_integer() == document.id))
    push = OutboxMessage(dedupe_key=f"notice:{notice.id}:{agent.id}", kind="legal_document", notice_id=notice.id,
                         account_id=agent.id, payload={"title": notice.title}, channels=["template"],
                         channel_index=0, channel=Channel.template, state=OutboxState.sent, attempts=1)
    db.add(push)
    db.flush()
    documents.delivery_outcome(db, push, "sent", _attempt(push))
    last = evidence.document_entries(db, document.id)[-1]
    assert (last.event, last.channel, last.payload["committed"]) == ("notice_pushed", "template", False)
    receipt = documents.receipt([evidence.as_dict(e) for e in evidence.document_entries(db, document.id)])
    assert receipt["deemed_served_at"] is None  # a push of the notice is not the committed address


def test_deemed_served_is_the_earliest_of_delivered_opened_acknowledged(db, tmp_path, world):
    _org, member, subject, agent = world
    document = serve(db, tmp_path, member, subject)
    documents.read(db, agent, document.id)
    documents.acknowledge(db, agent, document.id)
    _, email, _ = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "legal_document")
                             .order_by(OutboxMessage.id)).all()
    documents.delivery_outcome(db, email, "sent", _attempt(email))  # delivered after it was opened
    rows = [evidence.as_dict(e) for e in evidence.document_entries(db, document.id)]
    receipt = documents.receipt(rows)
    opened = next(r for r in rows if r["event"] == "opened")
    assert (receipt["deemed_served_basis"], receipt["deemed_served_at"]) == ("opened", opened["at"])
    assert receipt["acknowledged_at"] and receipt["document"]["content_sha256"] == document.content_sha256


def test_links_open_once_and_expire(db, tmp_path, world):
    _org, member, subject, _agent = world
    document = serve(db, tmp_path, member, subject)
    link = db.scalars(select(DocumentLink).where(DocumentLink.document_id == document.id)).first()
    # Only the hash is stored; the token went out in the message.
    token = next(m.payload["url"].rsplit("/", 1)[1] for m in db.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == "legal_document", OutboxMessage.channel == Channel.email)))
    assert link.token_hash == documents._hash(token) and token not in str(link.__dict__)
    with pytest.raises(DomainError) as e:
        documents.peek_link(db, "x" * 43)
    assert e.value.code == "link_not_found"
    view = documents.open_link(db, SETTINGS, token)
    found, session_link = documents.link_session(db, view)
    assert found.id == document.id and session_link.used_at is not None
    with pytest.raises(DomainError) as e:
        documents.open_link(db, SETTINGS, token)
    assert e.value.code == "link_used"
    other = db.scalars(select(DocumentLink).where(DocumentLink.document_id == document.id,
                                                  DocumentLink.used_at.is_(None))).first()
    other.expires_at = timeutil.now() - timedelta(seconds=1)
    db.flush()
    sms_token = next(m.payload["url"].rsplit("/", 1)[1] for m in db.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == "legal_document", OutboxMessage.channel == Channel.sms)))
    with pytest.raises(DomainError) as e:
        documents.open_link(db, SETTINGS, sms_token)
    assert e.value.code == "link_expired"
    session_link.session_expires_at = timeutil.now() - timedelta(seconds=1)
    db.flush()
    with pytest.raises(DomainError) as e:
        documents.link_session(db, view)
    assert e.value.code == "link_session_expired"


def test_the_store_is_content_addressed_and_checks_what_it_gives_back(tmp_path):
    s = FileSystemStore(tmp_path)
    h = s.put(PDF)
    assert h == sha256_hex(PDF) and s.put(PDF) == h and s.get(h) == PDF
    assert s.path(h).relative_to(tmp_path).parts == (h[:2], h[2:4], h)
    assert not [p for p in s.path(h).parent.iterdir() if p.name.startswith(".tmp-")]
    s.path(h).chmod(0o640)
    s.path(h).write_bytes(PDF + b"tampered")
    with pytest.raises(StoreError, match="altered"):
        s.get(h)
    with pytest.raises(StoreError):
        s.get("0" * 64)
    with pytest.raises(StoreError):
        s.path("../../etc/passwd")
