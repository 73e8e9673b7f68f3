"""Time: instants are UTC; calendar dates (record dates, quota periods) are Asia/Shanghai dates."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(timezone.utc)


def local_date(at: datetime) -> date:
    return at.astimezone(LOCAL).date()


def start_of(day: date) -> datetime:
    """The instant a local calendar day begins, in UTC."""
    return datetime.combine(day, time(0), LOCAL).astimezone(timezone.utc)


def aware(at: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=timezone.utc)
