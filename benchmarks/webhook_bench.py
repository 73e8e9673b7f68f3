"""The WeChat webhook under load next to WeRoBot's echo bot, both under gunicorn, measured in one run.

    python -m benchmarks.webhook_bench                          # every scenario, 15 s each, 8 connections
    python -m benchmarks.webhook_bench --scenarios werobot help-plain --duration 30
    python -m benchmarks.webhook_bench --rounds 2 --duration 10 # the scenarios twice over, in turn (docs/benchmarks.md)
    python -m benchmarks.webhook_bench --profile 25             # CPU per message in-process, cProfile's top 25
    python -m benchmarks.webhook_bench --instructions           # instructions per message (valgrind): load-proof

One run does, in order:
1. the reference: WeRoBot (PyPI werobot) with one handler that echoes a text message, as its documentation's
   first example, under gunicorn (sync, --workers as ours) on 127.0.0.1 — once with WeRoBot's defaults
   (a session per user in SQLite, read and committed on every message) and once with sessions off;
2. our app as production runs it (webhooks/gunicorn_conf.py: sync workers, JSON logs at INFO) on a
   PostgreSQL schema of its own (XINMA_BENCH_DATABASE_URL or the local default), migrated and seeded with
   an approved organisation, a measure, --citizens citizens and --clerks clerks, each bound to an
   official-account openid, and enough fresh tokens for every scan;
3. per scenario, wrk (Debian: apt-get install wrk) on loopback posting pre-built, signed WeChat XML: every
   message is new (its own MsgId, or for events its own sender + CreateTime), so every one is stored once
   by the webhook's dedupe, and every scan carries a fresh, valid token of another citizen;
   a short warm-up, then the timed phase; the CPU used by the server, PostgreSQL and wrk is read from /proc;
4. a check that the answers were what they should be (one reply of each kind decoded before the load; rows
   stored and redemptions made afterwards), and a table: messages/s, p50, p99, ratio to WeRoBot's echo.

Scenarios: werobot, werobot-nosession, help-plain, help-aes (帮助: dedupe only), incentives-plain,
incentives-aes (我的权益: account look-up, the measures, dedupe), scan-plain, scan-aes (a bound clerk's
menu scan: scancode_waitmsg → a redemption). Everything it creates is dropped at the end, also on failure.
"""
from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pstats
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import xmltodict
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wechatpy.crypto import WeChatCrypto

from handlers import accounts, identifiers, migrate, signing, subjects, wechat_users
from handlers.db import make_engine, scratch_schema
from handlers.models import (
    Incentive,
    IncentiveStatus,
    Organisation,
    OrganisationKind,
    Period,
    Redemption,
    Role,
    Scenario,
    Status,
    Subject,
    WeChatInbound,
)
from handlers.privacy import Keys
from webhooks import gunicorn_conf
from webhooks.wechat_emulator import (
    DEMO_AES_KEY,
    DEMO_APPID,
    DEMO_SECRET,
    DEMO_TOKEN,
    build_xml,
    signature,
)

from ._common import (
    PG_DEFAULT,
    SECRET,
    CpuSnapshot,
    backends,
    gunicorn,
    issue_tokens,
    load_average,
    machine,
    window_for,
    xinma_server,
)

PATH = "/webhooks/wechat"
APPLICATION_NAME = "xinma-webhook-bench"  # our server's PostgreSQL connections, to count their CPU
ORIGINAL_ID = "gh_xinma_bench"
MEASURE_TITLE = "西湖观光车免费乘坐（压测）"
WEROBOT = ("werobot", "werobot-nosession")
SCENARIOS = (*WEROBOT, "help-plain", "help-aes", "incentives-plain", "incentives-aes", "scan-plain", "scan-aes")
# What one answer of each scenario must contain (checked on a decoded reply before the load).
EXPECT = {"help": "以下指令", "incentives": MEASURE_TITLE, "scan": "✅ 核销成功", "werobot": "回声"}
WECHAT_ENV = {"XINMA_WECHAT_TOKEN": DEMO_TOKEN, "XINMA_WECHAT_AES_KEY": DEMO_AES_KEY, "XINMA_WECHAT_APPID": DEMO_APPID,
              # Set as in production; nothing measured here calls WeChat, and a call would fail at once.
              "XINMA_WECHAT_SECRET": DEMO_SECRET, "XINMA_WECHAT_API_BASE": "http://127.0.0.1:9"}


# --- WeRoBot's echo bot (gunicorn imports it: benchmarks.webhook_bench:werobot_app()) -----------------

def werobot_app():
    """WeRoBot's first example, echoing: with its default session store (SQLite) unless told otherwise."""
    import werobot
    from werobot.session.sqlitestorage import SQLiteStorage

    where = os.environ.get("XINMA_BENCH_WEROBOT_SESSION", "werobot_session.sqlite3")
    robot = werobot.WeRoBot(token=DEMO_TOKEN, SESSION_STORAGE=False if where == "off" else SQLiteStorage(where))

    @robot.text
    def echo(message):
        return "回声: " + message.content

    return robot.wsgi


# --- WeChat's side: signed (and encrypted) requests ----------------------------------------------------

def crypto() -> WeChatCrypto:
    return WeChatCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID)


def text_fields(openid: str, content: str, msg_id: int, create_time: int) -> dict:
    return {"ToUserName": ORIGINAL_ID, "FromUserName": openid, "CreateTime": create_time, "MsgType": "text",
            "Content": content, "MsgId": msg_id}


def scan_fields(openid: str, token: str, create_time: int) -> dict:
    """The menu's scan button (scancode_waitmsg): no MsgId, so sender + CreateTime make the message's key."""
    return {"ToUserName": ORIGINAL_ID, "FromUserName": openid, "CreateTime": create_time, "MsgType": "event",
            "Event": "scancode_waitmsg", "EventKey": "scan",
            "ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": token}}


def signed_request(fields: dict, aes: WeChatCrypto | None, nonce: str, timestamp: int) -> tuple[str, str]:
    """(path with query, body) as WeChat posts it: plaintext, or safe mode (AES) when ``aes`` is given."""
    ts = str(timestamp)
    plain = build_xml(fields)
    query = {"signature": signature(DEMO_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
             "openid": fields["FromUserName"]}
    if aes is None:
        return f"{PATH}?{urlencode(query)}", plain
    enc = xmltodict.parse(aes.encrypt_message(plain, nonce, ts))["xml"]
    query |= {"encrypt_type": "aes", "msg_signature": enc["MsgSignature"]}
    return f"{PATH}?{urlencode(query)}", build_xml({"ToUserName": ORIGINAL_ID, "Encrypt": enc["Encrypt"]})


def read_reply(body: str) -> tuple[dict | None, bool]:
    """A reply's fields, decrypted when it came encrypted; and whether it did."""
    if body.strip() in ("", "success"):
        return None, False
    parsed = xmltodict.parse(body)["xml"]
    if "Encrypt" not in parsed:
        return dict(parsed), False
    plain = crypto().decrypt_message(parsed, parsed["MsgSignature"], parsed["TimeStamp"], parsed["Nonce"])
    return dict(xmltodict.parse(plain)["xml"]), True


@dataclass
class Plan:
    """Where every message of one scenario comes from: senders, and for scans the tokens to use up."""
    kind: str  # help, incentives, scan, werobot
    aes: bool
    openids: list[str]
    tokens: list[str] | None = None


class Messages:
    """Fresh messages of one scenario, one after another: MsgIds, and CreateTimes per sender, never repeat."""

    def __init__(self, plan: Plan, seed: int):
        self.plan, self.n = plan, 0
        self.crypto = crypto() if plan.aes else None
        self.rng = random.Random(seed)
        self.now = int(time.time())
        self.msg_base = seed * 10**12 + self.now * 1000

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self

    def __next__(self) -> tuple[str, str]:
        plan, n = self.plan, self.n
        self.n += 1
        openid = plan.openids[n % len(plan.openids)]
        if plan.kind == "scan":
            if not plan.tokens:
                raise StopIteration
            # A clerk's n-th scan claims a second of its own (counting back from now): WeChat's key for
            # an event is sender + CreateTime, and a clerk scanning twice in one second would be a retry.
            fields = scan_fields(openid, plan.tokens.pop(), self.now - n // len(plan.openids))
        else:
            content = {"help": "帮助", "incentives": "我的权益"}.get(plan.kind, f"你好 {n}")
            fields = text_fields(openid, content, self.msg_base + n, self.now)
        return signed_request(fields, self.crypto, str(self.rng.randrange(10**9)), self.now)


# --- the seeded world ---------------------------------------------------------------------------------

def seed(url: str, *, citizens: int, clerks: int) -> dict:
    keys = Keys.from_secret(SECRET)
    rng = random.Random(2026)
    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as s:
            org = Organisation(name="西湖景区观光车（压测）", kind=OrganisationKind.institution, status=Status.approved)
            s.add(org)
            s.flush()
            measure = Incentive(organisation_id=org.id, title=MEASURE_TITLE, scenario=Scenario.tourism,
                                eligible_colours=["green", "blue"], eligible_kinds=["person"],
                                limit_count=1_000_000, limit_period=Period.day, venues=["西湖"],
                                status=IncentiveStatus.open)
            s.add(measure)
            s.flush()
            citizen_ids, people = [], []  # openids, subject ids
            for i in range(citizens):
                person = subjects.upsert(s, keys, kind="person", identifier=identifiers.make_resident_id(rng),
                                         name="王小明")
                account = accounts.create(s, f"bench-citizen-{i}", subject_id=person.id, status=Status.approved)
                openid = f"oBenchCitizen{i:015d}"
                wechat_users.bind(s, account, DEMO_APPID, openid)
                citizen_ids.append(openid)
                people.append(person.id)
            clerk_ids = []
            for i in range(clerks):
                account = accounts.create(s, f"bench-clerk-{i}", status=Status.approved)
                accounts.grant(s, account, Role.clerk, organisation_id=org.id)
                openid = f"oBenchClerk{i:017d}"
                wechat_users.bind(s, account, DEMO_APPID, openid).incentive_id = measure.id  # the chosen measure
                clerk_ids.append(openid)
            s.commit()
        return {"citizens": citizen_ids, "clerks": clerk_ids, "subjects": people, "incentive_id": measure.id}
    finally:
        engine.dispose()


def fresh_tokens(url: str, data: dict, n: int, seconds_needed: float) -> list[str]:
    """At least ``n`` tokens of the seeded citizens, valid for ``seconds_needed`` from now, in random order.

    Issued per scenario, just before it runs: a token window lasts ten minutes at most."""
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            people = s.scalars(select(Subject).where(Subject.id.in_(data["subjects"]))).all()
            out = issue_tokens(s, signing.KeyRing(Keys.from_secret(SECRET)), people, -(-n // len(people)),
                               window_for(seconds_needed))
            s.commit()
    finally:
        engine.dispose()
    random.Random(n).shuffle(out)  # consecutive scans meet different citizens
    return out


def counts(url: str) -> tuple[int, int]:
    """(messages stored by the dedupe, redemptions) so far, in one snapshot."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return tuple(c.execute(select(select(func.count()).select_from(WeChatInbound).scalar_subquery(),
                                          select(func.count()).select_from(Redemption).scalar_subquery())).one())
    finally:
        engine.dispose()


# --- wrk --------------------------------------------------------------------------------------------

# Each wrk thread takes every n-th pre-built request of the file (so no two threads send the same message)
# and sends them in order; running out would mean resending (a retry, not a new message): reported.
WRK_LUA = r"""
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local nthreads = tonumber(args[2])
  reqs, idx, wrapped = {}, 0, 0
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", line:sub(1, tab - 1), {["Content-Type"] = "text/xml"}, line:sub(tab + 1))
    end
    i = i + 1
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then idx, wrapped = 1, wrapped + 1 end
  return reqs[idx]
end
function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wrapped") end
  local e = summary.errors
  io.write(string.format(
    'XINMA-WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f, "non_2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "wrapped": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.status, e.connect, e.read, e.write, e.timeout, w))
end
"""


def write_requests(messages: Messages, n: int, path: Path) -> int:
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        for target, body in messages:
            f.write(f"{target}\t{body}\n")
            written += 1
            if written >= n:
                break
    return written


def wrk(port: int, requests_file: Path, script: Path, *, seconds: float, connections: int, threads: int) -> dict:
    """One wrk run; its result, and the CPU seconds wrk itself used (it is our child: RUSAGE_CHILDREN)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
                          "-s", str(script), f"http://127.0.0.1:{port}", "--", str(requests_file), str(threads)],
                         capture_output=True, text=True, check=True, timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.stdout.splitlines() if x.startswith("XINMA-WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    result = json.loads(line.split(" ", 1)[1])
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


# --- one scenario -----------------------------------------------------------------------------------

def check_first(name: str, port: int, plan: Plan, target: str, body: str) -> None:
    """Post one message before the load and read its answer: the right reply, encrypted when the message was."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", target, body.encode("utf-8"), {"Content-Type": "text/xml"})
        resp = conn.getresponse()
        text = resp.read().decode("utf-8")
    finally:
        conn.close()
    reply, encrypted = read_reply(text) if resp.status == 200 else (None, False)
    if reply is None or EXPECT[plan.kind] not in reply.get("Content", "") or encrypted != plan.aes:
        raise SystemExit(f"{name}: the first message was answered {resp.status} {text[:300]!r} "
                         f"({reply!r}); expected {EXPECT[plan.kind]!r}{', encrypted' if plan.aes else ''}")


def measure(name: str, port: int, master: int, plan: Plan, args, workdir: Path, *, url: str | None,
            round_: int = 0) -> dict:
    script = workdir / "post.lua"
    script.write_text(WRK_LUA)
    messages = Messages(plan, seed=100 * round_ + SCENARIOS.index(name) + 1)
    check_first(name, port, plan, *next(messages))
    warm_file, timed_file = workdir / f"{name}-{round_}-warm.txt", workdir / f"{name}-{round_}-timed.txt"
    write_requests(messages, int(args.warmup * args.max_rate) + args.connections, warm_file)
    built = write_requests(messages, int(args.duration * args.max_rate) + args.connections, timed_file)
    warm = wrk(port, warm_file, script, seconds=args.warmup, connections=args.connections, threads=args.wrk_threads)
    load = load_average()
    # Our server's own PostgreSQL backends (its pool, by application_name), alive since the warm-up.
    pg = backends(url, APPLICATION_NAME) if url else []
    cpu0 = CpuSnapshot.take(master, pg)
    result = wrk(port, timed_file, script, seconds=args.duration, connections=args.connections,
                 threads=args.wrk_threads)
    cpu1 = CpuSnapshot.take(master, pg)
    # Server and PostgreSQL per second of the timed phase; wrk and the machine over the whole wrk run (which
    # includes wrk loading its requests): upper bounds for the load generator's share.
    seconds = result["duration_us"] / 1e6
    busy = (cpu1.busy - cpu0.busy) / max(cpu1.total - cpu0.total, 1e-9) * (os.cpu_count() or 1)
    result |= {"name": name, "round": round_, "per_s": result["requests"] / seconds, "seconds": seconds, "built": built,
               "load": load, "answered": 1 + warm["requests"] + result["requests"],
               "wrapped": warm["wrapped"] + result["wrapped"],
               "cpu": {"server": (cpu1.server - cpu0.server) / seconds,
                       "postgres": (cpu1.postgres - cpu0.postgres) / seconds,
                       "wrk": result["cpu_s"] / ((cpu1.total - cpu0.total) / (os.cpu_count() or 1)),
                       "machine": busy}}
    result["server_ms_per_msg"] = (cpu1.server - cpu0.server) / max(result["requests"], 1) * 1000
    return result


# --- in-process CPU per message (--profile) ----------------------------------------------------------

def inprocess_app(url: str):
    """Our app in this process, configured as the servers are, logging JSON at INFO to /dev/null."""
    from webhooks import create_app
    from webhooks.observability import configure_logging

    configure_logging("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    return create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": False,
                       "INSTANCE_PATH": tempfile.mkdtemp(prefix="xinma-prof-"),
                       **{k.removeprefix("XINMA_"): v for k, v in WECHAT_ENV.items()}})


def statements(url: str, data: dict) -> dict[str, list[str]]:
    """The SQL statements one message of each kind costs (the third of its kind: caches are warm)."""
    from sqlalchemy import event
    from werkzeug.test import Client

    app = inprocess_app(url)
    seen: list[str] = []
    event.listen(app.extensions["xinma.engine"], "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: seen.append(" ".join(stmt.split())))
    client, out = Client(app), {}
    for i, kind in enumerate(("help", "incentives", "scan")):
        tokens = fresh_tokens(url, data, 3, 120) if kind == "scan" else None
        messages = Messages(Plan(kind, False, data["clerks" if kind == "scan" else "citizens"], tokens), seed=90 + i)
        for _ in range(3):
            seen.clear()
            target, body = next(messages)
            r = client.post(target, data=body.encode("utf-8"), content_type="text/xml")
            assert r.status_code == 200 and EXPECT[kind] in (read_reply(r.get_data(as_text=True))[0] or {}).get(
                "Content", ""), r.get_data(as_text=True)[:300]
        out[kind] = list(seen)
    app.extensions["xinma.engine"].dispose()
    return out


def profile(url: str, data: dict, args) -> None:
    """CPU per message through the Flask app (Flask test client, logs at INFO to /dev/null), one thread;
    and WeRoBot's echo through its WSGI app, for comparison. PostgreSQL's own work is not counted."""
    from werkzeug.test import Client

    app = inprocess_app(url)
    tmp = Path(tempfile.mkdtemp(prefix="xinma-werobot-"))
    os.environ["XINMA_BENCH_WEROBOT_SESSION"] = str(tmp / "session.sqlite3")
    apps = {"werobot": werobot_app()}
    os.environ["XINMA_BENCH_WEROBOT_SESSION"] = "off"
    apps["werobot-nosession"] = werobot_app()
    for name in args.scenarios:
        client = Client(apps.get(name, app))
        messages = Messages(plan_for(name, data, args.profile_n + 50, url, 300), seed=SCENARIOS.index(name) + 1)
        prepared = [next(messages) for _ in range(args.profile_n + 50)]

        def post(target: str, body: str, client: Client = client) -> None:
            r = client.post(target, data=body.encode("utf-8"), content_type="text/xml")
            assert r.status_code == 200, r.get_data(as_text=True)[:300]

        for target, body in prepared[:50]:
            post(target, body)
        # CPU time in batches: on a shared machine the least CPU per batch is the steadiest figure (others'
        # work only ever adds: cache misses, frequency); the median is shown beside it.
        prof = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits
        per_batch, wall = [], time.perf_counter()
        timed = prepared[50:]
        for i in range(0, len(timed), 100):
            cpu = time.process_time()
            if prof:
                prof.enable()
            for target, body in timed[i:i + 100]:
                post(target, body)
            if prof:
                prof.disable()
            per_batch.append((time.process_time() - cpu) / len(timed[i:i + 100]))
        wall = (time.perf_counter() - wall) / len(timed)
        per_batch.sort()
        print(f"{name:18} CPU {per_batch[0] * 1000:6.2f} ms/message (least of {len(per_batch)} batches; median "
              f"{per_batch[len(per_batch) // 2] * 1000:.2f}), wall {wall * 1000:6.2f} ms"
              f"{' (profiled)' if prof else ''}", flush=True)
        if prof:
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.profile)


def instructions(args) -> None:
    """Instructions per message: --profile under cachegrind with two message counts; the difference over the
    difference in messages leaves out start-up, seeding and warm-up. PostgreSQL's work is not counted."""
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind not found (Debian: apt-get install valgrind)")
    few, many = 100, 500

    def count(name: str, n: int) -> int:
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                              sys.executable, "-m", "benchmarks.webhook_bench", "--profile", "--scenarios", name,
                              "--profile-n", str(n), "--citizens", str(min(args.citizens, 50)),
                              "--clerks", str(min(args.clerks, 5))],
                             capture_output=True, text=True, check=True, timeout=3600)
        return int(re.search(r"I\s+refs:\s+([\d,]+)", out.stderr).group(1).replace(",", ""))

    print(f"instructions per message (cachegrind, {many} - {few} messages in one process):", flush=True)
    for name in args.scenarios:
        per = (count(name, many) - count(name, few)) / (many - few)
        print(f"  {name:18} {per / 1e6:6.2f} million", flush=True)


# --- the run -----------------------------------------------------------------------------------------

def plan_for(name: str, data: dict, n: int, url: str, seconds: float) -> Plan:
    """Senders of the scenario's messages; for scans, ``n`` fresh tokens valid for ``seconds``."""
    kind, _, mode = name.partition("-")
    if kind == "werobot":
        return Plan("werobot", False, [f"oWeRoBotUser{i:016d}" for i in range(len(data["citizens"]))])
    if kind == "scan":
        return Plan("scan", mode == "aes", data["clerks"], fresh_tokens(url, data, n, seconds))
    return Plan(kind, mode == "aes", data["citizens"])


@contextmanager
def werobot_server(session: str, workdir: Path, args) -> Iterator[tuple[int, list, int]]:
    options = ["--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
               "--keep-alive", "30", "--backlog", "2048"]
    env = {"XINMA_BENCH_WEROBOT_SESSION": session, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with gunicorn("benchmarks.webhook_bench:werobot_app()", options=options, env=env,
                  log_path=workdir / "werobot.log") as out:
        yield out


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def report(results: list[dict]) -> None:
    """Every scenario of every round, each ratio against WeRoBot's echo of the same round; then the medians."""
    def of(name: str, round_: int) -> dict | None:
        return next((r for r in results if r["name"] == name and r["round"] == round_), None)

    print(f"\n{'round scenario':23} {'msg/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'×echo':>6} {'×bare':>6} {'srv ms/msg':>10}  CPU cores: server pg wrk all   load   answers")
    for r in results:
        ref, bare = of("werobot", r["round"]), of("werobot-nosession", r["round"])
        r["ratio"] = r["per_s"] / ref["per_s"] if ref else None
        r["ratio_bare"] = r["per_s"] / bare["per_s"] if bare else None
        errors = sum(r[k] for k in ("non_2xx", "connect", "read", "write", "timeout"))
        answers = f"{errors} errors"
        if "stored" in r:  # wrk stops counting with requests in flight: up to --connections more rows per phase
            answers += f"; answered {r['answered']:,}, stored {r['stored']:,}, redeemed {r['redeemed']:,}"
        if r["wrapped"] and r["name"] not in WEROBOT:
            answers += f"; RESENT {r['wrapped']} times (raise --max-rate)"
        c = r["cpu"]
        ratios = "".join(f"{x:7.2f}" if x is not None else "      -" for x in (r["ratio"], r["ratio_bare"]))
        print(f"{r['round'] + 1:>5} {r['name']:17} {r['per_s']:7,.0f} {r['p50_us'] / 1000:7.1f} {r['p90_us'] / 1000:7.1f} "
              f"{r['p99_us'] / 1000:7.1f} {r['max_us'] / 1000:7.1f}{ratios} {r['server_ms_per_msg']:10.2f}"
              f"  {c['server']:11.2f} {c['postgres']:4.2f} {c['wrk']:3.2f} {c['machine']:4.2f}  {r['load']:>14}  "
              f"{answers}")
    names = list(dict.fromkeys(r["name"] for r in results))
    rounds = max(r["round"] for r in results) + 1 if results else 0
    if rounds > 1:
        print(f"\nmedians of {rounds} rounds:")
        for name in names:
            rs = [r for r in results if r["name"] == name]
            ratios = [r["ratio"] for r in rs if r["ratio"] is not None]
            print(f"      {name:17} {_median([r['per_s'] for r in rs]):7,.0f} {_median([r['p50_us'] for r in rs]) / 1000:7.1f}"
                  f" {'':7} {_median([r['p99_us'] for r in rs]) / 1000:7.1f} {'':7}"
                  f"{_median(ratios) if ratios else float('nan'):7.2f}")
    for name, words in (("incentives-plain", "我的权益"), ("help-plain", "帮助")):
        rs = [r for r in results if r["name"] == name and r["ratio"] is not None]
        if rs:
            ratio, p99 = _median([r["ratio"] for r in rs]), _median([r["p99_us"] for r in rs]) / 1000
            print(f"goal for {words}, plaintext: ≥ 1.5× WeRoBot's echo (its defaults) with p99 < 50 ms: {ratio:.2f}×, "
                  f"p99 {p99:.1f} ms{' (medians)' if len(rs) > 1 else ''}: {'met' if ratio >= 1.5 and p99 < 50 else 'missed'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), metavar="NAME",
                        help=f"which to run, in this order (default: all: {' '.join(SCENARIOS)})")
    parser.add_argument("--duration", type=float, default=15.0, help="timed phase per scenario, seconds (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up per scenario, seconds (default 3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections (default 8)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the scenarios this many times over, in turn (a busy machine's minutes differ)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk's threads (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, both servers (default 2)")
    parser.add_argument("--worker-class", default=gunicorn_conf.worker_class, help="both servers (default sync)")
    parser.add_argument("--threads", type=int, default=gunicorn_conf.threads)
    parser.add_argument("--citizens", type=int, default=500, help="bound citizens (text senders, scanned codes)")
    parser.add_argument("--clerks", type=int, default=50, help="bound clerks (scan senders)")
    parser.add_argument("--max-rate", type=float, default=3000.0,
                        help="messages built per second of each phase: more than any server answers (default 3000)")
    parser.add_argument("--log-level", default="INFO", help="our server's XINMA_LOG_LEVEL (INFO: as in production)")
    parser.add_argument("--profile", type=int, nargs="?", const=0, default=None, metavar="TOP",
                        help="no servers: CPU per message in this process (Flask test client); with TOP, "
                             "cProfile's top functions too")
    parser.add_argument("--profile-n", type=int, default=2000, help="messages per scenario with --profile")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort order with --profile")
    parser.add_argument("--instructions", action="store_true",
                        help="no servers: instructions per message of each scenario in this process, counted by "
                             "valgrind (cachegrind): the same on a busy machine as on a quiet one")
    args = parser.parse_args(argv)
    if args.instructions:
        instructions(args)
        return
    if args.profile is None and not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian: apt-get install wrk)")
    base = os.environ.get("XINMA_BENCH_DATABASE_URL", PG_DEFAULT)
    info = machine(base)
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()), f"load {load_average()}", flush=True)
    per_scan = int((args.duration + args.warmup) * args.max_rate) + 2 * args.connections + 10
    workdir = Path(tempfile.mkdtemp(prefix="xinma-webhook-bench-"))
    results = []
    with scratch_schema(base, "xinma_bench") as url:
        migrate.upgrade(url)
        t0 = time.perf_counter()
        data = seed(url, citizens=args.citizens, clerks=args.clerks)
        print(f"seeded {args.citizens} citizens, {args.clerks} clerks in {time.perf_counter() - t0:.1f} s", flush=True)
        ours = [n for n in args.scenarios if n not in WEROBOT]
        if ours:
            print("\nSQL statements per message (plaintext and AES alike):")
            for kind, stmts in statements(url, data).items():
                if any(n.startswith(kind) for n in ours):
                    print(f"  {kind}: {len(stmts)}")
                    for stmt in stmts:
                        print(f"      {stmt[:150]}")
        if args.profile is not None:
            profile(url, data, args)
            return
        for round_, name in ((i, n) for i in range(args.rounds) for n in args.scenarios):
            plan = plan_for(name, data, per_scan, url, args.duration + args.warmup + 120)
            if name in WEROBOT:
                session = "off" if name == "werobot-nosession" else str(workdir / "werobot_session.sqlite3")
                server = werobot_server(session, workdir, args)
            else:
                server = xinma_server(f"{url}&application_name={APPLICATION_NAME}", workers=args.workers,
                                      threads=args.threads, worker_class=args.worker_class, log_level=args.log_level, log_path=workdir / f"{name}-{round_}.log",
                                      env=WECHAT_ENV)
            before = counts(url)
            with server as (port, _cmd, master):
                r = measure(name, port, master, plan, args, workdir, url=None if name in WEROBOT else url,
                            round_=round_)
            if name not in WEROBOT:  # counted once the server has finished what was in flight
                r["stored"], r["redeemed"] = (a - b for a, b in zip(counts(url), before, strict=True))
            results.append(r)
            print(f"{round_ + 1}/{args.rounds} {name}: {r['per_s']:,.0f}/s, p50 {r['p50_us'] / 1000:.1f} ms, "
                  f"p99 {r['p99_us'] / 1000:.1f} ms "
                  f"(server {r['cpu']['server']:.2f} cores, PostgreSQL {r['cpu']['postgres']:.2f}, "
                  f"wrk {r['cpu']['wrk']:.2f}, machine {r['cpu']['machine']:.2f} of {os.cpu_count()} cores busy)",
                  flush=True)
    print(f"\nserver: gunicorn {args.worker_class} × {args.workers} workers on 127.0.0.1 for both (ours: "
          f"webhooks/gunicorn_conf.py, JSON logs at {args.log_level}); wrk {args.wrk_threads} thread(s), "
          f"{args.connections} connections, {args.warmup:g} s warm-up + {args.duration:g} s per scenario; "
          f"logs in {workdir}")
    report(results)


if __name__ == "__main__":
    main()
