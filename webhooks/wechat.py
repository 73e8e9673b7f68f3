"""The WeChat official-account webhook: signature, AES, XML in and out, retries answered once.

GET is WeChat's echostr handshake. POST carries a message or event in plaintext, compatible or safe (AES)
mode; the reply is encrypted when the request was. Everything WeChat may send badly (wrong signature, a
body too large, malformed XML, entity declarations, unknown types) gets a clean 4xx or a polite reply.
WeChat retries a message it got no answer to within 5 seconds: the reply is stored under the message's
key in the same transaction as whatever the message did, so a retry gets that reply and acts nowhere.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import xmltodict
from flask import Blueprint, Response, abort, current_app, request
from limits import parse as parse_limit
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import ArticlesReply, ImageReply, TextReply

import bot
from bot.replies import Reply, as_dict, from_dict
from handlers import wechat, wechat_users
from handlers.errors import DomainError
from handlers.models import WeChatInbound

from . import db, limits

log = logging.getLogger(__name__)

blp = Blueprint("wechat", __name__, url_prefix="/webhooks")

MAX_BODY = 64 * 1024
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)
SORRY = "系统繁忙，请稍后再试。"
PRUNE_EVERY = 600.0  # seconds between one process's opportunistic prunes of wechat_inbound


# --- the WeChat clients of this process ---------------------------------------------------------------

_clients_lock = threading.Lock()


def _client(name: str, build) -> wechat.WeChat:
    ext = current_app.extensions
    key = f"xinma.wechat.{name}"
    if key not in ext:
        with _clients_lock:
            if key not in ext:
                store = ext.get("xinma.wechat.store")
                if store is None:
                    store = ext["xinma.wechat.store"] = wechat.token_store(current_app.config,
                                                                         ext["xinma.engine"])
                ext[key] = build(current_app.config, store)
    return ext[key]


def official_account(*, warm: bool = False) -> wechat.WeChat:
    """The official account's client, built once per process (raises WeChatNotConfigured when unset).

    ``warm``: call before the request's first query when the request will call WeChat (see warm_token)."""
    client = _client("official_account", wechat.official_account)
    if warm and current_app.extensions["xinma.engine"].dialect.name == "sqlite":
        warm_token(client)
    return client


def mini_program() -> wechat.WeChat:
    return _client("mini_program", wechat.mini_program)


def warm_token(client: wechat.WeChat) -> None:
    """Make sure this process holds a fresh access token *before* a database transaction opens.

    On SQLite every transaction of ours holds the database's write lock, and the shared token is
    refreshed in a transaction of its own: refreshing from inside a request would wait on ourselves."""
    try:
        client.client.access_token  # noqa: B018 - cheap while this process's copy is fresh
    except wechat.WeChatError as e:
        log.warning("could not get a WeChat access token (errcode %s)", e.errcode)


# --- signatures and crypto ----------------------------------------------------------------------------

def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _signed(token: str, signature: str | None, *parts: str) -> bool:
    return bool(signature) and hmac.compare_digest(_sign(token, *parts), signature.lower())


def _token() -> str:
    token = current_app.config.get("WECHAT_TOKEN")
    if not token:
        abort(404)  # the webhook is off until it has a token
    return token


def _crypto() -> WeChatCrypto:
    cfg = current_app.config
    if not cfg.get("WECHAT_AES_KEY"):
        abort(400)
    return WeChatCrypto(cfg["WECHAT_TOKEN"], cfg["WECHAT_AES_KEY"], cfg["WECHAT_APPID"])


def _plain(body: bytes) -> str:
    if _DECLARATION.search(body):
        abort(400)  # entity declarations (billion laughs, external entities): never parsed
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        abort(400)


def _text(text: str) -> Response:
    return Response(text, mimetype="text/plain")


@blp.get("/wechat")
def handshake():
    args = request.args
    if not _signed(_token(), args.get("signature"), args.get("timestamp", ""), args.get("nonce", "")):
        abort(403)
    return _text(args.get("echostr", ""))


@blp.post("/wechat")
def receive():
    started = time.perf_counter()
    token = _token()
    args = request.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not _signed(token, args.get("signature"), timestamp, nonce):
        abort(403)
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        abort(413)
    xml = _plain(body)
    crypto = None
    if args.get("encrypt_type", "raw").lower() == "aes":
        crypto = _crypto()
        try:
            envelope = xmltodict.parse(xml)["xml"]
            encrypted = envelope["Encrypt"]
        except Exception:  # noqa: BLE001 - expat, KeyError, TypeError, ValueError: all malformed
            abort(400)
        if not isinstance(encrypted, str) or not _signed(token, args.get("msg_signature"), timestamp, nonce,
                                                         encrypted):
            abort(403)
        try:
            xml = _plain(crypto.decrypt_message(xml, args["msg_signature"], timestamp, nonce).encode("utf-8"))
        except (InvalidSignatureException, InvalidAppIdException):
            abort(403)
        except Exception:  # noqa: BLE001 - bad base64, bad padding, garbage: not WeChat's
            abort(400)
    try:
        message = parse_message(xml)
        if message is None or not message.source:
            raise ValueError("no sender")
    except Exception:  # noqa: BLE001 - expat, KeyError, TypeError, ValueError
        abort(400)

    reply = _answer(message)
    out = _render(reply, message)
    if crypto is not None and out != "success":
        out = crypto.encrypt_message(out, nonce, str(int(time.time())))
    log.info("wechat message", extra={"type": message.type, "event": message._data.get("Event"),
                                      "reply": reply.type, "ms": round((time.perf_counter() - started) * 1000, 2)})
    return Response(out, mimetype="application/xml" if out != "success" else "text/plain")


def inbound_key(message) -> str:
    """WeChat's retries carry the same MsgId; events have none, so sender + CreateTime (+ event) stand in."""
    raw = message._data  # every field WeChat sent, also for types wechatpy does not know
    if raw.get("MsgId"):
        return f"msg:{raw['MsgId']}"
    key = f"evt:{message.source}:{raw.get('CreateTime')}:{raw.get('Event')}:{raw.get('EventKey') or ''}"[:140]
    scanned = raw.get("ScanCodeInfo")
    if isinstance(scanned, dict) and scanned.get("ScanResult"):
        # Two codes scanned within one second are two scans; a retry carries the same string.
        key += ":" + hashlib.sha256(str(scanned["ScanResult"]).encode()).hexdigest()[:16]
    return key


# The dedupe's two statements, built once, run as Core on the session's connection: no ORM compile, result or
# unit of work. A fifth fewer instructions per 帮助 than Session.get + add/flush (4.6 -> 3.6 million, counted
# with cachegrind, benchmarks/webhook_bench.py --profile); same rows, same answer to a retry racing us.
_INBOUND = WeChatInbound.__table__
_SEEN = select(_INBOUND.c.reply).where(_INBOUND.c.key == bindparam("key"))
_KEEP = insert(_INBOUND)


def _seen(s, key: str) -> Reply | None:
    reply = s.connection().execute(_SEEN, {"key": key}).scalar()
    return from_dict(reply) if reply is not None else None


def _answer(message) -> Reply:
    key = inbound_key(message)
    cfg = current_app.config
    oa = None
    if cfg.get("WECHAT_APPID") and cfg.get("WECHAT_SECRET"):
        oa = official_account(warm=True)
    s = db.session()
    seen = _seen(s, key)
    if seen is not None:
        return seen
    ctx = bot.Context(
        session=s, keys=current_app.extensions["xinma.keys"], keyring=current_app.extensions["xinma.keyring"],
        appid=cfg.get("WECHAT_APPID") or "", openid=message.source,
        idempotency_key="wx-" + hashlib.sha256(key.encode()).hexdigest()[:40], wechat=oa,
        code_url=cfg.get("WECHAT_CODE_URL"), code_window=cfg.get("CODE_WINDOW") or 30,
        binding_allowed=_binding_allowed(message.source))
    try:
        reply = bot.handle(ctx, message)
    except DomainError as e:
        # Whatever the command did so far is undone; the refusal itself is the answer, and it is kept.
        s.rollback()
        reply = bot.Text(e.message)
    except Exception:  # noqa: BLE001 - never a 500 to WeChat, never half an action
        s.rollback()
        log.exception("the bot failed on a %s", message.type)
        return bot.Text(SORRY)  # not stored: WeChat's retry tries again
    try:
        s.flush()  # what the bot left pending first, as before
        s.connection().execute(_KEEP, {"key": key, "reply": as_dict(reply)})
    except IntegrityError:
        # A retry of this message ran at the same time and got here first: undo ours, answer with its reply.
        s.rollback()
        return _seen(s, key) or bot.Text(SORRY)
    _prune_now_and_then(s)
    return reply


def _binding_allowed(openid: str) -> Callable[[], bool]:
    """Counts this sender's binding-code tries in the rate limiter's storage (Redis when configured)."""
    def allowed() -> bool:
        cfg = current_app.config
        if not cfg.get("RATELIMIT_ENABLED", True):
            return True
        return limits.limiter.limiter.hit(parse_limit(cfg["RATELIMIT_WECHAT_BIND"]), "wechat-bind", openid)
    return allowed


def _prune_now_and_then(s) -> None:
    """Every PRUNE_EVERY seconds per process, drop a batch of inbound rows past WeChat's retry window (and old
    binding codes), in the request's transaction; `xinma wechat prune` does the rest."""
    ext = current_app.extensions
    last = ext.get("xinma.wechat.pruned_at")
    now = time.monotonic()
    if last is not None and now - last < PRUNE_EVERY:
        return
    ext["xinma.wechat.pruned_at"] = now
    keep = timedelta(hours=float(current_app.config["WECHAT_INBOUND_KEEP_HOURS"]))
    try:
        with s.begin_nested():
            inbound, codes = wechat_users.prune(s, keep=keep, batch=wechat_users.PRUNE_BATCH)
    except SQLAlchemyError:
        log.warning("pruning wechat_inbound failed; the next prune tries again", exc_info=True)
        return
    if inbound or codes:
        log.info("pruned wechat_inbound", extra={"inbound": inbound, "binding_codes": codes})


def _cdata_safe(text: str) -> str:
    # wechatpy writes text into CDATA as is: a "]]>" would end the section early and break the XML.
    return text.replace("]]>", "]]]]><![CDATA[>")


def _render(reply: Reply, message) -> str:
    # Stamped with the message's own CreateTime, not the clock: a retry of the same message renders
    # byte for byte the same reply, even when it arrives in another second.
    stamp = {"message": message, "time": message.time}
    if reply.type == "text":
        return TextReply(**stamp, content=_cdata_safe(reply.content)).render()
    if reply.type == "image":
        return ImageReply(**stamp, media_id=reply.media_id).render()
    if reply.type == "news":
        return ArticlesReply(**stamp, articles=[{
            "title": _cdata_safe(reply.title), "description": _cdata_safe(reply.description),
            "image": reply.image, "url": reply.url}]).render()
    return "success"


def init_app(app) -> None:
    app.register_blueprint(blp)
