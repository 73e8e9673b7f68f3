"""Keyed hashes, name encryption and display masks: what keeps identifiers and names out of the database in clear."""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"xinma", info=label).derive(secret)


@dataclass(frozen=True)
class Keys:
    """Data keys, derived from the server secret so one setting protects them all."""

    lookup: bytes
    names: bytes
    sealing: bytes

    @classmethod
    def from_secret(cls, secret: str | bytes) -> "Keys":
        raw = secret.encode() if isinstance(secret, str) else secret
        return cls(lookup=_derive(raw, b"lookup-hash v1"), names=_derive(raw, b"name-encryption v1"),
                   sealing=_derive(raw, b"secret-sealing v1"))

    def seal(self, secret: bytes, *, bound_to: bytes) -> bytes:
        """AES-GCM for secrets kept in the database (signing keys)."""
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self.sealing).encrypt(nonce, secret, bound_to)

    def unseal(self, blob: bytes, *, bound_to: bytes) -> bytes:
        return AESGCM(self.sealing).decrypt(blob[:_NONCE], blob[_NONCE:], bound_to)

    def identifier_hash(self, identifier: str) -> str:
        """HMAC-SHA256 of a normalised identifier: the only form in which it is stored or looked up."""
        return hmac.new(self.lookup, identifier.encode(), hashlib.sha256).hexdigest()

    def hasher(self):
        """A fast hash function for bulk work: the keyed state is prepared once and copied per call."""
        base = hmac.new(self.lookup, digestmod=hashlib.sha256)

        def h(identifier: str) -> str:
            m = base.copy()
            m.update(identifier.encode())
            return m.hexdigest()

        return h

    def encrypt_name(self, name: str, *, bound_to: str) -> bytes:
        """AES-GCM; the associated data ties the ciphertext to its row, so names cannot be swapped between rows."""
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self.names).encrypt(nonce, name.encode(), bound_to.encode())

    def decrypt_name(self, blob: bytes, *, bound_to: str) -> str:
        return AESGCM(self.names).decrypt(blob[:_NONCE], blob[_NONCE:], bound_to.encode()).decode()


def mask_name(name: str, *, person: bool = True) -> str:
    """张*明 for a person; 惠州**有限公司 for an organisation."""
    name = name.strip()
    if person:
        if len(name) <= 1:
            return "*"
        if len(name) == 2:
            return name[0] + "*"
        return name[0] + "*" * (len(name) - 2) + name[-1]
    if len(name) <= 4:
        return name[0] + "*" * (len(name) - 1)
    keep_tail = min(4, len(name) - 3)
    return name[:2] + "**" + name[-keep_tail:]
