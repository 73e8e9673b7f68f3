"""Service-address commitments (送达地址承诺): versions, revocation, history, consent, sealing, and who may commit."""
import hashlib

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from handlers import evidence, service_address
from handlers.errors import DomainError
from handlers.models import (
    CommitmentStatus, EvidenceEntry, Role, ServiceAddress, ServiceCommitment, Status,
)

from ..conftest import KEYS, count, create_account
from ..documents_support import commit, enterprise

# A published consent text must never change: its hash is what agents agreed to. Add a version instead.
PINNED = {"2026-11": "ef8a3ddd564cdc179108280cb8730c8f92e6aa6aa7470e0206adab8492efcd4c"}


def test_consent_texts_are_pinned():
    now = {version: hashlib.sha256(t.encode()).hexdigest() for version, t in service_address.CONSENT_TEXTS.items()}
    assert now == PINNED
    assert service_address.consent()["sha256"] == PINNED[service_address.CURRENT_CONSENT]


def test_commit_seals_masks_and_records_evidence(db):
    subject, (agent,) = enterprise(db)
    c = commit(db, agent, subject, emails=["Legal@PengCheng.Example"], mobiles=["+86 138-0013-8000"])
    assert (c.version, c.status, c.committed_by_id) == (1, CommitmentStatus.active, agent.id)
    assert c.consent_sha256 == service_address.consent_hash(service_address.CURRENT_CONSENT)
    addresses = service_address.addresses(db, c.id)
    assert [(a.channel.value, a.address_masked) for a in addresses] == [
        ("wechat", f"微信：{agent.login}"), ("email", "l***@pengcheng.example"), ("sms", "138****8000")]
    assert addresses[0].account_id == agent.id and addresses[0].address_sealed is None
    # Never in clear: the sealed blobs open only with the keys and only for their own row.
    assert [service_address.unseal(KEYS, a) for a in addresses[1:]] == ["legal@pengcheng.example", "13800138000"]
    for a in addresses[1:]:
        assert b"pengcheng" not in a.address_sealed and b"13800138000" not in a.address_sealed
    with pytest.raises(InvalidTag):
        KEYS.unseal(addresses[1].address_sealed, bound_to=b"service-address:%d:%d" % (c.id, 3))
    entry = db.get(EvidenceEntry, c.evidence_seq)
    assert (entry.event, entry.subject_id, entry.actor) == ("address_committed", subject.id, f"account:{agent.id}")
    assert entry.payload["consent_sha256"] == c.consent_sha256
    assert [a["address"] for a in entry.payload["addresses"]] == [a.address_masked for a in addresses]
    assert "13800138000" not in str(entry.payload) and "legal@" not in str(entry.payload)


def test_a_change_is_a_new_version_and_the_history_stays(db):
    subject, (agent, other) = enterprise(db, agents=2)
    first = commit(db, agent, subject)
    second = commit(db, other, subject, wechat=False, emails=["new@pengcheng.example"], mobiles=[])
    assert second.version == 2 and second.status == CommitmentStatus.active
    db.refresh(first)
    assert first.status == CommitmentStatus.superseded and first.ended_by_id == other.id and first.ended_at
    assert [c.version for c in service_address.history(db, subject.id)] == [2, 1]
    assert len(service_address.addresses(db, first.id)) == 3  # the old addresses are kept with their version
    assert service_address.active(db, subject.id).id == second.id
    payload = db.get(EvidenceEntry, second.evidence_seq).payload
    assert payload["supersedes"] == 1 and payload["version"] == 2


def test_revoke_and_serve_tells_why(db):
    subject, (agent,) = enterprise(db)
    with pytest.raises(DomainError) as e:
        service_address.in_force(db, subject.id)
    assert e.value.code == "no_service_address"
    commit(db, agent, subject)
    revoked = service_address.revoke(db, agent, subject.id)
    assert revoked.status == CommitmentStatus.revoked and revoked.ended_by_id == agent.id
    with pytest.raises(DomainError) as e:
        service_address.in_force(db, subject.id)
    assert e.value.code == "service_address_revoked" and "revoked_at" in e.value.detail
    with pytest.raises(DomainError) as e:
        service_address.revoke(db, agent, subject.id)
    assert e.value.code == "no_service_address"
    last = db.scalar(select(EvidenceEntry).order_by(EvidenceEntry.seq.desc()).limit(1))
    assert (last.event, last.payload["version"]) == ("address_revoked", 1)
    assert commit(db, agent, subject).version == 2  # committing again after a revocation


@pytest.mark.parametrize("kw, code", [
    ({"wechat": False, "emails": [], "mobiles": []}, "no_service_addresses"),
    ({"emails": ["not-an-address"]}, "bad_email"),
    ({"mobiles": ["12345"]}, "bad_mobile"),
    ({"emails": ["a@pengcheng.example", "A@PENGCHENG.EXAMPLE"]}, "duplicate_service_address"),
    ({"emails": [f"a{i}@pengcheng.example" for i in range(10)]}, "too_many_service_addresses"),
])
def test_bad_addresses_write_nothing(db, kw, code):
    subject, (agent,) = enterprise(db)
    before = count(db, ServiceCommitment), count(db, ServiceAddress), count(db, EvidenceEntry)
    with pytest.raises(DomainError) as e:
        commit(db, agent, subject, **kw)
    assert e.value.code == code
    assert (count(db, ServiceCommitment), count(db, ServiceAddress), count(db, EvidenceEntry)) == before


def test_wechat_addresses_must_be_approved_agents_of_this_enterprise(db):
    subject, (agent,) = enterprise(db)
    _other_subject, (stranger,) = enterprise(db)
    pending = create_account(db, role=Role.enterprise_agent, subject=subject, status=Status.pending)
    for account_id in (stranger.id, pending.id, 10**9):
        with pytest.raises(DomainError) as e:
            service_address.commit(db, KEYS, agent, subject.id, consent_version=service_address.CURRENT_CONSENT,
                                   consent_sha256=service_address.consent_hash(service_address.CURRENT_CONSENT),
                                   wechat_account_ids=[account_id])
        assert (e.value.code, e.value.detail["account_ids"]) == ("not_an_agent", [account_id])


def test_consent_must_be_the_current_text(db):
    subject, (agent,) = enterprise(db)
    for version, sha in (("2026-11", "0" * 64), ("1999-01", "0" * 64)):
        with pytest.raises(DomainError) as e:
            service_address.commit(db, KEYS, agent, subject.id, consent_version=version, consent_sha256=sha,
                                   emails=["a@pengcheng.example"])
        assert e.value.code == "consent_mismatch"
        assert e.value.detail["sha256"] == service_address.consent_hash(service_address.CURRENT_CONSENT)


def test_only_the_enterprises_agents_may_commit_or_revoke(db, citizen, platform_admin):
    subject, (_agent,) = enterprise(db)
    _, (stranger,) = enterprise(db)
    for actor in (stranger, citizen, platform_admin):
        with pytest.raises(DomainError) as e:
            commit(db, actor, subject, wechat=False)
        assert e.value.code == "subject_not_found"
        with pytest.raises(DomainError) as e:
            service_address.revoke(db, actor, subject.id)
        assert e.value.code == "subject_not_found"


def test_the_chain_holds_after_commitments(db):
    subject, (agent,) = enterprise(db)
    commit(db, agent, subject)
    commit(db, agent, subject)
    service_address.revoke(db, agent, subject.id)
    assert evidence.verify(db).ok
