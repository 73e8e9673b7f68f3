"""The outbox: notices and direct messages written in the event's own transaction, delivered later by workers.

Writing (any transaction, no I/O):
  * ``notify(session, subject_id, kind, title, body, page=)`` writes a Notice: the subject's in-app notice and
    the event row. Nothing else: the worker fans it out.
  * ``send_direct(session, event_key=, channel=, kind=, payload=, account_id= | address=)`` writes one message to
    one address on one channel (legal service), idempotently.
  * ``@on_outcome(kind)`` registers a hook the worker calls, in the transaction that records the attempt,
    when a message of that kind is sent or given up.

Delivering (``Worker``, run by ``xinma worker``): fan out notices not yet fanned out into one message per
recipient account (the subject's own citizen account, an enterprise's agents) with the channels that person is
bound to and consented to, in order mini-program subscription → official-account template → e-mail → SMS; claim
due messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, plus a lease so a dead worker's rows are taken over);
send outside any transaction; record every attempt; retry transient failures with exponential backoff and
jitter up to a bound, then ``dead``; fall back to the next channel when one cannot reach the person.
Details and guarantees: docs/outbox.md.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import os
import random
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import contacts, timeutil
from .channels import NEXT, SENT, Outcome, Outgoing, Sender, close_all
from .errors import DomainError
from .models import (
    MAX_ID, Account, Channel, ContactKind, ContactPoint, Notice, OutboxAttempt, OutboxMessage, OutboxState, Role, RoleGrant,
    Status, WeChatIdentity,
)
from .privacy import Keys

log = logging.getLogger(__name__)

CHANNEL_ORDER = (Channel.subscribe, Channel.template, Channel.email, Channel.sms)
CONTACT_OF = {Channel.email: ContactKind.email, Channel.sms: ContactKind.mobile}

Hook = Callable[[Session, OutboxMessage, str, OutboxAttempt], None]
_HOOKS: dict[str, list[Hook]] = defaultdict(list)


# --- writing: in the event's transaction ------------------------------------------------------------------

def notify(session: Session, subject_id: int, kind: str, title: str, body: dict, *,
           page: str | None = None) -> Notice:
    """Tell a subject something: its in-app notice, pushed to its accounts by the worker after commit."""
    if not kind or len(kind) > 32:
        raise ValueError("a notice kind is 1 to 32 characters")
    notice = Notice(subject_id=subject_id, kind=kind, title=title[:200], body=body, page=page)
    session.add(notice)
    session.flush()
    return notice


def _dedupe(raw: str) -> str:
    return raw if len(raw) <= 200 else "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _direct_bound(dedupe_key: str) -> bytes:
    return f"outbox:{dedupe_key}".encode()


def send_direct(session: Session, *, event_key: str, channel: str, kind: str, payload: dict,
                account_id: int | None = None, address: str | None = None, keys: Keys | None = None) -> OutboxMessage:
    """One message on one channel, no fallback; the same (event_key, channel, recipient) twice is the same message.

    ``subscribe``/``template`` need ``account_id`` (its openid is looked up when sending). ``email``/``sms`` take
    ``address`` in clear — stored sealed (bound to this message) and masked, never in clear — or ``account_id``
    (the account's consented contact point, read when sending). Sealing needs ``keys``; when omitted,
    ``session.info["xinma.keys"]`` is used. Bad addresses raise DomainError bad_email / bad_mobile.
    """
    ch = Channel(channel)
    if not isinstance(payload, dict) or not isinstance(payload.get("title"), str):
        raise TypeError("payload needs at least a title")
    if ch in (Channel.subscribe, Channel.template) and (account_id is None or address is not None):
        raise ValueError(f"{ch.value} messages go to an account_id, not an address")
    if ch in CONTACT_OF and (account_id is None) == (address is None):
        raise ValueError(f"{ch.value} messages need exactly one of address and account_id")
    sealed = masked = None
    if address is not None:
        keys = keys or session.info.get("xinma.keys")
        if keys is None:
            raise ValueError("send_direct needs keys= to seal an address")
        value = contacts.normalise(CONTACT_OF[ch], address)
        recipient = contacts.address_hash(keys, CONTACT_OF[ch], value)
        key = _dedupe(f"direct:{event_key}:{ch.value}:{recipient}")
        sealed = keys.seal(value.encode(), bound_to=_direct_bound(key))
        masked = contacts.mask(CONTACT_OF[ch], value)
    else:
        key = _dedupe(f"direct:{event_key}:{ch.value}:account-{account_id}")
    found = session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
    if found is not None:
        return found
    message = OutboxMessage(dedupe_key=key, kind=kind, account_id=account_id, payload=payload, channels=[ch.value],
                            channel_index=0, channel=ch, address_sealed=sealed, address_masked=masked,
                            state=OutboxState.pending, attempts=0, next_attempt_at=timeutil.now())
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:  # the same message, written at the same moment by another transaction
        found = session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        if found is None:
            raise
        return found
    return message


def on_outcome(kind: str) -> Callable[[Hook], Hook]:
    """Register ``hook(session, message, outcome, attempt)`` for messages of ``kind`` reaching sent or dead.

    Called by the worker inside the transaction that records the attempt: quick, database writes only."""
    def register(hook: Hook) -> Hook:
        if hook not in _HOOKS[kind]:
            _HOOKS[kind].append(hook)
        return hook
    return register


# --- reading and administering --------------------------------------------------------------------------

def visible_subjects(account: Account) -> list[int]:
    """The subjects whose notices an account sees: its own, and enterprises it is the agent of."""
    ids = [account.subject_id] if account.subject_id is not None else []
    ids += [g.subject_id for g in account.grants if g.role == Role.enterprise_agent and g.subject_id is not None]
    return ids


def notices_query(account: Account, *, unread_only: bool = False):
    q = (select(Notice).where(Notice.subject_id.in_(visible_subjects(account)))
         .order_by(Notice.created_at.desc(), Notice.id.desc()))
    return q.where(Notice.read_at.is_(None)) if unread_only else q


def unread_count(session: Session, account: Account) -> int:
    return session.scalar(select(func.count()).select_from(Notice).where(
        Notice.subject_id.in_(visible_subjects(account)), Notice.read_at.is_(None))) or 0


def mark_read(session: Session, account: Account, notice_id: int, *, at: datetime | None = None) -> Notice:
    """Mark a notice read (once: a second call keeps the first time). Read state is per notice, shared by an
    enterprise's agents. A notice the account may not see is not found."""
    notice = session.get(Notice, notice_id) if 0 < notice_id <= MAX_ID else None
    if notice is None or notice.subject_id not in visible_subjects(account):
        raise DomainError("notice_not_found")
    if notice.read_at is None:
        notice.read_at = at or timeutil.now()
        session.flush()
    return notice


def mark_all_read(session: Session, account: Account, *, at: datetime | None = None) -> int:
    done = session.execute(update(Notice).where(Notice.subject_id.in_(visible_subjects(account)),
                                                Notice.read_at.is_(None)).values(read_at=at or timeutil.now()))
    return done.rowcount


def messages_query(*, state: str | None = None, channel: str | None = None, kind: str | None = None):
    q = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if state:
        q = q.where(OutboxMessage.state == OutboxState(state))
    if channel:
        q = q.where(OutboxMessage.channel == Channel(channel))
    if kind:
        q = q.where(OutboxMessage.kind == kind)
    return q


def get_message(session: Session, message_id: int) -> OutboxMessage:
    m = session.get(OutboxMessage, message_id) if 0 < message_id <= MAX_ID else None
    if m is None:
        raise DomainError("outbox_message_not_found")
    return m


def attempts_of(session: Session, message_id: int) -> list[OutboxAttempt]:
    return list(session.scalars(select(OutboxAttempt).where(OutboxAttempt.message_id == message_id)
                                .order_by(OutboxAttempt.number)))


def retry(session: Session, message_id: int, *, at: datetime | None = None) -> OutboxMessage:
    """Give a dead message a new round: from its first channel, with a fresh attempt budget."""
    m = session.get(OutboxMessage, message_id, with_for_update=True) if 0 < message_id <= MAX_ID else None
    if m is None:
        raise DomainError("outbox_message_not_found")
    if m.state != OutboxState.dead:
        raise DomainError("outbox_not_retryable", detail={"state": m.state.value})
    _restart(m, at or timeutil.now())
    session.flush()
    return m


def _restart(m: OutboxMessage, at: datetime) -> None:
    m.state, m.attempts, m.channel_index, m.channel = OutboxState.pending, 0, 0, Channel(m.channels[0])
    m.next_attempt_at, m.lease_until, m.leased_by, m.dead_at = at, None, None, None


def retry_all_dead(session: Session, *, at: datetime | None = None) -> int:
    at = at or timeutil.now()
    n = 0
    for m in session.scalars(select(OutboxMessage).where(OutboxMessage.state == OutboxState.dead)
                             .with_for_update()):
        _restart(m, at)
        n += 1
    session.flush()
    return n


def stats(session: Session, *, now: datetime | None = None) -> dict:
    """Counts by state and channel, the backlog's age, notices waiting for fan-out."""
    now = now or timeutil.now()
    by = Counter()
    for state, channel, n in session.execute(select(OutboxMessage.state, OutboxMessage.channel, func.count())
                                             .group_by(OutboxMessage.state, OutboxMessage.channel)):
        by[(state.value, channel.value)] = n
    oldest = session.scalar(select(func.min(OutboxMessage.created_at)).where(
        OutboxMessage.state == OutboxState.pending))
    due = session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.state == OutboxState.pending, OutboxMessage.next_attempt_at <= now)) or 0
    unfanned = session.scalar(select(func.count()).select_from(Notice).where(Notice.fanout_at.is_(None))) or 0
    states = Counter()
    for (state, _), n in by.items():
        states[state] += n
    return {
        "states": {s.value: states.get(s.value, 0) for s in OutboxState},
        "by_channel": {f"{s}/{c}": n for (s, c), n in sorted(by.items())},
        "due": due,
        "oldest_pending_seconds": round((now - timeutil.aware(oldest)).total_seconds(), 1) if oldest else None,
        "notices_waiting_fanout": unfanned,
    }


# --- delivering -----------------------------------------------------------------------------------------

@dataclass
class Settings:
    batch: int = 100  # messages claimed at once (and notices fanned out at once)
    lease: float = 60.0  # seconds a claim is ours; longer than any send's timeout
    max_attempts: int = 8  # per round; then dead
    backoff: float = 10.0  # first retry after about this many seconds, doubling
    max_backoff: float = 3600.0
    concurrency: int = 4  # sends in flight per worker (threads)
    link_base: str | None = None  # absolute base for links in e-mail, SMS and template messages
    miniprogram_appid: str | None = None
    official_appid: str | None = None

    @classmethod
    def from_config(cls, cfg: Mapping) -> Settings:
        return cls(batch=int(cfg.get("OUTBOX_BATCH") or 100), lease=float(cfg.get("OUTBOX_LEASE") or 60),
                   max_attempts=int(cfg.get("OUTBOX_MAX_ATTEMPTS") or 8),
                   backoff=float(cfg.get("OUTBOX_BACKOFF") if cfg.get("OUTBOX_BACKOFF") is not None else 10),
                   max_backoff=float(cfg.get("OUTBOX_MAX_BACKOFF") or 3600),
                   concurrency=int(cfg.get("OUTBOX_CONCURRENCY") or 4),
                   link_base=cfg.get("OUTBOX_LINK_BASE") or None,
                   miniprogram_appid=cfg.get("MINIPROGRAM_APPID") or None,
                   official_appid=cfg.get("WECHAT_APPID") or None)


@dataclass
class Round:
    """What one pass of the worker did."""
    fanned_out: int = 0  # notices
    created: int = 0  # messages made by fan-out
    claimed: int = 0
    outcomes: Counter = field(default_factory=Counter)  # sent / retry / dead / lost

    def __bool__(self) -> bool:
        return bool(self.fanned_out or self.claimed)


@dataclass
class Claimed:
    """What a worker holds of a message it leased: enough to send it and decide what comes next."""
    COLUMNS = ("id", "kind", "dedupe_key", "account_id", "payload", "channels", "channel_index", "address_sealed",
               "attempts", "created_at", "lease_until")

    id: int
    kind: str
    dedupe_key: str
    account_id: int | None
    payload: dict
    channels: list[str]
    channel_index: int
    address_sealed: bytes | None
    attempts: int
    created_at: datetime
    lease_until: datetime
    contacts: dict = field(default_factory=dict)  # channel -> openid | ContactPoint, looked up at claim time


def _lines(body: dict) -> list[str]:
    lines = body.get("lines") if isinstance(body, dict) else None
    if isinstance(lines, list):
        return [str(x) for x in lines][:10]
    return []


class Worker:
    """Fans out notices and delivers due messages. Thread-safe; several may run in several processes."""

    def __init__(self, engine: Engine, keys: Keys, senders: Mapping[Channel, Sender], settings: Settings | None = None,
                 *, name: str | None = None, rng: random.Random | None = None, owns_engine: bool = False):
        self.engine = engine
        self.owns_engine = owns_engine  # close() disposes of it
        self.keys = keys
        self.senders = dict(senders)
        self.settings = settings or Settings()
        self.name = (name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(2).hex()}")[:48]
        self.rng = rng or random.Random()
        self._claims = itertools.count(1)
        self._claims_lock = threading.Lock()
        self.postgres = engine.dialect.name == "postgresql"

    def close(self) -> None:
        """Close the senders' connections (SMTP, HTTP pools), and the engine if it is the worker's own."""
        close_all(self.senders)
        if self.owns_engine:
            self.engine.dispose()

    def session(self) -> Session:
        s = Session(self.engine, expire_on_commit=False)
        s.info["xinma.keys"] = self.keys
        return s

    # --- fan-out ---

    def _appid(self, channel: Channel) -> str | None:
        sender = self.senders.get(channel)
        appid = getattr(sender, "appid", None)
        if appid:
            return appid
        return self.settings.miniprogram_appid if channel == Channel.subscribe else self.settings.official_appid

    def fanout(self, *, now: datetime | None = None, limit: int | None = None) -> tuple[int, int]:
        """Turn up to ``limit`` notices not yet fanned out into messages; returns (notices, messages)."""
        now = now or timeutil.now()
        limit = limit or self.settings.batch
        with self.session() as s, s.begin():
            q = (select(Notice.id, Notice.subject_id, Notice.kind, Notice.title, Notice.body, Notice.page,
                        Notice.created_at)
                 .where(Notice.fanout_at.is_(None)).order_by(Notice.id).limit(limit))
            if self.postgres:
                q = q.with_for_update(skip_locked=True)
            notices = s.execute(q).all()
            if not notices:
                return 0, 0
            recipients = self._recipients(s, {n.subject_id for n in notices})
            rows = []
            for n in notices:
                for account_id, channels in recipients.get(n.subject_id, []):
                    if not channels:
                        continue
                    rows.append({
                        "dedupe_key": f"notice:{n.id}:{account_id}", "kind": n.kind, "notice_id": n.id,
                        "account_id": account_id, "channels": [c.value for c in channels], "channel_index": 0,
                        "channel": channels[0], "state": OutboxState.pending, "attempts": 0,
                        "next_attempt_at": now, "created_at": now,
                        "payload": {"title": n.title, "lines": _lines(n.body), "page": n.page,
                                    "at": timeutil.aware(n.created_at).isoformat()},
                    })
            created = self._insert_new(s, rows)
            s.execute(update(Notice).where(Notice.id.in_([n.id for n in notices])).values(fanout_at=now))
        if created:
            log.info("outbox fan-out", extra={"notices": len(notices), "messages": created, "worker": self.name})
        return len(notices), created

    def _insert_new(self, s: Session, rows: list[dict]) -> int:
        if not rows:
            return 0
        table = OutboxMessage.__table__
        if self.postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            stmt = pg_insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert
            stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        return len(s.execute(stmt.returning(table.c.id), rows).all())  # rowcount of executemany is -1 on psycopg

    def _recipients(self, s: Session, subject_ids: set[int]) -> dict[int, list[tuple[int, list[Channel]]]]:
        """subject id -> [(account id, channel order)] for the active accounts that speak for it."""
        accounts: dict[int, set[int]] = defaultdict(set)
        for aid, sid in s.execute(select(Account.id, Account.subject_id).where(
                Account.subject_id.in_(subject_ids), Account.status == Status.approved)):
            accounts[sid].add(aid)
        for aid, sid in s.execute(select(RoleGrant.account_id, RoleGrant.subject_id)
                                  .join(Account, Account.id == RoleGrant.account_id)
                                  .where(RoleGrant.role == Role.enterprise_agent, RoleGrant.subject_id.in_(subject_ids),
                                         Account.status == Status.approved)):
            accounts[sid].add(aid)
        everyone = set().union(*accounts.values()) if accounts else set()
        if not everyone:
            return {}
        bound: dict[int, set[Channel]] = defaultdict(set)
        appids = {self._appid(Channel.subscribe): Channel.subscribe, self._appid(Channel.template): Channel.template}
        appids.pop(None, None)
        if appids:
            for aid, appid in s.execute(select(WeChatIdentity.account_id, WeChatIdentity.appid).where(
                    WeChatIdentity.account_id.in_(everyone), WeChatIdentity.appid.in_(list(appids)))):
                bound[aid].add(appids[appid])
        for aid, kind in s.execute(select(ContactPoint.account_id, ContactPoint.kind).where(
                ContactPoint.account_id.in_(everyone))):
            bound[aid].add(Channel.email if kind == ContactKind.email else Channel.sms)
        out: dict[int, list[tuple[int, list[Channel]]]] = {}
        for sid, aids in accounts.items():
            out[sid] = [(aid, [c for c in CHANNEL_ORDER if c in bound[aid] and c in self.senders])
                        for aid in sorted(aids)]
        return out

    # --- claiming ---

    def claim(self, *, now: datetime | None = None, limit: int | None = None) -> tuple[str, list[Claimed]]:
        """Lease up to ``limit`` due messages to this worker: (claim token, what it needs to send them)."""
        now = now or timeutil.now()
        with self._claims_lock:
            token = f"{self.name}/{next(self._claims)}"
        t = OutboxMessage.__table__
        due = (select(t.c.id).where(t.c.state == OutboxState.pending.value, t.c.next_attempt_at <= now,
                                    or_(t.c.lease_until.is_(None), t.c.lease_until < now))
               .order_by(t.c.next_attempt_at, t.c.id).limit(limit or self.settings.batch))
        if self.postgres:
            due = due.with_for_update(skip_locked=True)
        with self.session() as s, s.begin():
            rows = s.execute(update(t).where(t.c.id.in_(due.scalar_subquery()))
                             .values(lease_until=now + timedelta(seconds=self.settings.lease), leased_by=token)
                             .returning(*(t.c[name] for name in Claimed.COLUMNS))).all()
            claimed = sorted((Claimed(**row._mapping) for row in rows), key=lambda c: c.id)
            self._look_up_addresses(s, claimed)
        return token, claimed

    def _look_up_addresses(self, s: Session, batch: list[Claimed]) -> None:
        """Every address the batch may need, in two queries (openids of both apps, contact points)."""
        accounts = {c.account_id for c in batch if c.account_id is not None}
        if not accounts:
            return
        appids = {self._appid(Channel.subscribe): Channel.subscribe, self._appid(Channel.template): Channel.template}
        appids.pop(None, None)
        openids: dict[tuple[int, Channel], str] = {}
        if appids:
            for aid, appid, openid in s.execute(
                    select(WeChatIdentity.account_id, WeChatIdentity.appid, WeChatIdentity.openid)
                    .where(WeChatIdentity.account_id.in_(accounts), WeChatIdentity.appid.in_(list(appids)))
                    .order_by(WeChatIdentity.id)):
                openids[(aid, appids[appid])] = openid  # the newest binding wins
        points = {(p.account_id, p.kind): p for p in s.scalars(
            select(ContactPoint).where(ContactPoint.account_id.in_(accounts)))}
        for c in batch:
            for ch in c.channels:
                channel = Channel(ch)
                if channel in CONTACT_OF:
                    point = points.get((c.account_id, CONTACT_OF[channel]))
                    if point is not None:
                        c.contacts[channel] = point
                elif (c.account_id, channel) in openids:
                    c.contacts[channel] = openids[(c.account_id, channel)]

    # --- one message ---

    def _address(self, c: Claimed, channel: Channel) -> str | None:
        """The clear address, unsealed at the moment of sending only."""
        if channel in CONTACT_OF and c.address_sealed is not None:
            return self.keys.unseal(c.address_sealed, bound_to=_direct_bound(c.dedupe_key)).decode()
        found = c.contacts.get(channel)
        if isinstance(found, ContactPoint):
            return contacts.unseal(self.keys, found)
        return found

    def _outgoing(self, c: Claimed, channel: Channel) -> Outgoing:
        p = c.payload or {}
        url = p.get("url")
        if not url and p.get("page") and self.settings.link_base:
            url = self.settings.link_base.rstrip("/") + "/" + str(p["page"]).lstrip("/")
        at = p.get("at")
        try:
            when = datetime.fromisoformat(at) if isinstance(at, str) else timeutil.aware(c.created_at)
        except ValueError:
            when = timeutil.aware(c.created_at)
        return Outgoing(id=c.id, kind=c.kind, key=f"xinma-{c.id}-{channel.value}", title=str(p.get("title", "")),
                        lines=[str(x) for x in p.get("lines") or []], url=url, page=p.get("page"),
                        at=timeutil.aware(when))

    def deliver(self, c: Claimed, token: str, *, now: datetime | None = None) -> str:
        """Try a claimed message on its channel (and the next ones, when a channel cannot reach the person).

        Returns sent, retry, dead, or lost (the lease went to another worker meanwhile)."""
        while True:
            started = timeutil.now()
            if (now or started) >= c.lease_until:
                # Paused past our lease (a long GC, a suspended VM): another worker may hold it now. Do not send.
                log.warning("outbox lease ran out before sending", extra={"message_id": c.id, "worker": self.name})
                return "lost"
            channel = Channel(c.channels[c.channel_index])
            sender = self.senders.get(channel)
            if sender is None:
                outcome = Outcome(NEXT, reply="channel not configured")
            elif not sender.can_send(c.kind):
                outcome = Outcome(NEXT, reply="no template configured for this kind")
            elif (address := self._address(c, channel)) is None:
                outcome = Outcome(NEXT, reply="unbound: no address for this channel")
            else:
                outcome = sender.send(address, self._outgoing(c, channel))
            result = self._record(c, token, channel, outcome, started, now)
            if result != "next":
                return result

    def _backoff(self, attempts: int, min_delay: float | None) -> float:
        ceiling = min(self.settings.max_backoff, self.settings.backoff * 2 ** max(0, attempts - 1))
        delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)  # jitter: failed messages do not stampede back
        if min_delay:
            delay = max(delay, min(self.settings.max_backoff, min_delay) * self.rng.uniform(1.0, 1.5))
        return delay

    def _record(self, c: Claimed, token: str, channel: Channel, outcome: Outcome, started: datetime,
                now: datetime | None) -> str:
        """Record the attempt and move the message on, in one transaction with the hooks.

        While the lease is ours nobody else changes the message, so the next state is computed from the claimed
        snapshot and written with an update conditional on the lease: three round trips (update, insert,
        commit). When the condition fails, the lease ran out and another worker holds the message (or it is
        settled): the attempt is kept as evidence, and only a success settles it."""
        finished = timeutil.now()
        clock = now or finished
        t = OutboxMessage.__table__
        attempts = c.attempts + 1
        values: dict = {"attempts": attempts, "lease_until": None, "leased_by": None}
        result = final = outcome.outcome
        if outcome.outcome == SENT:
            values |= {"state": OutboxState.sent.value, "sent_at": clock, "external_id": outcome.external_id}
            result = "sent"
        else:
            values["last_error"] = (f"{channel.value}: {outcome.code} {outcome.reply or ''}" if outcome.code is not None
                                    else f"{channel.value}: {outcome.reply or ''}")[:300]
            if outcome.outcome == NEXT and c.channel_index + 1 < len(c.channels):
                values |= {"channel_index": c.channel_index + 1, "channel": c.channels[c.channel_index + 1]}
                del values["lease_until"], values["leased_by"]  # still ours: the next channel at once
                result = "next"
            elif outcome.outcome == NEXT or attempts >= self.settings.max_attempts:
                values |= {"state": OutboxState.dead.value, "dead_at": clock}
                result = final = "dead"
            else:
                values["next_attempt_at"] = clock + timedelta(seconds=self._backoff(attempts, outcome.min_delay))
                result = "retry"
        with self.engine.begin() as s:  # Core: the hot path of every attempt; hooks get a Session on it
            ours = s.execute(update(t).where(t.c.id == c.id, t.c.leased_by == token,
                                             t.c.state == OutboxState.pending.value).values(**values)).rowcount == 1
            if not ours:
                final = f"{outcome.outcome}-late"[:16]
                result = "lost"
                if outcome.outcome == SENT and s.execute(
                        update(t).where(t.c.id == c.id, t.c.state == OutboxState.pending.value)
                        .values(state=OutboxState.sent.value, sent_at=clock, external_id=outcome.external_id)
                ).rowcount == 1:
                    final, result = SENT, "sent"
            a = OutboxAttempt.__table__
            number = (select(func.coalesce(func.max(a.c.number), 0) + 1).where(a.c.message_id == c.id)
                      .scalar_subquery())
            attempt_id = s.execute(insert(a).values(
                message_id=c.id, number=number, channel=channel.value, outcome=final, errcode=outcome.code,
                reply=outcome.reply, worker=self.name, started_at=started, finished_at=finished)
                .returning(a.c.id)).scalar()
            if result in ("sent", "dead"):
                self._settled(s, c, attempt_id, result, outcome)
        if result == "next":
            c.channel_index += 1
        c.attempts = attempts
        return result

    def _settled(self, conn, c: Claimed, attempt_id: int, state: str, outcome: Outcome) -> None:
        hooks = _HOOKS.get(c.kind, ())
        if hooks:
            with Session(bind=conn, expire_on_commit=False) as s:  # in the recording transaction
                s.info["xinma.keys"] = self.keys
                m = s.get(OutboxMessage, c.id)
                attempt = s.get(OutboxAttempt, attempt_id)
                for hook in hooks:
                    hook(s, m, state, attempt)
                s.flush()
        log.info("outbox %s", state, extra={"message_id": c.id, "kind": c.kind,
                                            "channel": c.channels[c.channel_index], "code": outcome.code,
                                            "worker": self.name})

    # --- passes ---

    def run_once(self, *, now: datetime | None = None, pool: ThreadPoolExecutor | None = None) -> Round:
        """One pass: fan out a batch of notices, claim a batch of due messages and deliver them."""
        r = Round()
        r.fanned_out, r.created = self.fanout(now=now)
        token, batch = self.claim(now=now)
        r.claimed = len(batch)
        if batch:
            if pool is not None and len(batch) > 1:
                results = list(pool.map(lambda c: self._safe_deliver(c, token, now), batch))
            else:
                results = [self._safe_deliver(c, token, now) for c in batch]
            r.outcomes.update(results)
        return r

    def _safe_deliver(self, c: Claimed, token: str, now: datetime | None) -> str:
        try:
            return self.deliver(c, token, now=now)
        except Exception:  # one bad message must not stop the batch; its lease lapses, it comes back
            log.exception("outbox delivery failed", extra={"message_id": c.id, "worker": self.name})
            return "error"

    def drain(self, *, now: datetime | None = None, max_rounds: int = 10_000, stop: threading.Event | None = None,
              pool: ThreadPoolExecutor | None = None) -> Round:
        """Passes until nothing is due (messages waiting for a retry later are left alone)."""
        total = Round()
        for _ in range(max_rounds):
            if stop is not None and stop.is_set():
                break
            r = self.run_once(now=now, pool=pool)
            total.fanned_out += r.fanned_out
            total.created += r.created
            total.claimed += r.claimed
            total.outcomes.update(r.outcomes)
            if not r:
                break
        return total

    def run(self, stop: threading.Event, *, idle: float = 1.0, on_round: Callable[[Round], None] | None = None) -> None:
        """Until ``stop`` is set: passes back to back while there is work, else a nap of ``idle`` seconds.

        A pass in flight finishes (its sends complete and are recorded) before the loop looks at ``stop``."""
        with ThreadPoolExecutor(max_workers=max(1, self.settings.concurrency),
                                thread_name_prefix="outbox") as pool:
            while not stop.is_set():
                try:
                    r = self.run_once(pool=pool)
                except Exception:  # the database went away for a moment: nap and go on
                    log.exception("outbox pass failed", extra={"worker": self.name})
                    stop.wait(max(idle, 1.0))
                    continue
                if on_round is not None and r:
                    on_round(r)
                if not r:
                    stop.wait(idle)

