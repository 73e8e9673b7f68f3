"""Resident ID numbers (GB 11643) and unified social credit codes (GB 32100): validation and test generators."""
from __future__ import annotations

import random
import re
from datetime import date

from .errors import DomainError

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# GB 32100 uses 31 characters: the digits and the capitals without I, O, Z, S and V.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_CHARS)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")
_ID_RE = re.compile(r"[1-9][0-9]{16}[0-9X]")


def resident_id_check(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


def credit_code_check(first17: str) -> str:
    remainder = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS)) % 31
    return _USCC_CHARS[(31 - remainder) % 31]


def normalise_resident_id(value: str) -> str:
    """Return the canonical form of an 18-digit resident ID number or raise DomainError."""
    s = value.strip().upper() if isinstance(value, str) else ""
    if not _ID_RE.fullmatch(s):
        raise DomainError("bad_identifier")
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise DomainError("bad_identifier", "身份证号码中的出生日期无效") from None
    if resident_id_check(s[:17]) != s[17]:
        raise DomainError("bad_check_digit")
    return s


def normalise_credit_code(value: str) -> str:
    """Return the canonical form of an 18-character unified social credit code or raise DomainError."""
    s = value.strip().upper() if isinstance(value, str) else ""
    if not _USCC_RE.fullmatch(s):
        raise DomainError("bad_identifier")
    if credit_code_check(s[:17]) != s[17]:
        raise DomainError("bad_check_digit")
    return s


def normalise(kind: str, value: str) -> str:
    """Validate the identifier a subject of ``kind`` must carry."""
    if kind == "person":
        return normalise_resident_id(value)
    if kind in ("enterprise", "institution"):
        return normalise_credit_code(value)
    raise DomainError("bad_subject_kind")


def guess_kind(value: str) -> str:
    """Person or organisation, from the identifier's shape alone (for look-ups that do not say)."""
    s = value.strip().upper() if isinstance(value, str) else ""
    return "person" if _ID_RE.fullmatch(s) else "enterprise"


def mask(identifier: str) -> str:
    """4413**********123X: enough for a person to recognise their own, too little to reuse."""
    return identifier[:4] + "*" * (len(identifier) - 8) + identifier[-4:]


# --- generators for tests, the demo and benchmarks ------------------------------------------------

def make_resident_id(rng: random.Random | None = None, *, region: str = "441302",
                     born: date | None = None) -> str:
    rng = rng or random.Random()
    born = born or date(1950, 1, 1).fromordinal(date(1950, 1, 1).toordinal() + rng.randrange(0, 20000))
    first17 = f"{region}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + resident_id_check(first17)


def make_credit_code(rng: random.Random | None = None, *, region: str = "441302",
                     department: str = "9", category: str = "1") -> str:
    rng = rng or random.Random()
    body = "".join(rng.choice(_USCC_CHARS[:10] + "ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    first17 = f"{department}{category}{region}{body}"
    return first17 + credit_code_check(first17)
