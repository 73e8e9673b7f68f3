"""Service-address commitments (送达地址承诺): an enterprise's agents commit, change (a new version) or revoke.

An address is a named agent's WeChat (the account), an e-mail address or a mobile number; e-mails and
mobiles are kept sealed (bound to their commitment and position), masked for display and as a keyed
hash, never in clear. Consent is to the exact text CONSENT_TEXTS[version], whose SHA-256 the agent's
client must send back; the commitment, and every change and revocation, is an evidence entry.
"""
from __future__ import annotations

import hashlib
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import contacts, evidence, timeutil
from .errors import DomainError
from .models import (
    Account, CommitmentStatus, ContactKind, Role, RoleGrant, ServiceAddress, ServiceChannel, ServiceCommitment,
    Status,
)
from .privacy import Keys

log = logging.getLogger("xinma.audit")

# The texts agents agree to, word for word, by version. Never edit a published text: add a version.
# (tests/handlers/test_documents_commitment.py pins each text's SHA-256.)
CONSENT_TEXTS: dict[str, str] = {
    "2026-11": (
        "本企业确认以下电子送达地址（经办人微信、电子邮箱、手机号码）真实、有效，并同意人民法院及行政机关通过"
        "信码平台向上述地址电子送达法律文书。文书到达上述任一地址之日，或本企业经办人查阅、签收文书之日（以"
        "在先者为准），视为送达。本企业承诺及时查收，地址变更时及时更新；因地址不实、失效或拒不查收导致文书"
        "未能被实际接收的，由本企业承担相应法律后果，承诺的履行情况将记入本企业信用记录。本承诺可随时变更或撤回，"
        "变更、撤回前已送达的文书不受影响。"
    ),
}
CURRENT_CONSENT = "2026-11"
MAX_ADDRESSES = 10  # per commitment, all channels together


def consent_hash(version: str) -> str:
    return hashlib.sha256(CONSENT_TEXTS[version].encode()).hexdigest()


def consent(version: str = CURRENT_CONSENT) -> dict:
    """The text to show before committing, with what the client must send back to agree to it."""
    return {"version": version, "text": CONSENT_TEXTS[version], "sha256": consent_hash(version)}


# --- reading -------------------------------------------------------------------------------------

def require_agent(account: Account, subject_id: int) -> None:
    """Only the enterprise's own agents; anyone else learns nothing, not even that the subject exists."""
    if not account.has_role(Role.enterprise_agent, subject_id=subject_id):
        raise DomainError("subject_not_found")


def active(session: Session, subject_id: int, *, lock: bool = False) -> ServiceCommitment | None:
    q = select(ServiceCommitment).where(ServiceCommitment.subject_id == subject_id,
                                        ServiceCommitment.status == CommitmentStatus.active)
    return session.scalar(q.with_for_update() if lock else q)


def latest(session: Session, subject_id: int) -> ServiceCommitment | None:
    return session.scalar(select(ServiceCommitment).where(ServiceCommitment.subject_id == subject_id)
                          .order_by(ServiceCommitment.version.desc()).limit(1))


def history(session: Session, subject_id: int) -> list[ServiceCommitment]:
    return list(session.scalars(select(ServiceCommitment).where(ServiceCommitment.subject_id == subject_id)
                                .order_by(ServiceCommitment.version.desc())))


def addresses(session: Session, commitment_id: int) -> list[ServiceAddress]:
    return list(session.scalars(select(ServiceAddress).where(ServiceAddress.commitment_id == commitment_id)
                                .order_by(ServiceAddress.position)))


def in_force(session: Session, subject_id: int) -> ServiceCommitment:
    """The commitment a document can be served under, or an error that tells the issuer why there is none."""
    commitment = active(session, subject_id)
    if commitment is not None:
        return commitment
    last = latest(session, subject_id)
    if last is not None and last.status == CommitmentStatus.revoked:
        raise DomainError("service_address_revoked", detail={"revoked_at": last.ended_at.isoformat()})
    raise DomainError("no_service_address")


def _bound(commitment_id: int, position: int) -> bytes:
    return f"service-address:{commitment_id}:{position}".encode()


def unseal(keys: Keys, address: ServiceAddress) -> str:
    """The clear e-mail or mobile, for the moment of sending only."""
    return keys.unseal(address.address_sealed, bound_to=_bound(address.commitment_id, address.position)).decode()


# --- changing ------------------------------------------------------------------------------------

def _agents(session: Session, subject_id: int, account_ids: list) -> list[Account]:
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in account_ids):
        raise DomainError("not_an_agent")
    found = {a.id: a for a in session.scalars(
        select(Account).join(RoleGrant, RoleGrant.account_id == Account.id)
        .where(Account.id.in_(account_ids), RoleGrant.role == Role.enterprise_agent,
               RoleGrant.subject_id == subject_id))}
    missing = [a for a in account_ids if a not in found or found[a].status != Status.approved]
    if missing:
        raise DomainError("not_an_agent", detail={"account_ids": missing})
    return [found[a] for a in account_ids]


def _wanted(session: Session, keys: Keys, subject_id: int, wechat_account_ids: list, emails: list,
            mobiles: list) -> list[tuple[ServiceChannel, int | None, str | None, str, str]]:
    """(channel, account id, clear address, keyed hash, mask) for each address asked for, checked."""
    for value in (wechat_account_ids, emails, mobiles):
        if not isinstance(value, list):
            raise DomainError("no_service_addresses")
    out = []
    for agent in _agents(session, subject_id, wechat_account_ids):
        out.append((ServiceChannel.wechat, agent.id, None, keys.identifier_hash(f"wechat:{agent.id}"),
                    f"微信：{agent.login}"))
    for channel, kind, values in ((ServiceChannel.email, ContactKind.email, emails),
                                  (ServiceChannel.sms, ContactKind.mobile, mobiles)):
        for raw in values:
            value = contacts.normalise(kind, raw)
            out.append((channel, None, value, contacts.address_hash(keys, kind, value), contacts.mask(kind, value)))
    if not out:
        raise DomainError("no_service_addresses")
    if len(out) > MAX_ADDRESSES:
        raise DomainError("too_many_service_addresses", detail={"max": MAX_ADDRESSES})
    hashes = [h for _, _, _, h, _ in out]
    if len(set(hashes)) != len(hashes):
        raise DomainError("duplicate_service_address")
    return out


def commit(session: Session, keys: Keys, actor: Account, subject_id: int, *, consent_version: str,
           consent_sha256: str, wechat_account_ids: list | None = None, emails: list | None = None,
           mobiles: list | None = None) -> ServiceCommitment:
    """Commit to these addresses: version 1, or a new version that supersedes the one in force."""
    require_agent(actor, subject_id)
    if consent_version not in CONSENT_TEXTS or consent_sha256 != consent_hash(consent_version):
        raise DomainError("consent_mismatch", detail={"version": CURRENT_CONSENT,
                                                      "sha256": consent_hash(CURRENT_CONSENT)})
    if consent_version != CURRENT_CONSENT:
        raise DomainError("consent_outdated", detail={"version": CURRENT_CONSENT})
    wanted = _wanted(session, keys, subject_id, wechat_account_ids or [], emails or [], mobiles or [])
    now = timeutil.now()
    previous = active(session, subject_id, lock=True)
    if previous is not None:
        previous.status, previous.ended_at, previous.ended_by_id = CommitmentStatus.superseded, now, actor.id
        session.flush()  # the one-active index must see the old row gone before the new one arrives
    version = (session.scalar(select(func.max(ServiceCommitment.version))
                              .where(ServiceCommitment.subject_id == subject_id)) or 0) + 1
    commitment = ServiceCommitment(subject_id=subject_id, version=version, status=CommitmentStatus.active,
                                   committed_by_id=actor.id, consent_version=consent_version,
                                   consent_sha256=consent_sha256, consented_at=now)
    session.add(commitment)
    session.flush()
    rows = []
    for position, (channel, account_id, value, hashed, masked) in enumerate(wanted, 1):
        rows.append(ServiceAddress(
            commitment_id=commitment.id, position=position, channel=channel, account_id=account_id,
            address_sealed=keys.seal(value.encode(), bound_to=_bound(commitment.id, position)) if value else None,
            address_hash=hashed, address_masked=masked))
    session.add_all(rows)
    session.flush()
    entry = evidence.append(session, "address_committed", actor=evidence.actor_of(actor), subject_id=subject_id,
                            at=now, payload={
                                "commitment_id": commitment.id, "version": version,
                                "supersedes": previous.version if previous is not None else None,
                                "consent_version": consent_version, "consent_sha256": consent_sha256,
                                "addresses": [{"position": a.position, "channel": a.channel.value,
                                               "address": a.address_masked, "address_hash": a.address_hash}
                                              for a in rows]})
    commitment.evidence_seq = entry.seq
    session.flush()
    log.info("service address committed", extra={"subject_id": subject_id, "version": version, "by": actor.id})
    return commitment


def revoke(session: Session, actor: Account, subject_id: int) -> ServiceCommitment:
    """Withdraw the commitment in force; documents served before stay served."""
    require_agent(actor, subject_id)
    commitment = active(session, subject_id, lock=True)
    if commitment is None:
        raise DomainError("no_service_address")
    now = timeutil.now()
    commitment.status, commitment.ended_at, commitment.ended_by_id = CommitmentStatus.revoked, now, actor.id
    session.flush()
    evidence.append(session, "address_revoked", actor=evidence.actor_of(actor), subject_id=subject_id, at=now,
                    payload={"commitment_id": commitment.id, "version": commitment.version})
    log.info("service address revoked", extra={"subject_id": subject_id, "version": commitment.version,
                                               "by": actor.id})
    return commitment


# --- the demo ------------------------------------------------------------------------------------

DEMO_ENTERPRISE_LOGIN = "enterprise-a"   # its agent commits; the demo court (login "court") serves on it
DEMO_EMAIL = "legal@pengcheng-demo.example"
DEMO_MOBILE = "13800138000"


def seed_demo(session: Session, keys: Keys, world) -> ServiceCommitment | None:
    """enterprise-a's agent commits its WeChat, an e-mail and a mobile (invented), once.

    The court needs nothing more: it is an approved department and its login is its org_admin, an issuer."""
    agent = world.accounts.get(DEMO_ENTERPRISE_LOGIN)
    subject_id = next((g.subject_id for g in agent.grants if g.role == Role.enterprise_agent), None) if agent else None
    if subject_id is None or latest(session, subject_id) is not None:
        return None
    return commit(session, keys, agent, subject_id, consent_version=CURRENT_CONSENT,
                  consent_sha256=consent_hash(CURRENT_CONSENT), wechat_account_ids=[agent.id], emails=[DEMO_EMAIL],
                  mobiles=[DEMO_MOBILE])
