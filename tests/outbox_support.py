"""What the outbox's delivery tests share: a database of their own whose rows are really committed (workers
open their own connections), a real SMTP server (aiosmtpd) and a fake SMS gateway on 127.0.0.1, people with
their bindings, and workers wired to the WeChat emulator."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
from flask import Flask, jsonify, request
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from handlers import channels, contacts, migrate, outbox, wechat
from handlers.db import make_engine, scratch_schema
from handlers.models import Base, Channel, Role, WeChatIdentity
from tests.conftest import KEYS, create_account, create_subject
from tests.wechat_support import serve_in_thread

SUBSCRIBE_IDS = {"*": "sub-notice-tpl"}
TEMPLATE_IDS = {"*": "oa-notice-tpl"}


# --- a database whose commits are real ---------------------------------------------------------------

@pytest.fixture(scope="module")
def outbox_url(tmp_path_factory):
    base = os.environ.get("XINMA_TEST_DATABASE_URL")
    if not base:
        url = f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'outbox.sqlite3'}"
        migrate.upgrade(url)
        yield url
        return
    with scratch_schema(base, "xinma_outbox") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def outbox_engine(outbox_url):
    engine = make_engine(outbox_url)
    yield engine
    engine.dispose()


def _wipe(engine) -> None:
    with Session(engine) as s, s.begin():
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in ("category",):
                continue
            if s.scalar(select(func.count()).select_from(table)):
                s.execute(delete(table))


_SENDERS: list[dict] = []  # made during a test, closed after it


@pytest.fixture
def committed(outbox_engine):
    """A session factory on the outbox database; every table but the categories is emptied afterwards, and
    the senders the test made are closed."""
    def session() -> Session:
        s = Session(outbox_engine, expire_on_commit=False)
        s.info["xinma.keys"] = KEYS
        return s
    yield session
    while _SENDERS:
        channels.close_all(_SENDERS.pop())
    _wipe(outbox_engine)


def dump_text(engine) -> str:
    """Every value of every table as text: for asserting that something is stored nowhere in clear."""
    out = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    out.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return "\n".join(out)


# --- people and their bindings --------------------------------------------------------------------------

@dataclass
class Person:
    account_id: int
    subject_id: int
    mp_openid: str | None = None
    oa_openid: str | None = None
    email: str | None = None
    mobile: str | None = None


def bind_openid(s: Session, account_id: int, appid: str, openid: str) -> None:
    s.add(WeChatIdentity(appid=appid, openid=openid, account_id=account_id))
    s.flush()


def make_person(s: Session, emulator=None, *, mp: bool = False, oa: bool = False, email: str | None = None,
                mobile: str | None = None, subject=None, role: Role = Role.citizen, follow: bool = True) -> Person:
    """A subject (or ``subject``) and an approved account bound to the channels asked for."""
    subject = subject or create_subject(s)
    account = create_account(s, f"p-{uuid.uuid4().hex[:10]}", subject=subject, role=role, password=None)
    p = Person(account.id, subject.id)
    if mp:
        appid = emulator.config.miniprogram_appid
        p.mp_openid = emulator.user(appid) if follow else "o" + uuid.uuid4().hex[:27]
        bind_openid(s, account.id, appid, p.mp_openid)
    if oa:
        appid = emulator.config.appid
        p.oa_openid = emulator.user(appid) if follow else "o" + uuid.uuid4().hex[:27]
        bind_openid(s, account.id, appid, p.oa_openid)
    if email:
        contacts.set_contact(s, KEYS, account, "email", email, consent=True)
        p.email = email
    if mobile:
        contacts.set_contact(s, KEYS, account, "mobile", mobile, consent=True)
        p.mobile = mobile
    return p


# --- a real SMTP server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message_id(self) -> str:
        for line in self.data.decode("utf-8", "replace").splitlines():
            if line.lower().startswith("message-id:"):
                return line.split(":", 1)[1].strip()
        return ""


class SmtpHandler:
    """Accepts everything, except recipients listed in ``refuse`` (answered 550 quoting the address, as
    Postfix does) and, while ``busy`` > 0, answers RCPT with 451."""

    def __init__(self):
        self.mails: list[Mail] = []
        self.refuse: set[str] = set()
        self.busy = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        with self.lock:
            if self.busy > 0:
                self.busy -= 1
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    def __init__(self):
        from aiosmtpd.controller import Controller

        self._Controller = Controller
        self.handler = SmtpHandler()
        self.port = free_port()
        self.controller = None

    def start(self) -> None:
        self.controller = self._Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def mails(self) -> list[Mail]:
        return list(self.handler.mails)


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


# --- a fake SMS gateway ---------------------------------------------------------------------------------

@dataclass
class Gateway:
    """The other end of handlers/channels.py's SMS protocol: idempotent on the key, with faults."""

    key: str = "gateway-test-key"
    phones: dict[str, list[str]] = field(default_factory=dict)  # number -> texts that reached it
    seen: dict[str, str] = field(default_factory=dict)  # idempotency key -> our id
    requests: int = 0
    statuses: list[int] = field(default_factory=list)  # the next answers, then normal
    slow: list[float] = field(default_factory=list)  # the next accepted sends answer only after this delay
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("sms_gateway")

        @app.post("/send")
        def send():
            with self.lock:
                self.requests += 1
                status = self.statuses.pop(0) if self.statuses else None
                delay = self.slow.pop(0) if self.slow and status is None else None
            if request.headers.get("Authorization") != f"Bearer {self.key}":
                return jsonify(error="unauthorised"), 401
            if status is not None:
                return jsonify(error="injected"), status
            body = request.get_json(silent=True) or {}
            to, msg, key = body.get("to"), body.get("text"), request.headers.get("Idempotency-Key")
            if not (isinstance(to, str) and to.isdigit() and len(to) == 11 and msg and key):
                return jsonify(error=f"bad request for {to}"), 400
            with self.lock:
                if key in self.seen:
                    return jsonify(id=self.seen[key], duplicate=True)
                self.seen[key] = gid = f"sms-{len(self.seen) + 1}"
                self.phones.setdefault(to, []).append(msg)
            if delay:
                time.sleep(delay)  # accepted, but the answer comes too late for the client
            return jsonify(id=gid, duplicate=False), 202

        return app


@pytest.fixture
def sms_gateway():
    gw = Gateway()
    running = serve_in_thread(gw.app())
    gw.url = running.base + "/send"
    yield gw
    running.stop()


# --- workers --------------------------------------------------------------------------------------------

def wechat_settings(emulator, **extra) -> dict:
    cfg = emulator.config
    return {"WECHAT_APPID": cfg.appid, "WECHAT_SECRET": cfg.secret, "MINIPROGRAM_APPID": cfg.miniprogram_appid,
            "MINIPROGRAM_SECRET": cfg.miniprogram_secret, "WECHAT_API_BASE": emulator.base, "WECHAT_TIMEOUT": 2.0,
            **extra}


def make_senders(engine, *, emulator=None, smtp: SmtpServer | None = None, sms: Gateway | None = None,
                 wechat_timeout: float = 2.0) -> dict:
    senders = {}
    if emulator is not None:
        store = wechat.DatabaseTokenStore(engine)
        settings = wechat_settings(emulator, WECHAT_TIMEOUT=wechat_timeout)
        # No in-call 45009 sleeps in tests: the outbox's own backoff is what is under test.
        senders[Channel.subscribe] = channels.SubscribeSender(
            wechat.mini_program(settings, store, rate_limit_retries=0), SUBSCRIBE_IDS)
        senders[Channel.template] = channels.TemplateSender(
            wechat.official_account(settings, store, rate_limit_retries=0), TEMPLATE_IDS)
    if smtp is not None:
        senders[Channel.email] = channels.SmtpSender(channels.SmtpSettings(
            host="127.0.0.1", port=smtp.port, sender="信码 <noreply@xinma.test>", timeout=2.0))
    if sms is not None:
        senders[Channel.sms] = channels.SmsGatewaySender(sms.url, sms.key, timeout=1.0)
    _SENDERS.append(senders)
    return senders


def make_worker(engine, senders, *, name: str | None = None, **settings) -> outbox.Worker:
    settings.setdefault("backoff", 10.0)
    settings.setdefault("concurrency", 1)
    return outbox.Worker(engine, KEYS, senders, outbox.Settings(**settings), name=name)


def now_plus(seconds: float):
    from datetime import timedelta

    from handlers import timeutil
    return timeutil.now() + timedelta(seconds=seconds)


def row_count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
