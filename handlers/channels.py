"""The outbox's channels: WeChat subscription and template messages, e-mail (SMTP) and SMS (an HTTP gateway).

Each sender turns one message into one call and classifies the answer into an ``Outcome``:
``sent`` (accepted), ``retry`` (transient: try this channel again later), ``next_channel`` (this channel cannot
reach this person: refused, unbound, bad address), with the code and reply text to record. Senders never
raise for a delivery failure, never log an address, and strip the address out of any reply they record.

The SMS gateway protocol (ours, small, so that any provider can sit behind an adapter):

    POST <XINMA_SMS_GATEWAY_URL>
    Authorization: Bearer <XINMA_SMS_GATEWAY_KEY>
    Idempotency-Key: <key>
    {"to": "13800138000", "text": "【信码】…", "idempotency_key": "<key>"}

    2xx {"id": "<gateway's message id>", "duplicate": false}  accepted (sent)
        a repeated Idempotency-Key must answer 2xx with the first id and send nothing again
    400 / 422                                                 the number or text is refused (next channel)
    401 / 403 / 408 / 429 / 5xx, timeouts                     transient (retried with backoff)
"""
from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from collections.abc import Mapping
from typing import Any, Protocol

import requests

from . import timeutil
from .models import Channel
from .wechat import RATE_LIMITED, WeChat, WeChatError, WeChatRateLimited, WeChatUnavailable

log = logging.getLogger(__name__)

SENT, RETRY, NEXT = "sent", "retry", "next_channel"

# WeChat errcodes after which this channel cannot reach this person with this message: try the next one.
WECHAT_NEXT_CHANNEL = {
    40003,  # invalid openid (unfollowed, another app's openid)
    43101,  # the user refused the subscription message (no consent left for this template)
    43004,  # the user does not follow the official account
    40037,  # invalid template_id
    47003,  # the template's data does not fit
    47001,  # data format error
}


@dataclass(frozen=True)
class Outcome:
    outcome: str  # sent | retry | next_channel
    code: int | None = None  # WeChat errcode, SMTP reply code, the gateway's HTTP status
    reply: str | None = None
    external_id: str | None = None  # WeChat msgid, SMTP Message-ID, the gateway's id
    min_delay: float | None = None  # for retry: do not come back sooner (45009)


@dataclass(frozen=True)
class Outgoing:
    """One message as the senders see it. ``key`` is unique per (event, recipient, channel): the SMTP
    Message-ID and the SMS gateway's idempotency key, so a retry after a timeout is recognised downstream."""

    id: int
    kind: str
    key: str
    title: str
    lines: list[str]
    url: str | None  # absolute link for e-mail, SMS and template messages
    page: str | None  # the mini-program page for subscription messages
    at: datetime


class Sender(Protocol):
    channel: Channel

    def can_send(self, kind: str) -> bool: ...

    def send(self, address: str, message: Outgoing) -> Outcome: ...


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def scrub(text: str | None, address: str) -> str | None:
    """A reply without the address in it (SMTP servers like to quote the recipient)."""
    if text is None:
        return None
    text = text.replace(address, "<recipient>")
    local = address.partition("@")[0]
    if "@" in address and len(local) > 3:
        text = text.replace(local, "<recipient>")
    return _clip(text, 500)


def _local_time(at: datetime) -> str:
    return at.astimezone(timeutil.LOCAL).strftime("%Y-%m-%d %H:%M")


# --- WeChat ---------------------------------------------------------------------------------------------

class _WeChatSender:
    channel: Channel

    def __init__(self, client: WeChat, templates: Mapping[str, str]):
        self.client = client
        self.templates = dict(templates)

    @property
    def appid(self) -> str:
        return self.client.appid

    def template_for(self, kind: str) -> str | None:
        return self.templates.get(kind) or self.templates.get("*")

    def can_send(self, kind: str) -> bool:
        return bool(self.template_for(kind))

    def send(self, address: str, message: Outgoing) -> Outcome:
        template_id = self.template_for(message.kind)
        if not template_id:
            return Outcome(NEXT, reply="no template configured for this kind")
        try:
            msgid = self._send(address, template_id, message)
        except WeChatRateLimited as e:
            return Outcome(RETRY, RATE_LIMITED, _clip(str(e.errmsg or ""), 500), min_delay=60.0)
        except WeChatUnavailable as e:
            # A timeout may hide a delivered message: WeChat has no idempotency key, so the retry is
            # at-least-once here (docs/outbox.md).
            return Outcome(RETRY, e.http_status, _clip(str(e.errmsg or "unavailable"), 500))
        except WeChatError as e:
            code = e.errcode
            if code in WECHAT_NEXT_CHANNEL:
                return Outcome(NEXT, code, _clip(str(e.errmsg or ""), 500))
            return Outcome(RETRY, code, _clip(str(e.errmsg or ""), 500))  # 40001/42001 after our refresh, -1 …
        return Outcome(SENT, 0, "ok", external_id=str(msgid) if msgid is not None else None)

    def _send(self, openid: str, template_id: str, message: Outgoing):
        raise NotImplementedError


class SubscribeSender(_WeChatSender):
    """Mini-program subscription messages. The data keys follow the template we register (docs/outbox.md):
    thing1 title (≤20), thing2 summary (≤20), time3 time."""

    channel = Channel.subscribe

    def _send(self, openid: str, template_id: str, message: Outgoing):
        data = {"thing1": {"value": _clip(message.title, 20)},
                "thing2": {"value": _clip(message.lines[0] if message.lines else message.title, 20)},
                "time3": {"value": _local_time(message.at)}}
        self.client.send_subscribe(openid, template_id, data, page=message.page)


class TemplateSender(_WeChatSender):
    """Official-account template messages: first (title), keyword1 (the lines), keyword2 (time), remark."""

    channel = Channel.template

    def _send(self, openid: str, template_id: str, message: Outgoing):
        data = {"first": {"value": message.title},
                "keyword1": {"value": "；".join(message.lines) or message.title},
                "keyword2": {"value": _local_time(message.at)},
                "remark": {"value": "详情请在信码中查看。"}}
        return self.client.send_template(openid, template_id, data, url=message.url)


# --- e-mail ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str | None = None
    password: str | None = None
    sender: str = "信码 <noreply@xinma.local>"
    starttls: bool = False
    timeout: float = 10.0


class SmtpSender:
    """E-mail over SMTP, one connection per thread kept open between messages.

    MAIL/RCPT/DATA are issued one by one so that the server's own reply to DATA (``250 … queued as …``) is
    what gets recorded. The Message-ID is derived from the outbox key: a duplicate after a lost 250 carries the
    same Message-ID, which mail clients collapse into one."""

    channel = Channel.email

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._local = threading.local()
        self._open: set[smtplib.SMTP] = set()  # every thread's connection, for close()
        self._open_lock = threading.Lock()
        self.domain = parseaddr(settings.sender)[1].partition("@")[2] or "xinma.local"

    def can_send(self, kind: str) -> bool:
        return True

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            conn.ehlo()
            if s.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if s.user:
                conn.login(s.user, s.password or "")
        except BaseException:
            conn.close()
            raise
        with self._open_lock:
            self._open.add(conn)
        return conn

    def _drop(self) -> None:
        """Forget this thread's connection (after an error: the next message opens a fresh one)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            self._quit(conn)

    def _quit(self, conn: smtplib.SMTP) -> None:
        with self._open_lock:
            self._open.discard(conn)
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Close every thread's connection (at shutdown)."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            self._quit(conn)
        self._local = threading.local()

    def message_id(self, message: Outgoing) -> str:
        return f"<{message.key.replace(':', '.')}@{self.domain}>"

    def build(self, address: str, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        name, addr = parseaddr(self.settings.sender)
        mail["From"] = formataddr((name, addr)) if name else addr
        mail["To"] = address
        mail["Subject"] = message.title
        mail["Date"] = format_datetime(timeutil.now())
        mail["Message-ID"] = self.message_id(message)
        body = [message.title, "", *message.lines]
        if message.url:
            body += ["", f"详情：{message.url}"]
        body += ["", "—— 信码（本邮件由系统自动发送，请勿直接回复）"]
        mail.set_content("\n".join(body))
        return mail

    def send(self, address: str, message: Outgoing) -> Outcome:
        mail = self.build(address, message)
        for fresh in (False, True):
            try:
                conn = getattr(self._local, "conn", None) if not fresh else None
                reused = conn is not None
                if conn is None:
                    conn = self._local.conn = self._connect()
                return self._transaction(conn, address, mail)
            except smtplib.SMTPServerDisconnected as e:
                self._drop()
                if reused and not fresh:
                    continue  # the server closed our idle connection: one more go on a fresh one
                return Outcome(RETRY, None, scrub(f"disconnected: {e}", address))
            except smtplib.SMTPResponseException as e:
                self._drop()
                text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
                return Outcome(RETRY, e.smtp_code, scrub(f"{e.smtp_code} {text}", address))
            except (OSError, smtplib.SMTPException) as e:  # refused, timed out, TLS …
                self._drop()
                return Outcome(RETRY, None, scrub(f"{type(e).__name__}: {e}", address))
        return Outcome(RETRY, None, "disconnected")

    def _transaction(self, conn: smtplib.SMTP, address: str, mail: EmailMessage) -> Outcome:
        sender = parseaddr(self.settings.sender)[1]
        code, reply = conn.mail(sender)
        if code != 250:
            conn.rset()
            return self._refusal(code, reply, address)
        code, reply = conn.rcpt(address)
        if code not in (250, 251):
            conn.rset()
            return self._refusal(code, reply, address)
        code, reply = conn.data(mail.as_bytes())
        if code != 250:
            return self._refusal(code, reply, address)
        return Outcome(SENT, code, scrub(f"{code} {reply.decode(errors='replace')}", address),
                       external_id=str(mail["Message-ID"]))

    @staticmethod
    def _refusal(code: int, reply: bytes, address: str) -> Outcome:
        text = scrub(f"{code} {reply.decode(errors='replace')}", address)
        return Outcome(NEXT if 500 <= code < 600 else RETRY, code, text)


# --- SMS ------------------------------------------------------------------------------------------------

class SmsGatewaySender:
    """SMS through the HTTP gateway protocol above."""

    channel = Channel.sms

    def __init__(self, url: str, key: str | None = None, *, timeout: float = 10.0, signature: str = "【信码】"):
        self.url = url
        self.key = key
        self.timeout = timeout
        self.signature = signature
        self.http = requests.Session()

    def can_send(self, kind: str) -> bool:
        return True

    def close(self) -> None:
        self.http.close()

    def text(self, message: Outgoing) -> str:
        parts = [self.signature + message.title, *message.lines[:2]]
        if message.url:
            parts.append(message.url)
        return _clip("，".join(parts), 300)

    def send(self, address: str, message: Outgoing) -> Outcome:
        headers = {"Idempotency-Key": message.key}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        body = {"to": address, "text": self.text(message), "idempotency_key": message.key}
        try:
            r = self.http.post(self.url, json=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as e:
            return Outcome(RETRY, None, f"{type(e).__name__} calling the SMS gateway")
        reply = scrub(r.text[:500], address)
        if 200 <= r.status_code < 300:
            try:
                answer: Any = r.json()
            except ValueError:
                answer = {}
            gid = answer.get("id") if isinstance(answer, dict) else None
            return Outcome(SENT, r.status_code, reply, external_id=str(gid) if gid is not None else None)
        if r.status_code in (400, 422):
            return Outcome(NEXT, r.status_code, reply)
        return Outcome(RETRY, r.status_code, reply)


# --- the set of senders a worker uses --------------------------------------------------------------------

def _json_mapping(value) -> dict[str, str]:
    import json

    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    parsed = json.loads(str(value))
    if isinstance(parsed, str):
        return {"*": parsed}
    if not isinstance(parsed, dict):
        raise TypeError("expected a JSON object of kind -> template id")
    return {str(k): str(v) for k, v in parsed.items()}


def from_settings(settings: Mapping[str, Any], store=None) -> dict[Channel, Sender]:
    """The senders the settings configure (a channel whose settings are missing is simply absent).

    ``store``: the WeChat token store (handlers.wechat.token_store) for the WeChat senders."""
    from . import wechat

    senders: dict[Channel, Sender] = {}
    subscribe_ids = _json_mapping(settings.get("WECHAT_SUBSCRIBE_IDS"))
    template_ids = _json_mapping(settings.get("WECHAT_TEMPLATE_IDS"))
    if store is not None and subscribe_ids and settings.get("MINIPROGRAM_APPID") and settings.get("MINIPROGRAM_SECRET"):
        senders[Channel.subscribe] = SubscribeSender(wechat.mini_program(settings, store), subscribe_ids)
    if store is not None and template_ids and settings.get("WECHAT_APPID") and settings.get("WECHAT_SECRET"):
        senders[Channel.template] = TemplateSender(wechat.official_account(settings, store), template_ids)
    if settings.get("SMTP_HOST"):
        senders[Channel.email] = SmtpSender(SmtpSettings(
            host=str(settings["SMTP_HOST"]), port=int(settings.get("SMTP_PORT") or 25),
            user=settings.get("SMTP_USER") or None, password=settings.get("SMTP_PASSWORD") or None,
            sender=str(settings.get("SMTP_FROM") or SmtpSettings.sender),
            starttls=bool(settings.get("SMTP_STARTTLS")), timeout=float(settings.get("SMTP_TIMEOUT") or 10.0)))
    if settings.get("SMS_GATEWAY_URL"):
        senders[Channel.sms] = SmsGatewaySender(str(settings["SMS_GATEWAY_URL"]), settings.get("SMS_GATEWAY_KEY"),
                                                timeout=float(settings.get("SMS_TIMEOUT") or 10.0))
    return senders


def close_all(senders: Mapping[Channel, Sender]) -> None:
    for sender in senders.values():
        close = getattr(sender, "close", None)
        if close is not None:
            try:
                close()
            except (OSError, smtplib.SMTPException):
                pass  # best effort at shutdown
        client = getattr(sender, "client", None)
        if client is not None:
            client.close()
