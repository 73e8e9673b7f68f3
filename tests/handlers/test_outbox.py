"""The outbox's writing side (notify, send_direct, hooks), contact points, and reading notices: in the test's
transaction (rolled back). Delivery by workers, which needs committed rows, is in test_outbox_delivery.py."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers import contacts, outbox
from handlers.errors import DomainError
from handlers.models import Channel, ContactPoint, Notice, OutboxMessage, OutboxState, Role
from tests.conftest import KEYS, count, create_account, create_subject


def test_notify_writes_a_notice_not_yet_fanned_out(db):
    s = create_subject(db)
    n = outbox.notify(db, s.id, "offer_matched", "您有一项政策可免申即享", {"offer_id": 1, "lines": ["金额 1000 元"]},
                      page="/app/#/offers/1")
    assert n.id and n.fanout_at is None and n.read_at is None
    assert db.get(Notice, n.id).page == "/app/#/offers/1"


def test_notify_refuses_a_kind_too_long(db):
    s = create_subject(db)
    with pytest.raises(ValueError):
        outbox.notify(db, s.id, "x" * 33, "t", {})


def test_send_direct_is_idempotent_and_seals_the_address(db):
    before = count(db, OutboxMessage)
    a = outbox.send_direct(db, event_key="legal:7", channel="email", kind="legal_document",
                           payload={"title": "法律文书送达", "lines": ["案号 (2026)粤13民初1号"], "url": None},
                           address=" Li.Ming@Example.COM ", keys=KEYS)
    b = outbox.send_direct(db, event_key="legal:7", channel="email", kind="legal_document",
                           payload={"title": "法律文书送达"}, address="li.ming@example.com", keys=KEYS)
    assert a.id == b.id and count(db, OutboxMessage) == before + 1
    assert a.channels == ["email"] and a.state == OutboxState.pending
    assert a.address_masked == "l***@example.com"
    assert b"li.ming" not in a.address_sealed and "li.ming" not in a.dedupe_key
    assert KEYS.unseal(a.address_sealed, bound_to=f"outbox:{a.dedupe_key}".encode()) == b"li.ming@example.com"
    # Another channel or another event is another message.
    c = outbox.send_direct(db, event_key="legal:7", channel="sms", kind="legal_document",
                           payload={"title": "法律文书送达"}, address="+86 138-0013-8000", keys=KEYS)
    assert c.id != a.id and c.address_masked == "138****8000"


def test_send_direct_takes_keys_from_the_session(db):
    db.info["xinma.keys"] = KEYS
    try:
        m = outbox.send_direct(db, event_key="e1", channel="sms", kind="legal_document",
                               payload={"title": "t"}, address="13800138000")
    finally:
        del db.info["xinma.keys"]
    assert m.address_masked == "138****8000"


def test_send_direct_to_an_account(db, citizen):
    m = outbox.send_direct(db, event_key="legal:8", channel="template", kind="legal_document",
                           payload={"title": "t"}, account_id=citizen.id)
    assert m.account_id == citizen.id and m.address_sealed is None and m.channel == Channel.template
    with pytest.raises(ValueError):
        outbox.send_direct(db, event_key="legal:8", channel="subscribe", kind="legal_document",
                           payload={"title": "t"}, address="13800138000", keys=KEYS)
    with pytest.raises(ValueError):
        outbox.send_direct(db, event_key="legal:8", channel="carrier-pigeon", kind="legal_document",
                           payload={"title": "t"}, account_id=citizen.id)


@pytest.mark.parametrize("channel,address,code", [
    ("email", "not-an-address", "bad_email"), ("email", "a@b", "bad_email"), ("email", "a@b.cn\r\nBcc: x@y.cn", "bad_email"),
    ("sms", "12345", "bad_mobile"), ("sms", "1380013800a", "bad_mobile"), ("sms", "23800138000", "bad_mobile"),
])
def test_send_direct_refuses_bad_addresses(db, channel, address, code):
    before = count(db, OutboxMessage)
    with pytest.raises(DomainError) as e:
        outbox.send_direct(db, event_key="x", channel=channel, kind="legal_document", payload={"title": "t"},
                           address=address, keys=KEYS)
    assert e.value.code == code and count(db, OutboxMessage) == before


def test_on_outcome_registers_once():
    def hook(session, message, outcome, attempt):
        pass
    outbox.on_outcome("test_kind_register")(hook)
    outbox.on_outcome("test_kind_register")(hook)
    assert outbox._HOOKS["test_kind_register"] == [hook]
    del outbox._HOOKS["test_kind_register"]


# --- contact points ---

def test_contact_point_is_sealed_masked_hashed_with_consent(db, citizen):
    p = contacts.set_contact(db, KEYS, citizen, "email", "Chen.ZhiMing@example.com", consent=True)
    assert p.address_masked == "c***@example.com" and p.consent_text == contacts.CONSENT_TEXT[p.kind]
    assert p.consent_at is not None and len(p.address_hash) == 64
    assert contacts.unseal(KEYS, p) == "chen.zhiming@example.com"
    # Replacing keeps one per kind.
    q = contacts.set_contact(db, KEYS, citizen, "email", "other@example.com", consent=True)
    assert q.id == p.id and contacts.unseal(KEYS, q) == "other@example.com"
    assert count(db, ContactPoint) == 1


def test_contact_point_needs_consent_and_a_good_address(db, citizen):
    for kind, address, consent, code in [("email", "x@example.com", False, "consent_required"),
                                         ("fax", "x@example.com", True, "bad_contact_kind"),
                                         ("mobile", "110", True, "bad_mobile")]:
        with pytest.raises(DomainError) as e:
            contacts.set_contact(db, KEYS, citizen, kind, address, consent=consent)
        assert e.value.code == code
    assert count(db, ContactPoint) == 0


def test_a_sealed_contact_cannot_be_moved_to_another_account(db, citizen):
    other = create_account(db, "other-person")
    p = contacts.set_contact(db, KEYS, citizen, "mobile", "13800138000", consent=True)
    p.account_id = other.id
    with pytest.raises(Exception):  # noqa: B017 - AES-GCM's InvalidTag: the blob is bound to its account
        contacts.unseal(KEYS, p)


def test_remove_contact_only_ones_own(db, citizen):
    other = create_account(db, "other-person")
    p = contacts.set_contact(db, KEYS, citizen, "mobile", "13800138000", consent=True)
    with pytest.raises(DomainError) as e:
        contacts.remove_contact(db, other, p.id)
    assert e.value.code == "contact_not_found"
    contacts.remove_contact(db, citizen, p.id)
    assert db.scalar(select(ContactPoint).where(ContactPoint.id == p.id)) is None


# --- reading notices ---

def test_notices_of_own_subject_and_agented_enterprises_only(db):
    person = create_subject(db)
    firm = create_subject(db, kind="enterprise")
    stranger = create_subject(db)
    citizen = create_account(db, "p1", subject=person)
    from handlers import accounts
    accounts.grant(db, citizen, Role.enterprise_agent, subject_id=firm.id)
    db.flush()
    db.refresh(citizen)
    mine = outbox.notify(db, person.id, "redemption", "已核销", {})
    firms = outbox.notify(db, firm.id, "offer_matched", "政策匹配", {})
    outbox.notify(db, stranger.id, "redemption", "别人的", {})
    seen = db.scalars(outbox.notices_query(citizen)).all()
    assert {n.id for n in seen} == {mine.id, firms.id}
    assert outbox.unread_count(db, citizen) == 2
    outbox.mark_read(db, citizen, firms.id)
    assert outbox.unread_count(db, citizen) == 1
    first = db.get(Notice, firms.id).read_at
    outbox.mark_read(db, citizen, firms.id)
    assert db.get(Notice, firms.id).read_at == first
    with pytest.raises(DomainError) as e:
        outbox.mark_read(db, citizen, db.scalar(select(Notice.id).where(Notice.subject_id == stranger.id)))
    assert e.value.code == "notice_not_found"
