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

import base45  # noqa: F401  (the reference implementation; tests compare the fast path with it)
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

PREFIX = "XM:"
VERSION = 1
_HEAD = struct.Struct(">BH8sBIH6s")  # version, kid, handle, flags, not_before, lifetime, nonce
PAYLOAD_LEN = _HEAD.size             # 24
SIG_LEN = 64
TOKEN_BYTES = PAYLOAD_LEN + SIG_LEN  # 88
MAX_TOKEN_CHARS = len(PREFIX) + TOKEN_BYTES // 2 * 3  # 135: QR version 6 at level M holds 154

# --- Base45 (RFC 9285) for exactly one token's 88 bytes ------------------------------------------
# The generic `base45` package decodes in a Python loop (~25 µs a token, a third of a signature
# check). A token is always 44 triples, so decode them all at once with integer arithmetic:
# translate the characters to their values (0–44), read the 132 values as one little-endian
# integer whose 3-byte lanes are the triples (c0, c1, c2), and form c0 + 45·c1 + 2025·c2 in every
# lane with three masks — no lane overflows 24 bits. A value above 0xFFFF (third byte set) is invalid.
_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE = bytes(_B45.index(chr(i)) if chr(i) in _B45 else 0xFF for i in range(256))
_TRIPLES = TOKEN_BYTES // 2                                        # 44
_LANE0 = int.from_bytes(b"\xff\x00\x00" * _TRIPLES, "little")
_LANE1, _LANE2 = _LANE0 << 8, _LANE0 << 16
_NO_OVERFLOW = bytes(_TRIPLES)
_B45_PAIRS = [_B45[n % 45] + _B45[n // 45] for n in range(45 * 45)]
_WORDS = struct.Struct(f">{_TRIPLES}H")


def b45decode_token(text: str) -> bytes:
    """Base45-decode the 132 characters of a token into its 88 bytes; ValueError if they are not that."""
    if len(text) != _TRIPLES * 3:
        raise ValueError("a token is 132 Base45 characters")
    values = text.encode("ascii").translate(_B45_VALUE)  # UnicodeEncodeError is a ValueError
    if 0xFF in values:
        raise ValueError("not a Base45 character")
    x = int.from_bytes(values, "little")
    lanes = ((x & _LANE0) + ((x & _LANE1) >> 8) * 45 + ((x & _LANE2) >> 16) * 2025).to_bytes(len(values), "little")
    if lanes[2::3] != _NO_OVERFLOW:
        raise ValueError("Base45 triple above 0xFFFF")
    out = bytearray(TOKEN_BYTES)
    out[0::2] = lanes[1::3]  # each triple's value, big-endian: high byte, then low byte
    out[1::2] = lanes[0::3]
    return bytes(out)


def b45encode_token(raw: bytes) -> str:
    """Base45 of an even number of bytes (a token's 88), as RFC 9285 encodes them."""
    words = _WORDS.unpack(raw) if len(raw) == TOKEN_BYTES else struct.unpack(f">{len(raw) // 2}H", raw)
    return "".join([_B45_PAIRS[n % 2025] + _B45[n // 2025] for n in words])


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
    return PREFIX + b45encode_token(payload + key.sign(payload).signature)


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
        raw = b45decode_token(token[len(PREFIX):])
    except ValueError:
        raise CodeError("bad_format") from None
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
