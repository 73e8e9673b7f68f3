"""Redemptions over HTTP against PostgreSQL with a production server, next to pgbench -N.

    python -m benchmarks.redeem_bench                       # defaults: 20 s, 8 connections, the production server
    python -m benchmarks.redeem_bench --duration 30 --connections 32 --workers 2 --threads 8
    python -m benchmarks.redeem_bench --rate 600            # open loop: 600 requests/s, latency from the schedule

One run does, in order:
1. a PostgreSQL schema of its own (at XINMA_BENCH_DATABASE_URL or the local default), migrated;
   an approved organisation, --clerks clerks each with a bearer token (accounts.open_session),
   --subjects subjects, a measure for them with a high per-day limit and no stock, and enough fresh
   tokens (signing.issue_codes, one nonce each) for the whole run, in a random order;
2. the database round trips of one redemption through the real app (Flask test client, SQLAlchemy
   before_cursor_execute, and the exact round trips from libpq's protocol trace), printed;
3. gunicorn (`webhooks:create_app()`, as webhooks/gunicorn_conf.py sets it up, 127.0.0.1 only, XINMA_RATELIMIT_ENABLED=false) and a
   load generator in a separate process: Python threads, one keep-alive http.client connection each,
   POST /api/v1/redemptions with a fresh token per request; a warm-up, then the timed phase;
4. the baseline in the same run: `pgbench -N -c 8 -j 2` (simple updates) on a scratch database made
   with createdb + `pgbench -i`, dropped afterwards;
5. a table: redemptions/s, p50/p90/p99/max latency, statuses, the ratio to pgbench, the load average.
Everything it creates is dropped at the end, also on failure.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from sqlalchemy import event
from sqlalchemy.orm import Session

from handlers import accounts, identifiers, migrate, signing, subjects
from handlers.db import make_engine, scratch_schema
from handlers.models import (
    Incentive,
    IncentiveStatus,
    Organisation,
    OrganisationKind,
    Period,
    Role,
    Scenario,
    Status,
)
from handlers.privacy import Keys
from webhooks import gunicorn_conf

from ._common import (
    PG_DEFAULT,
    SECRET,
    issue_tokens,
    load_average,
    machine,
    window_for,
    xinma_server,
)

PATH = "/api/v1/redemptions"


# --- database -------------------------------------------------------------------------------------

def fresh_schema(base: str):
    return scratch_schema(base, "xinma_bench")


def seed(url: str, *, clerks: int, subjects_n: int, tokens: int, seconds_needed: float) -> dict:
    keys = Keys.from_secret(SECRET)
    rng = random.Random(2026)
    engine = make_engine(url)
    ring = signing.KeyRing(keys)
    try:
        with Session(engine, expire_on_commit=False) as s:
            org = Organisation(name="西湖景区观光车（压测）", kind=OrganisationKind.institution, status=Status.approved)
            s.add(org)
            s.flush()
            bearer = []
            for i in range(clerks):
                a = accounts.create(s, f"bench-clerk-{i}", status=Status.approved)
                accounts.grant(s, a, Role.clerk, organisation_id=org.id)
                bearer.append(accounts.open_session(s, a)[0])
            incentive = Incentive(organisation_id=org.id, title="西湖观光车免费乘坐（压测）", scenario=Scenario.tourism,
                                  eligible_colours=["green", "blue"], eligible_kinds=["person"],
                                  limit_count=100_000, limit_period=Period.day, venues=["西湖"],
                                  status=IncentiveStatus.open)
            s.add(incentive)
            people = [subjects.upsert(s, keys, kind="person", identifier=identifiers.make_resident_id(rng),
                                      name="王小明") for _ in range(subjects_n)]
            s.commit()
            window = window_for(seconds_needed)
            started = time.perf_counter()
            out = issue_tokens(s, ring, people, tokens // subjects_n, window)
            s.commit()
            issue_s = time.perf_counter() - started
        rng.shuffle(out)
        return {"incentive_id": incentive.id, "bearer": bearer, "tokens": out, "window": window,
                "issue_per_s": len(out) / issue_s}
    finally:
        engine.dispose()


def round_trips(url: str, data: dict) -> dict:
    """One redemption through the real app (Flask test client), counting what reaches the database.

    Statements by SQLAlchemy's before_cursor_execute; the exact round trips by libpq's protocol trace of
    the one pooled connection (psycopg sends BEGIN as a query of its own, and the pool's pre-ping is one).
    """
    from webhooks import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": False,
                      "INSTANCE_PATH": tempfile.mkdtemp(prefix="xinma-bench-")})
    engine = app.extensions["xinma.engine"]
    statements: list[str] = []
    pooled: list = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: statements.append(" ".join(stmt.split())))
    event.listen(engine.pool, "checkin", lambda dbapi_conn, record: pooled.append(dbapi_conn))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {data['bearer'][0]}"}

    def post(token: str, key: str) -> dict:
        r = client.post(PATH, json={"token": token, "incentive_id": data["incentive_id"], "idempotency_key": key},
                        headers=headers)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def counted(token: str, key: str) -> tuple[dict, list[str], list[str]]:
        statements.clear()
        conn = pooled[-1]  # requests run one after another: the pool holds this one connection
        with tempfile.TemporaryFile("w+") as trace:
            conn.pgconn.trace(trace.fileno())
            conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            verdict = post(token, key)
            conn.pgconn.untrace()
            trace.seek(0)
            sent = [line.split("\t")[2] for line in trace.read().splitlines()
                    if line.startswith("F\t") and line.count("\t") >= 2]
        # A round trip ends with a simple Query or with Sync (extended protocol: Parse/Bind/Execute/Sync).
        trips = [kind for kind in sent if kind in ("Query", "Sync")]
        return verdict, list(statements), trips

    post(data["tokens"].pop(), "warm-0")  # key ring, colour caches, prepared statements
    post(data["tokens"].pop(), "warm-1")
    token = data["tokens"].pop()
    verdict, stmts, trips = counted(token, "counted")
    _, replay_stmts, replay_trips = counted(token, "counted-replay")  # the same token again: replayed
    _, retry_stmts, retry_trips = counted(token, "counted")  # the same request again: its first verdict
    engine.dispose()
    return {"verdict": verdict["status"], "statements": stmts, "round_trips": len(trips),
            "replay": (len(replay_stmts), len(replay_trips)), "retry": (len(retry_stmts), len(retry_trips))}


# --- server -----------------------------------------------------------------------------------------

# --- load generator (runs in its own process: python -m benchmarks.redeem_bench --client FILE) -----

def client_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    tokens = iter(spec["tokens"])
    lock = threading.Lock()
    port, incentive_id, n = spec["port"], spec["incentive_id"], spec["connections"]
    rate = spec.get("rate")  # requests/s in all, open loop; None: closed loop, as fast as answers come
    results: list[list] = [[] for _ in range(n)]  # per thread: (phase, start, latency, status, verdict)
    start_at = time.monotonic() + 1.0
    warm_until = start_at + spec["warmup"]
    stop_at = warm_until + spec["duration"]

    def next_token():
        with lock:
            return next(tokens, None)

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {spec['bearer'][i % len(spec['bearer'])]}"}
        out = results[i]
        interval = n / rate if rate else 0.0
        scheduled = start_at + (i / n) * interval
        time.sleep(max(0.0, start_at - time.monotonic()))
        seq = 0
        while True:
            now = time.monotonic()
            if rate:
                if scheduled > now:
                    time.sleep(scheduled - now)
                t0 = scheduled  # latency counts from when the request was due (no coordinated omission)
                scheduled += interval
            else:
                t0 = now
            if t0 >= stop_at:
                break
            token = next_token()
            if token is None:
                out.append(("exhausted", t0, 0.0, 0, ""))
                break
            seq += 1
            body = json.dumps({"token": token, "incentive_id": incentive_id, "idempotency_key": f"c{i}-{seq}"})
            try:
                conn.request("POST", PATH, body, headers)
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
                answer = json.loads(payload) if status == 200 else {}
                verdict = answer.get("reason") or answer.get("status") or ""
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, verdict = 0, type(e).__name__
            t1 = time.monotonic()
            out.append(("warm" if t0 < warm_until else "timed", t0, t1 - t0, status, verdict))
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    timed = [r for per in results for r in per if r[0] == "timed"]
    lat = sorted(r[2] for r in timed)
    statuses: dict[str, int] = {}
    for r in timed:
        statuses[f"{r[3]} {r[4]}"] = statuses.get(f"{r[3]} {r[4]}", 0) + 1
    last_end = max((r[1] + r[2] for r in timed), default=warm_until)
    span = max(min(last_end, stop_at + 30) - warm_until, 1e-9)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

    print(json.dumps({"requests": len(timed), "seconds": span, "per_s": len(timed) / span,
                      "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
                      "max_ms": lat[-1] * 1000 if lat else float("nan"), "statuses": statuses,
                      "exhausted": any(r[0] == "exhausted" for per in results for r in per)}))


def run_load(port: int, data: dict, *, connections: int, duration: float, warmup: float, rate: float | None,
             tokens: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"port": port, "incentive_id": data["incentive_id"], "bearer": data["bearer"], "tokens": tokens,
                   "connections": connections, "duration": duration, "warmup": warmup, "rate": rate}, f)
    try:
        out = subprocess.run([sys.executable, "-m", "benchmarks.redeem_bench", "--client", f.name],
                             capture_output=True, text=True, check=True, timeout=duration + warmup + 300)
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- pgbench ----------------------------------------------------------------------------------------

def pgbench(base: str, *, clients: int, seconds: int, scale: int) -> dict:
    u = urlsplit(base.replace("postgresql+psycopg://", "postgresql://"))
    conn = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    env = {**os.environ, **({"PGPASSWORD": u.password} if u.password else {})}
    name = f"xinma_pgbench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", *conn, name], check=True, env=env)
    try:
        subprocess.run(["pgbench", *conn, "-i", "-q", "-s", str(scale), name], check=True, env=env,
                       capture_output=True)
        out = subprocess.run(["pgbench", *conn, "-N", "-c", str(clients), "-j", str(min(clients, 2)), "-T",
                              str(seconds), name], check=True, env=env, capture_output=True, text=True).stdout
    finally:
        subprocess.run(["dropdb", *conn, name], check=True, env=env)
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    return {"tps": tps, "latency_avg_ms": float(latency.group(1)) if latency else None, "clients": clients,
            "seconds": seconds, "scale": scale}


# --- report -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=20.0, help="timed phase, seconds (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8, help="client threads, one keep-alive connection each")
    parser.add_argument("--rate", type=float, default=None, help="open loop at this many requests/s (default: closed)")
    # Defaults: the production configuration (webhooks/gunicorn_conf.py), so the benchmark measures what ships.
    parser.add_argument("--workers", type=int, default=gunicorn_conf.workers)
    parser.add_argument("--threads", type=int, default=gunicorn_conf.threads)
    parser.add_argument("--worker-class", default=gunicorn_conf.worker_class,
                        help="gunicorn worker class (sync: no keep-alive)")
    parser.add_argument("--clerks", type=int, default=8)
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--max-rate", type=float, default=2500.0,
                        help="tokens are issued for this many redemptions/s over warm-up + duration")
    parser.add_argument("--log-level", default="INFO", help="the server's XINMA_LOG_LEVEL (INFO: as in production)")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--pgbench-clients", type=int, default=8)
    parser.add_argument("--pgbench-scale", type=int, default=10)
    args = parser.parse_args(argv)
    if args.client:
        client_main(args.client)
        return
    if not shutil.which("pgbench"):
        raise SystemExit("pgbench not found (Debian: apt-get install postgresql-client)")
    base = os.environ.get("XINMA_BENCH_DATABASE_URL", PG_DEFAULT)
    info = machine(base)
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    need = int((args.duration + args.warmup) * (args.rate or args.max_rate)) + 100
    with fresh_schema(base) as url:
        migrate.upgrade(url)
        t0 = time.perf_counter()
        data = seed(url, clerks=args.clerks, subjects_n=args.subjects, tokens=need,
                    seconds_needed=args.duration + args.warmup + 90)
        print(f"seeded {len(data['tokens']):,} tokens for {args.subjects:,} subjects, {args.clerks} clerks "
              f"in {time.perf_counter() - t0:.1f} s (issue_codes {data['issue_per_s']:,.0f}/s, "
              f"window {data['window']} s)", flush=True)
        rt = round_trips(url, data)
        print(f"\none redemption ({rt['verdict']}): {len(rt['statements'])} SQL statements, "
              f"{rt['round_trips']} database round trips (libpq trace: pool pre-ping {ping_label(url)}, "
              f"BEGIN, the statements, COMMIT)")
        for i, stmt in enumerate(rt["statements"], 1):
            print(f"  {i:2}. {stmt[:140]}")
        print(f"a replayed token: {rt['replay'][0]} statements, {rt['replay'][1]} round trips; the same request "
              f"retried (idempotency key): {rt['retry'][0]} statements, {rt['retry'][1]} round trips")
        log_path = Path(tempfile.mkdtemp(prefix="xinma-bench-")) / "gunicorn.log"
        print(f"\nload at start: {load_average()}", flush=True)
        with xinma_server(url, workers=args.workers, threads=args.threads, worker_class=args.worker_class,
                          log_level=args.log_level, log_path=log_path) as (port, _cmd, _pid):
            tokens = data["tokens"]
            result = run_load(port, data, connections=args.connections, duration=args.duration,
                              warmup=args.warmup, rate=args.rate, tokens=tokens)
        load_http = load_average()
    load_before_pg = load_average()
    pg = pgbench(base, clients=args.pgbench_clients, seconds=args.pgbench_seconds, scale=args.pgbench_scale)
    print(f"\nserver: gunicorn {args.worker_class} {args.workers} workers × {args.threads} threads, 127.0.0.1, "
          f"XINMA_LOG_LEVEL={args.log_level}, rate limits off; log {log_path}")
    print(f"client: {args.connections} keep-alive connections, "
          f"{f'open loop at {args.rate:.0f}/s' if args.rate else 'closed loop'}, "
          f"{args.warmup:.0f} s warm-up, {args.duration:.0f} s timed")
    print(f"redemptions: {result['requests']:,} in {result['seconds']:.1f} s = {result['per_s']:,.0f}/s   "
          f"p50 {result['p50_ms']:.1f} ms  p90 {result['p90_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
          f"max {result['max_ms']:.1f} ms   (load average after: {load_http})")
    print(f"  answers: {', '.join(f'{k}: {v:,}' for k, v in sorted(result['statuses'].items()))}")
    if result["exhausted"]:
        print("  (ran out of tokens: raise --max-rate)")
    print(f"pgbench -N -c {pg['clients']} -j {min(pg['clients'], 2)} -T {pg['seconds']} (scale {pg['scale']}): "
          f"{pg['tps']:,.0f} tps, latency avg {pg['latency_avg_ms']} ms   (load average before: {load_before_pg})")
    ratio = result["per_s"] / pg["tps"]
    goal = result["per_s"] >= 600 and result["p99_ms"] < 50
    print(f"ratio redemptions/s : pgbench tps = {ratio:.3f} (goal ≥ 0.1, and ≥ 600/s with p99 < 50 ms: "
          f"{'met' if goal else 'missed'})")


def ping_label(url: str) -> str:
    eng = make_engine(url)
    try:
        return "on" if eng.pool._pre_ping else "off: a poll of the socket instead, handlers/db.py"
    finally:
        eng.dispose()


if __name__ == "__main__":
    main()
