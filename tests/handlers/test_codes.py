"""The token: round trip, size, every failure reason, and no mutation of a valid token is accepted."""
import time

import pytest
import qrcode
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from handlers import codes
from handlers.codes import CodeError

KEY = SigningKey(b"\x01" * 32)
OTHER = SigningKey(b"\x02" * 32)
KEYS = {7: KEY.verify_key}
NOW = 1_800_000_000


def make(**kw):
    args = dict(colour="green", kind="person", grade=None, not_before=NOW, lifetime=30)
    args.update(kw)
    return codes.issue(kw.pop("key", KEY), kw.pop("kid", 7), b"H" * 8, **{k: v for k, v in args.items()
                                                                         if k not in ("key", "kid")})


def test_round_trip_keeps_every_claim():
    token, claims = make(colour="red", kind="enterprise", grade="B")
    assert codes.verify(token, KEYS, now=NOW + 1) == claims
    assert claims.handle == b"H" * 8 and claims.lifetime == 30


def test_token_is_alphanumeric_and_fits_qr_version_6_at_level_m():
    token, _ = make()
    assert len(token) == codes.MAX_TOKEN_CHARS == 135
    assert set(token) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(token)
    qr.make(fit=True)
    assert qr.version <= 6


def test_nonces_differ():
    assert make()[1].nonce != make()[1].nonce


@pytest.mark.parametrize("now,reason", [
    (NOW - 6, "not_yet_valid"), (NOW - 5, None), (NOW + 34, None), (NOW + 35, "expired"),
])
def test_window_with_skew(now, reason):
    token, _ = make()
    if reason is None:
        codes.verify(token, KEYS, now=now)
    else:
        with pytest.raises(CodeError) as e:
            codes.verify(token, KEYS, now=now)
        assert e.value.code == reason


def test_unknown_key_and_wrong_key():
    token, _ = codes.issue(OTHER, 8, b"H" * 8, colour="green", kind="person", grade=None, not_before=NOW, lifetime=30)
    with pytest.raises(CodeError) as e:
        codes.verify(token, KEYS, now=NOW)
    assert e.value.code == "unknown_key"
    forged, _ = codes.issue(OTHER, 7, b"H" * 8, colour="green", kind="person", grade=None, not_before=NOW, lifetime=30)
    with pytest.raises(CodeError) as e:
        codes.verify(forged, KEYS, now=NOW)
    assert e.value.code == "bad_signature"


@pytest.mark.parametrize("token", ["", "XM:", "hello", "XM:!!!!", "XM:" + "A" * 5000, None, 42,
                                   "XM:" + "00" * 60])
def test_garbage_is_bad_format(token):
    with pytest.raises(CodeError) as e:
        codes.verify(token, KEYS, now=NOW)
    assert e.value.code == "bad_format"


def test_truncated_token_is_bad_format():
    token, _ = make()
    for cut in (1, 2, 3, 10, 60):
        with pytest.raises(CodeError) as e:
            codes.verify(token[:-cut], KEYS, now=NOW)
        assert e.value.code == "bad_format"


def test_trailing_newline_from_a_scanner_is_tolerated():
    token, claims = make()
    assert codes.verify(token + "\r\n", KEYS, now=NOW) == claims


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_no_mutation_of_a_valid_token_is_accepted(data):
    token, claims = make()
    raw = bytearray(codes.base45.b45decode(token[3:]))
    kind = data.draw(st.sampled_from(["flip", "replace_char", "splice"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        bit = data.draw(st.integers(0, 7))
        raw[i] ^= 1 << bit
        mutated = "XM:" + codes.base45.b45encode(bytes(raw)).decode()
    elif kind == "replace_char":
        i = data.draw(st.integers(3, len(token) - 1))
        c = data.draw(st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"))
        mutated = token[:i] + c + token[i + 1:]
    else:
        i = data.draw(st.integers(0, len(token)))
        extra = data.draw(st.text(alphabet="0123456789ABCXYZ $%:", min_size=1, max_size=6))
        mutated = token[:i] + extra + token[i:]
    if mutated == token:
        return
    with pytest.raises(CodeError):
        codes.verify(mutated, KEYS, now=NOW)


def test_real_clock_smoke():
    token, _ = codes.issue(KEY, 7, b"x" * 8, colour="blue", kind="person", grade=None,
                           not_before=int(time.time()), lifetime=30)
    assert codes.verify(token, KEYS, now=time.time()).colour == "blue"
