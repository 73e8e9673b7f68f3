"""Rate limits on login and write endpoints; shared in Redis when XINMA_REDIS_URL is set."""
from __future__ import annotations

import hashlib

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .auth import bearer_token


def _key() -> str:
    # Per signed-in token when there is one (clerks behind one NAT are many people), else per address.
    token = bearer_token()
    if token:
        return "t:" + hashlib.sha256(token.encode()).hexdigest()[:24]
    return "ip:" + (get_remote_address() or "-")


limiter = Limiter(key_func=_key, default_limits=[], headers_enabled=True)

WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


def login_limit():
    return limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], key_func=lambda: "ip:" + (get_remote_address() or "-"),
                         methods=["POST"], scope="login")


def write_limit():
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_WRITE"], scope="write",
                                methods=WRITE_METHODS)


def scan_limit():
    """Scans (check and redeem) count apart from other writes: a clerk at a busy gate scans far more
    often than anyone edits anything, and a queue must not lock them out of voiding a mistake."""
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_SCAN"], scope="scan", methods=["POST"])


def init_app(app) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    limiter.init_app(app)
