"""Dynamic credit codes: the compact signed token a QR code carries (format: docs/code-format.md).

The token says who (an opaque, rotatable handle — never an identifier), what colour the subject
had when it was issued, for which short window it is valid, and a nonce; an Ed25519 signature
makes it unforgeable, so a scanner can check it offline with the published keys. Whether it may
redeem anything is decided online, against the ledger (handlers/redemptions.py).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from datetime import datetime, timezone

import base45
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

PREFIX = "XM:"
VERSION = 1
_HEAD = struct.Struct(">BH8sBIH6s")  # version, kid, handle, flags, not_before, lifetime, nonce
PAYLOAD_LEN = _HEAD.size             # 24
SIG_LEN = 64
TOKEN_BYTES = PAYLOAD_LEN + SIG_LEN  # 88
MAX_TOKEN_CHARS = len(PREFIX) + TOKEN_BYTES // 2 * 3  # 135: QR version 6 at level M holds 154

COLOURS = ("blue", "green", "red")
KINDS = ("person", "enterprise", "institution")
GRADES = (None, "A", "B", "C", "D")


class CodeError(Exception):
    """A token that cannot be trusted; ``code`` is the stable reason (bad_format, bad_signature …)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Claims:
    kid: int
    handle: bytes
    colour: str
    kind: str
    grade: str | None
    not_before: int  # unix seconds
    lifetime: int    # seconds
    nonce: bytes

    @property
    def not_after(self) -> int:
        return self.not_before + self.lifetime

    @property
    def nonce_hex(self) -> str:
        return self.nonce.hex()

    def valid_from(self) -> datetime:
        return datetime.fromtimestamp(self.not_before, timezone.utc)

    def valid_until(self) -> datetime:
        return datetime.fromtimestamp(self.not_after, timezone.utc)


def _flags(colour: str, kind: str, grade: str | None) -> int:
    return COLOURS.index(colour) | KINDS.index(kind) << 2 | GRADES.index(grade) << 4


def encode(claims: Claims, key: SigningKey) -> str:
    payload = _HEAD.pack(VERSION, claims.kid, claims.handle, _flags(claims.colour, claims.kind, claims.grade),
                         claims.not_before, claims.lifetime, claims.nonce)
    return PREFIX + base45.b45encode(payload + key.sign(payload).signature).decode("ascii")


def issue(key: SigningKey, kid: int, handle: bytes, *, colour: str, kind: str, grade: str | None,
          not_before: int, lifetime: int) -> tuple[str, Claims]:
    claims = Claims(kid, handle, colour, kind, grade, not_before, lifetime, os.urandom(6))
    return encode(claims, key), claims


def parse(token: str) -> tuple[Claims, bytes, bytes]:
    """Unpack without trusting: (claims, signed payload, signature). Raises CodeError('bad_format')."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS + 8:
        raise CodeError("bad_format")
    token = token.strip("\r\n\t")  # keyboard-wedge scanners add line ends; a space is Base45 data
    if not token.startswith(PREFIX):
        raise CodeError("bad_format")
    try:
        raw = base45.b45decode(token[len(PREFIX):])
    except (ValueError, KeyError, IndexError, TypeError):
        raise CodeError("bad_format") from None
    if len(raw) != TOKEN_BYTES:
        raise CodeError("bad_format")
    version, kid, handle, flags, not_before, lifetime, nonce = _HEAD.unpack_from(raw)
    if version != VERSION:
        raise CodeError("bad_format")
    colour_i, kind_i, grade_i = flags & 3, flags >> 2 & 3, flags >> 4 & 7
    if colour_i >= len(COLOURS) or kind_i >= len(KINDS) or grade_i >= len(GRADES) or flags & 0x80:
        raise CodeError("bad_format")
    claims = Claims(kid, handle, COLOURS[colour_i], KINDS[kind_i], GRADES[grade_i], not_before, lifetime, nonce)
    return claims, raw[:PAYLOAD_LEN], raw[PAYLOAD_LEN:]


def verify(token: str, keys: dict[int, VerifyKey], *, now: float, skew: int = 5) -> Claims:
    """Check format, key, signature and window. Raises CodeError with the first reason that fails."""
    claims, payload, signature = parse(token)
    key = keys.get(claims.kid)
    if key is None:
        raise CodeError("unknown_key")
    try:
        key.verify(payload, signature)
    except BadSignatureError:
        raise CodeError("bad_signature") from None
    if now < claims.not_before - skew:
        raise CodeError("not_yet_valid")
    if now >= claims.not_after + skew:
        raise CodeError("expired")
    return claims
