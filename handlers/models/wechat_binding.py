"""Binding codes: how a signed-in account lets the official-account openid that sends the code be bound to it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .. import timeutil
from . import Base


class WeChatBindingCode(Base):
    """A short-lived, single-use code an account asks for (POST /api/v1/me/wechat-binding-code) and then sends to
    the official account as 绑定 <code>: whoever sends it first, before it expires, is bound to that account."""

    __tablename__ = "wechat_binding_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    # HMAC-SHA256 under the lookup key: an 8-character code hashed plainly would fall to brute force from a dump.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    used_by_openid: Mapped[str | None] = mapped_column(String(64))
