"""Signing keys, subject handles and issuing tokens: the database side of dynamic codes."""
from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nacl.signing import SigningKey as NaclSigningKey
from nacl.signing import VerifyKey
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import codes, colours, timeutil
from .errors import DomainError
from .models import CodeHandle, SigningKey, Subject
from .privacy import Keys

WINDOW = 30               # seconds a token is valid
SKEW = 5                  # clock tolerance, seconds
MAX_BATCH_SECONDS = 600   # an offline phone keeps up to ten minutes of codes
KEYRING_TTL = 60          # seconds a process trusts its cached keys before looking again


def _bound(kid: int) -> bytes:
    return f"signing-key {kid}".encode()


def create_key(session: Session, keys: Keys) -> SigningKey:
    """Add a new key; it signs from now on. Older active keys are retired (they keep verifying)."""
    now = timeutil.now()
    kid = (session.scalar(select(func.max(SigningKey.kid))) or 0) + 1
    seed = NaclSigningKey.generate()
    # A retired key must verify the last token it signed: that is at most a full offline batch ahead,
    # signed by a process whose KeyRing still holds this key as its signer for up to KEYRING_TTL.
    horizon = now + timedelta(seconds=KEYRING_TTL + MAX_BATCH_SECONDS + WINDOW + SKEW)
    session.execute(update(SigningKey).where(SigningKey.retired_at.is_(None))
                    .values(retired_at=now, verify_until=horizon))
    row = SigningKey(kid=kid, public_key=bytes(seed.verify_key),
                     private_key_sealed=keys.seal(bytes(seed), bound_to=_bound(kid)), created_at=now)
    session.add(row)
    session.flush()
    return row


@dataclass
class KeyRing:
    """The process's view of the keys: verify keys by kid, and the active signing key.

    Cached for KEYRING_TTL seconds; an unknown kid triggers an early reload, so a key rotated by
    another process is seen at once by verifiers.
    """

    keys: Keys
    ttl: float = KEYRING_TTL
    _verify: dict[int, VerifyKey] = field(default_factory=dict)
    _signer: tuple[int, NaclSigningKey] | None = None
    _loaded_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, session: Session) -> None:
        now = timeutil.now()
        rows = session.scalars(select(SigningKey).where(
            (SigningKey.verify_until.is_(None)) | (SigningKey.verify_until > now))).all()
        verify = {r.kid: VerifyKey(r.public_key) for r in rows}
        active = max((r for r in rows if r.retired_at is None), key=lambda r: r.kid, default=None)
        signer = None
        if active is not None:
            signer = (active.kid, NaclSigningKey(self.keys.unseal(active.private_key_sealed,
                                                                  bound_to=_bound(active.kid))))
        with self._lock:
            self._verify, self._signer, self._loaded_at = verify, signer, time.monotonic()

    def _fresh(self, session: Session) -> None:
        if time.monotonic() - self._loaded_at > self.ttl:
            self.load(session)

    def verify_keys(self, session: Session, kid: int | None = None) -> dict[int, VerifyKey]:
        self._fresh(session)
        if kid is not None and kid not in self._verify and time.monotonic() - self._loaded_at > 1:
            self.load(session)
        return self._verify

    def signer(self, session: Session) -> tuple[int, NaclSigningKey]:
        self._fresh(session)
        if self._signer is None:
            try:
                with session.begin_nested():
                    create_key(session, self.keys)
            except IntegrityError:  # another process created the first key at the same moment
                pass
            self.load(session)
        assert self._signer is not None
        return self._signer

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")


def jwks(session: Session) -> list[dict]:
    """Public keys as JWK (RFC 8037), with their validity, for offline verifiers."""
    now = timeutil.now()
    rows = session.scalars(select(SigningKey).where(
        (SigningKey.verify_until.is_(None)) | (SigningKey.verify_until > now)).order_by(SigningKey.kid))
    return [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": str(r.kid),
        "x": base64.urlsafe_b64encode(r.public_key).rstrip(b"=").decode(),
        "status": "active" if r.retired_at is None else "retired",
        "created_at": r.created_at.isoformat(),
        "verify_until": r.verify_until.isoformat() if r.verify_until else None,
    } for r in rows]


# --- handles --------------------------------------------------------------------------------------

def live_handle(session: Session, subject: Subject) -> CodeHandle:
    handle = session.scalar(select(CodeHandle).where(CodeHandle.subject_id == subject.id,
                                                     CodeHandle.revoked_at.is_(None)))
    if handle is None:
        handle = CodeHandle(handle=os.urandom(8), subject_id=subject.id)
        session.add(handle)
        session.flush()
    return handle


def rotate_handle(session: Session, subject: Subject) -> CodeHandle:
    """Revoke every outstanding token of the subject at once (lost phone, compromise)."""
    session.execute(update(CodeHandle).where(CodeHandle.subject_id == subject.id, CodeHandle.revoked_at.is_(None))
                    .values(revoked_at=timeutil.now()))
    handle = CodeHandle(handle=os.urandom(8), subject_id=subject.id)
    session.add(handle)
    session.flush()
    return handle


# --- issuing --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedCode:
    token: str
    valid_from: datetime
    valid_until: datetime


def issue_codes(session: Session, ring: KeyRing, subject: Subject, *, count: int = 1,
                window: int = WINDOW, at: datetime | None = None) -> list[IssuedCode]:
    """Tokens for ``count`` consecutive windows starting with the current one."""
    if not 1 <= count or count * window > MAX_BATCH_SECONDS:
        raise DomainError("bad_batch", detail={"max": MAX_BATCH_SECONDS // window})
    at = at or timeutil.now()
    kid, key = ring.signer(session)
    handle = live_handle(session, subject).handle
    colour = colours.colour(session, subject, at).value
    grade = subject.grade.value if subject.grade else None
    start = int(at.timestamp()) // window * window
    out = []
    for i in range(count):
        nb = start + i * window
        token, claims = codes.issue(key, kid, handle, colour=colour, kind=subject.kind.value, grade=grade,
                                    not_before=nb, lifetime=window)
        out.append(IssuedCode(token, claims.valid_from(), claims.valid_until()))
    return out
