"""Pages of a list: a bounded slice of an ordered query and the total it was cut from."""
from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(NamedTuple):
    items: list[Any]
    total: int
    limit: int
    offset: int


def page(session: Session, query: Select, *, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page:
    """``query`` must be ordered, or pages would overlap; the limit is clamped to MAX_LIMIT."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(session.scalars(query.limit(limit).offset(offset)))
    return Page(items, total or 0, limit, offset)
