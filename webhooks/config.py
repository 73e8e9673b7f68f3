"""Settings: XINMA_* environment variables, overridable by the dict given to create_app."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

PREFIX = "XINMA_"

# name -> (default, parser). Defaults that depend on the instance folder are filled in by load().
DEFAULTS: dict[str, tuple[object, type]] = {
    "INSTANCE_PATH": ("instance", str),
    "DATABASE_URL": (None, str),
    "SECRET_KEY": (None, str),
    "REDIS_URL": (None, str),
    "DEMO": (False, bool),
    "LOG_LEVEL": ("INFO", str),
    "MAX_CONTENT_LENGTH": (1024 * 1024, int),
    "SESSION_DAYS": (7, int),
    "RATELIMIT_ENABLED": (True, bool),
    "RATELIMIT_LOGIN": ("10/minute;100/hour", str),
    "RATELIMIT_WRITE": ("300/minute", str),
    "RATELIMIT_SCAN": ("600/minute", str),  # per clerk device: a busy gate, not a runaway loop
    "CODE_WINDOW": (30, int),  # seconds a dynamic code is valid
    "WECHAT_APPID": (None, str),  # the official account
    "WECHAT_SECRET": (None, str),
    "WECHAT_TOKEN": (None, str),  # the webhook's signature token
    "WECHAT_AES_KEY": (None, str),  # EncodingAESKey (43 characters) for safe mode
    "MINIPROGRAM_APPID": (None, str),
    "MINIPROGRAM_SECRET": (None, str),
    "WECHAT_API_BASE": (None, str),  # unset: https://api.weixin.qq.com; the emulator's address otherwise
    "WECHAT_TIMEOUT": (5.0, float),  # seconds, for every call to WeChat including the token fetch
    "WECHAT_CODE_URL": (None, str),  # the page showing my code: the chat's link card when an image fails
    "WECHAT_INBOUND_KEEP_HOURS": (24.0, float),  # replies kept for WeChat's retries (it retries within 15 s)
    "RATELIMIT_WECHAT_BIND": ("5/10 minutes", str),  # binding-code tries per WeChat user (openid), in chat
    "DOCUMENT_MAX_BYTES": (10 * 1024 * 1024, int),  # largest legal document file an issuer may upload
    "DOCUMENT_STORE": (None, str),  # folder (or file:// URL) of document files; unset: <instance>/documents
    "DOCUMENT_ANSWER_DAYS": (7, int),  # opened or acknowledged within: honoured; after: evaded (credit records)
    "DOCUMENT_LINK_HOURS": (168.0, float),  # lifetime of a one-time document link sent by e-mail or SMS
    # The outbox (docs/outbox.md): channels, then the worker.
    "WECHAT_TEMPLATE_IDS": (None, str),  # JSON {notice kind | "*": template id} for official-account template messages
    "WECHAT_SUBSCRIBE_IDS": (None, str),  # JSON {notice kind | "*": template id} for mini-program subscription messages
    "SMTP_HOST": (None, str),  # unset: no e-mail channel
    "SMTP_PORT": (25, int),
    "SMTP_USER": (None, str),
    "SMTP_PASSWORD": (None, str),
    "SMTP_FROM": ("信码 <noreply@xinma.local>", str),
    "SMTP_STARTTLS": (False, bool),
    "SMTP_TIMEOUT": (10.0, float),
    "SMS_GATEWAY_URL": (None, str),  # unset: no SMS channel; the protocol is in handlers/channels.py
    "SMS_GATEWAY_KEY": (None, str),
    "SMS_TIMEOUT": (10.0, float),
    "OUTBOX_BATCH": (100, int),  # messages a worker claims at once
    "OUTBOX_CONCURRENCY": (4, int),  # sends in flight per worker process
    "OUTBOX_LEASE": (60.0, float),  # seconds a claim lasts; a dead worker's messages are taken over after it
    "OUTBOX_MAX_ATTEMPTS": (8, int),  # then the message is dead (an admin may retry it)
    "OUTBOX_BACKOFF": (10.0, float),  # seconds before the first retry, doubling, with jitter
    "OUTBOX_MAX_BACKOFF": (3600.0, float),
    "OUTBOX_IDLE": (1.0, float),  # seconds a worker naps when nothing is due
    "OUTBOX_LINK_BASE": (None, str),  # absolute base of links in e-mail, SMS and template messages
    "OUTBOX_IN_PROCESS": (False, bool),  # `xinma serve` runs a worker thread (always in the demo)
}


def _parse(raw: str, kind: type):
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return kind(raw)


def load(overrides: dict | None = None) -> dict:
    """Collect settings: overrides beat XINMA_* variables beat defaults."""
    overrides = dict(overrides or {})
    cfg: dict[str, object] = {}
    for name, (default, kind) in DEFAULTS.items():
        if name in overrides:
            cfg[name] = overrides.pop(name)
        elif PREFIX + name in os.environ:
            cfg[name] = _parse(os.environ[PREFIX + name], kind)
        else:
            cfg[name] = default
    cfg.update(overrides)  # anything else (TESTING, Flask settings) passes through
    instance = Path(str(cfg["INSTANCE_PATH"])).absolute()
    cfg["INSTANCE_PATH"] = str(instance)
    if not cfg["DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
        cfg["DATABASE_URL"] = f"sqlite:///{instance / 'xinma.sqlite3'}"
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = instance_secret(instance)
    return cfg


def instance_secret(instance: Path) -> str:
    """The secret kept in instance/secret_key, created on first use (safely when workers race)."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value
