"""What the bot answers: plain values the webhook turns into WeChat's reply XML (and stores for retries)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Text:
    content: str
    type: str = "text"


@dataclass(frozen=True)
class Image:
    media_id: str
    type: str = "image"


@dataclass(frozen=True)
class Card:
    """A link card (one article)."""
    title: str
    description: str
    url: str
    image: str = ""
    type: str = "news"


@dataclass(frozen=True)
class NoReply:
    """Nothing to say: WeChat is answered ``success``."""
    type: str = "none"


Reply = Text | Image | Card | NoReply


def as_dict(reply: Reply) -> dict:
    return asdict(reply)


def from_dict(data: dict) -> Reply:
    kind = {"text": Text, "image": Image, "news": Card, "none": NoReply}[data["type"]]
    return kind(**data)
