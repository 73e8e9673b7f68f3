"""The chat bot: a parsed WeChat message or event in, one reply out, through a command table (no HTTP here)."""
from __future__ import annotations

from .commands import COMMANDS, EVENTS, Context, handle
from .replies import Card, Image, NoReply, Reply, Text

__all__ = ["COMMANDS", "EVENTS", "Card", "Context", "Image", "NoReply", "Reply", "Text", "handle"]
