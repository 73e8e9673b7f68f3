"""Input rules every operation shares: free text, enumerations and dates, each failing with a stable code."""
from __future__ import annotations

import enum
from datetime import date
from typing import TypeVar

from . import timeutil
from .errors import DomainError

E = TypeVar("E", bound=enum.Enum)


def text(value: object, field: str, *, max_length: int, required: bool = True) -> str | None:
    """Stripped text within ``max_length``; empty is None when not required. Fails with bad_text naming the field."""
    if value is None and not required:
        return None
    s = value.strip() if isinstance(value, str) else None
    if s is None or len(s) > max_length or (required and not s):
        raise DomainError("bad_text", detail={"field": field, "max_length": max_length})
    return s or None


def choice(cls: type[E], value: object, code: str, *, allowed: tuple[E, ...] | None = None) -> E:
    """The member of ``cls`` named by ``value`` (optionally one of ``allowed``), else DomainError(code)."""
    try:
        member = value if isinstance(value, cls) else cls(value)
    except ValueError:
        raise DomainError(code) from None
    if allowed is not None and member not in allowed:
        raise DomainError(code)
    return member


def in_order(first: date | None, then: date | None, *fields: str) -> None:
    """``then`` may not be before ``first`` (either may be missing)."""
    if first is not None and then is not None and then < first:
        raise DomainError("dates_out_of_order", detail={"fields": list(fields)} if fields else None)


def today() -> date:
    return timeutil.local_date(timeutil.now())


def not_in_future(day: date, field: str) -> None:
    if day > today():
        raise DomainError("date_in_future", detail={"field": field})
