"""Calling WeChat (official account and mini-program): one shared access token, bounded retries, timeouts.

Every call our code makes to WeChat goes through :class:`WeChat` here, in production and against the local
emulator alike; the only difference is the base URL (``XINMA_WECHAT_API_BASE``). The requests themselves
are wechatpy's. Three things wechatpy does not do for us, and why we take them over:

* **The access token.** WeChat allows one valid token per appid (a new one retires the old after five
  minutes), so every process must share one and only one process may refresh it at a time. wechatpy's
  ``session=`` storage has only ``get/set/delete``: it cannot express "lock, look again, fetch, store,
  unlock", and its expiry check depends on a per-instance ``expires_at`` that other processes never see.
  So the client asks a :class:`TokenStore` instead (database row or Redis key, plus a per-process copy).
* **Retries.** wechatpy's ``auto_retry`` refetches on 40001/42001 without bound (a persistent 40001 ends in
  RecursionError). Ours refreshes once (compare-and-refresh: only if the shared token is still the one
  WeChat rejected), backs off with jitter on 45009, and never retries a timeout (the message may have
  been delivered: the outbox decides).
* **Timeouts.** wechatpy's token fetch has none; ours does, like every other call.
"""
from __future__ import annotations

import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import requests
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from . import timeutil
from .models import WeChatAccessToken

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"
# showqrcode lives on another host in production; against the emulator everything shares one base.
PRODUCTION_SHOWQRCODE = "https://mp.weixin.qq.com/cgi-bin/showqrcode"

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
RATE_LIMITED = 45009

T = TypeVar("T")


# --- errors ---------------------------------------------------------------------------------------

class WeChatError(Exception):
    """WeChat said no: ``errcode``/``errmsg`` are WeChat's own (errcode None when there was no answer)."""

    def __init__(self, errcode: int | None, errmsg: str, *, http_status: int | None = None):
        super().__init__(f"WeChat errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status


class WeChatRateLimited(WeChatError):
    """45009 still, after our bounded backoff."""


class WeChatUnavailable(WeChatError):
    """No usable answer: timeout, connection refused, HTTP error. The call may or may not have taken effect."""


class WeChatNotConfigured(WeChatError):
    """The appid or secret setting is missing."""


def _error(errcode: int, errmsg: str | None) -> WeChatError:
    cls = WeChatRateLimited if errcode == RATE_LIMITED else WeChatError
    return cls(errcode, errmsg or str(errcode))


# --- the shared access token ------------------------------------------------------------------------

Fetch = Callable[[], tuple[str, int]]  # -> (token, expires_in seconds); raises WeChatError


class TokenStore(Protocol):
    def get(self, appid: str, fetch: Fetch, *, rejected: str | None = None) -> str:
        """A token valid for a while yet; ``rejected`` is one WeChat just refused (never hand it out again)."""


class _SharedTokenStore:
    """A per-process copy in front of a shared store; threads of one process queue on a lock so that only
    one of them goes to the shared store, where one process at a time may refresh."""

    def __init__(self, margin: float = 300.0):
        self.margin = margin  # refresh this many seconds before WeChat's expiry
        self._local: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _usable(self, token: str | None, expires_at: float, rejected: str | None) -> bool:
        return bool(token) and token != rejected and expires_at - self.margin > time.time()

    def get(self, appid: str, fetch: Fetch, *, rejected: str | None = None) -> str:
        token, expires_at = self._local.get(appid, ("", 0.0))
        if self._usable(token, expires_at, rejected):
            return token
        with self._lock:
            token, expires_at = self._local.get(appid, ("", 0.0))
            if not self._usable(token, expires_at, rejected):
                token, expires_at = self._shared(appid, fetch, rejected)
                self._local[appid] = (token, expires_at)
            return token

    def forget(self, appid: str) -> None:
        """Drop this process's copy (tests; the shared one stays)."""
        self._local.pop(appid, None)

    def _shared(self, appid: str, fetch: Fetch, rejected: str | None) -> tuple[str, float]:
        raise NotImplementedError


class DatabaseTokenStore(_SharedTokenStore):
    """The token in ``wechat_access_token``, refreshed under a row lock (SELECT … FOR UPDATE on PostgreSQL;
    on SQLite every transaction of ours begins IMMEDIATE, which serialises the same way).

    The HTTP fetch happens while the lock is held: that is the point (the others wait and reuse), and it
    is bounded by the client's timeout. It uses its own connection and commits on its own, so it never
    commits a caller's work. On SQLite, whose write lock is database-wide, do not call WeChat while
    holding a write transaction of your own in the same thread: commit first (the outbox does).
    """

    def __init__(self, engine: Engine, margin: float = 300.0):
        super().__init__(margin)
        self.engine = engine

    def _shared(self, appid: str, fetch: Fetch, rejected: str | None) -> tuple[str, float]:
        for _ in range(3):
            try:
                with Session(self.engine, expire_on_commit=False) as s, s.begin():
                    row = s.get(WeChatAccessToken, appid, with_for_update=True, populate_existing=True)
                    if row is None:
                        # Nothing to lock yet. A racing first insert blocks on the primary key until we
                        # commit, then fails before fetching, goes round again and reuses our token.
                        row = WeChatAccessToken(appid=appid, token="", expires_at=datetime.fromtimestamp(0, timezone.utc))
                        s.add(row)
                        s.flush()
                    expires_at = timeutil.aware(row.expires_at).timestamp()
                    if self._usable(row.token, expires_at, rejected):
                        return row.token, expires_at
                    token, expires_in = fetch()
                    expires_at = time.time() + expires_in
                    row.token = token
                    row.expires_at = datetime.fromtimestamp(expires_at, timezone.utc)
                return token, expires_at
            except IntegrityError:
                continue
        raise WeChatUnavailable(None, "could not store the access token")


class RedisTokenStore(_SharedTokenStore):
    """The token in a Redis key with a TTL; refreshed under a SET NX lock with an expiry (redis-py's Lock),
    so a process that dies while refreshing blocks the others for at most ``lock_seconds``."""

    def __init__(self, redis, margin: float = 300.0, *, lock_seconds: float = 30.0, wait_seconds: float = 30.0,
                 prefix: str = "xinma:wechat:access_token:"):
        super().__init__(margin)
        self.redis = redis
        self.prefix = prefix
        self.lock_seconds = lock_seconds
        self.wait_seconds = wait_seconds

    @classmethod
    def from_url(cls, url: str, **kwargs) -> RedisTokenStore:
        import redis
        return cls(redis.Redis.from_url(url), **kwargs)

    def _read(self, key: str) -> tuple[str, float]:
        raw = self.redis.get(key)
        if not raw:
            return "", 0.0
        data = json.loads(raw)
        return data["token"], float(data["expires_at"])

    def _shared(self, appid: str, fetch: Fetch, rejected: str | None) -> tuple[str, float]:
        from redis.exceptions import LockError

        key = self.prefix + appid
        token, expires_at = self._read(key)
        if self._usable(token, expires_at, rejected):
            return token, expires_at
        lock = self.redis.lock(key + ":lock", timeout=self.lock_seconds, blocking_timeout=self.wait_seconds,
                               sleep=0.02)
        if not lock.acquire():
            raise WeChatUnavailable(None, "timed out waiting for another process to refresh the access token")
        try:
            token, expires_at = self._read(key)
            if self._usable(token, expires_at, rejected):
                return token, expires_at
            token, expires_in = fetch()
            expires_at = time.time() + expires_in
            self.redis.set(key, json.dumps({"token": token, "expires_at": expires_at}), ex=max(1, int(expires_in)))
            return token, expires_at
        finally:
            try:
                lock.release()
            except LockError:  # it expired while we fetched; someone else may hold it now
                log.warning("access token lock for %s expired during the fetch", appid)


def token_store(settings: Mapping[str, Any], engine: Engine | None = None, **kwargs) -> TokenStore:
    """Redis when ``REDIS_URL`` is set, else the database behind ``engine``."""
    if settings.get("REDIS_URL"):
        return RedisTokenStore.from_url(str(settings["REDIS_URL"]), **kwargs)
    if engine is None:
        raise ValueError("an engine is needed for the database token store")
    return DatabaseTokenStore(engine, **kwargs)


# --- the client ---------------------------------------------------------------------------------------

class XinmaWeChatClient(WeChatClient):
    """wechatpy's client with our base URL, our token store and a timeout on the token fetch too."""

    def __init__(self, appid: str, secret: str, *, store: TokenStore, api_base: str | None = None,
                 timeout: float = 5.0):
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.api_base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{self.api_base}/"
        self.token_store = store
        self._calls = threading.local()  # the token this thread last sent, to name it when WeChat refuses it

    @property
    def access_token(self) -> str:
        rejected = getattr(self._calls, "rejected", None)
        self._calls.rejected = None
        token = self.token_store.get(self.appid, self.fetch_access_token, rejected=rejected)
        self._calls.token = token
        return token

    def reject_token(self) -> None:
        """WeChat refused the token this thread last sent: the next call must not use it again."""
        self._calls.rejected = getattr(self._calls, "token", None)

    def fetch_access_token(self) -> tuple[str, int]:
        try:
            res = self._http.get(self.API_BASE_URL + "token", timeout=self.timeout, params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})
        except requests.RequestException as e:
            raise WeChatUnavailable(None, f"token fetch failed: {type(e).__name__}") from e
        if res.status_code >= 400:
            raise WeChatUnavailable(None, f"token fetch: HTTP {res.status_code}", http_status=res.status_code)
        try:
            result = res.json()
        except ValueError as e:
            raise WeChatUnavailable(None, "token fetch: the answer is not JSON") from e
        if int(result.get("errcode") or 0):
            raise _error(int(result["errcode"]), result.get("errmsg"))
        log.info("fetched a WeChat access token for %s", self.appid)
        return result["access_token"], int(result.get("expires_in", 7200))

    @property
    def showqrcode_url(self) -> str:
        if self.api_base == DEFAULT_API_BASE:
            return PRODUCTION_SHOWQRCODE
        return f"{self.api_base}/cgi-bin/showqrcode"


@dataclass(frozen=True)
class QRCode:
    ticket: str
    url: str  # what the QR code encodes
    expire_seconds: int | None  # None: permanent
    image_url: str  # WeChat's rendering of it (showqrcode)


class WeChat:
    """One WeChat app (the official account or the mini-program) and the calls we make to it."""

    def __init__(self, appid: str, secret: str, *, store: TokenStore, api_base: str | None = None,
                 timeout: float = 5.0, token_retries: int = 1, rate_limit_retries: int = 2,
                 backoff: float = 0.5, max_backoff: float = 4.0):
        if not appid or not secret:
            raise WeChatNotConfigured(None, "the WeChat appid and secret are not configured")
        self.client = XinmaWeChatClient(appid, secret, store=store, api_base=api_base, timeout=timeout)
        self.token_retries = token_retries
        self.rate_limit_retries = rate_limit_retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    @property
    def appid(self) -> str:
        return self.client.appid

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client._http.close()

    def call(self, request: Callable[[XinmaWeChatClient], T]) -> T:
        """Run ``request(client)`` with our bounded retries; raise WeChatError (or a subclass) on failure.

        ``request`` must build its whole request each time (a file object is consumed by the first try).
        """
        token_retries = rate_retries = 0
        while True:
            try:
                return request(self.client)
            except WeChatClientException as e:
                if e.errcode is None:  # an HTTP error status: no errcode to act on
                    status = getattr(e.response, "status_code", None)
                    raise WeChatUnavailable(None, f"HTTP {status}", http_status=status) from e
                errcode = int(e.errcode)
                if errcode in TOKEN_ERRORS and token_retries < self.token_retries:
                    token_retries += 1
                    log.info("WeChat refused the access token of %s (%s); refreshing", self.appid, errcode)
                    self.client.reject_token()
                    continue
                if errcode == RATE_LIMITED and rate_retries < self.rate_limit_retries:
                    rate_retries += 1
                    ceiling = min(self.max_backoff, self.backoff * 2 ** (rate_retries - 1))
                    time.sleep(ceiling / 2 + random.uniform(0, ceiling / 2))  # jitter: callers do not stampede
                    continue
                raise _error(errcode, e.errmsg) from e
            except requests.RequestException as e:
                # Not retried: a send may have arrived although the answer did not.
                raise WeChatUnavailable(None, f"{type(e).__name__} calling WeChat") from e

    # --- the calls we make --------------------------------------------------------------------------

    def code_to_session(self, js_code: str) -> tuple[str, str | None]:
        """A mini-program login code -> (openid, unionid or None). The session_key stays in here."""
        result = self.call(lambda c: c.wxa.code_to_session(js_code))
        return result["openid"], result.get("unionid")

    def send_custom_text(self, openid: str, text: str) -> None:
        self.call(lambda c: c.message.send_text(openid, text))

    def send_custom_image(self, openid: str, media_id: str) -> None:
        self.call(lambda c: c.message.send_image(openid, media_id))

    def send_template(self, openid: str, template_id: str, data: dict, *, url: str | None = None,
                      mini_program: dict | None = None) -> int | None:
        """A template message (official account); returns WeChat's msgid (delivery is reported later)."""
        result = self.call(lambda c: c.message.send_template(openid, template_id, data, url=url,
                                                             mini_program=mini_program))
        return result.get("msgid")

    def send_subscribe(self, openid: str, template_id: str, data: dict, *, page: str | None = None) -> None:
        """A mini-program subscription message; 43101 (the user did not consent) raises WeChatError."""
        self.call(lambda c: c.wxa.send_subscribe_message(openid, template_id, data, page=page))

    def upload_media(self, data: bytes, *, filename: str = "image.png", content_type: str = "image/png",
                     media_type: str = "image") -> str:
        """Upload temporary media (kept three days by WeChat); returns its media_id."""
        result = self.call(lambda c: c.media.upload(media_type, (filename, io.BytesIO(data), content_type)))
        return result["media_id"]

    def create_menu(self, data: dict) -> None:
        self.call(lambda c: c.menu.create(data))

    def create_qrcode(self, scene_str: str, expire_seconds: int | None = None) -> QRCode:
        """A parametric QR code: temporary when ``expire_seconds`` is given (at most 30 days), else permanent."""
        body: dict[str, Any] = {"action_name": "QR_STR_SCENE" if expire_seconds else "QR_LIMIT_STR_SCENE",
                                "action_info": {"scene": {"scene_str": scene_str}}}
        if expire_seconds:
            body["expire_seconds"] = int(expire_seconds)
        result = self.call(lambda c: c.qrcode.create(body))
        ticket = result["ticket"]
        return QRCode(ticket=ticket, url=result["url"], expire_seconds=result.get("expire_seconds"),
                      image_url=f"{self.client.showqrcode_url}?ticket={quote(ticket, safe='')}")

    def get_wxa_code_unlimited(self, scene: str, page: str | None = None, *, width: int = 430) -> bytes:
        """A mini-program code (PNG) opening ``page`` with ``scene`` (at most 32 characters)."""
        result = self.call(lambda c: c.wxa.get_wxa_code_unlimited(scene, width=width, page=page))
        if isinstance(result, requests.Response) and result.content.startswith(b"\x89PNG"):
            return result.content
        raise WeChatUnavailable(None, "getwxacodeunlimit did not answer with an image")


def official_account(settings: Mapping[str, Any], store: TokenStore, **kwargs) -> WeChat:
    """The official account from settings (``WECHAT_APPID``/``WECHAT_SECRET``/``WECHAT_API_BASE``/``WECHAT_TIMEOUT``)."""
    return WeChat(settings.get("WECHAT_APPID"), settings.get("WECHAT_SECRET"), store=store,
                  api_base=settings.get("WECHAT_API_BASE"), timeout=float(settings.get("WECHAT_TIMEOUT") or 5.0),
                  **kwargs)


def mini_program(settings: Mapping[str, Any], store: TokenStore, **kwargs) -> WeChat:
    """The mini-program (``MINIPROGRAM_APPID``/``MINIPROGRAM_SECRET``), same base URL and timeout."""
    return WeChat(settings.get("MINIPROGRAM_APPID"), settings.get("MINIPROGRAM_SECRET"), store=store,
                  api_base=settings.get("WECHAT_API_BASE"), timeout=float(settings.get("WECHAT_TIMEOUT") or 5.0),
                  **kwargs)
