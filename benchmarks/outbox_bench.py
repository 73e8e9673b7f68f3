"""Outbox drain rate into the WeChat emulator: 1 and 2 `xinma worker` processes on PostgreSQL.

    python -m benchmarks.outbox_bench                          # 3000 messages, 1 then 2 workers, PostgreSQL
    python -m benchmarks.outbox_bench --messages 5000 --workers 1 2 --concurrency 4 --batch 100
    python -m benchmarks.outbox_bench --database sqlite --workers 1

Each round starts the workers as real `xinma worker` processes, waits until they are up, commits one notice per
recipient (an approved citizen account bound to an official-account openid the emulator knows) and waits until
all are sent, then stops the workers with SIGTERM. The rate is the messages over the span from the first
attempt's start to the last attempt's end (fan-out included); the time from the notices' commit to the last one
sent is shown too. Afterwards it checks exactly-once: one `sent` attempt per message, and one template message
per recipient per round in the emulator's inbox. The emulator runs as its own process (waitress, 8 threads) on the same machine, so it
competes for the same CPUs; the number is the whole pipeline's on this host, not WeChat's.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from handlers import migrate, subjects, timeutil
from handlers.identifiers import make_resident_id
from handlers.db import make_engine, scratch_schema
from handlers.models import Account, Notice, OutboxAttempt, OutboxMessage, Status, WeChatIdentity
from handlers.privacy import Keys
from webhooks.wechat_emulator import DEMO_APPID, DEMO_SECRET

from ._common import PG_DEFAULT, SECRET, cpu_seconds, free_port, load_average


@contextmanager
def emulator(log_path: Path):
    port = free_port()
    cmd = [sys.executable, "-m", "webhooks.cli", "wechat-emulator", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINMA_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/_emulator", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"the emulator did not start (see {log_path})") from None
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def seed(engine, base: str, n: int) -> list[str]:
    """``n`` citizens, each bound to an official-account openid the emulator knows; returns the openids."""
    keys = Keys.from_secret(SECRET)
    http = requests.Session()
    openids = []
    rng = random.Random(5)
    with Session(engine) as s, s.begin():
        for i in range(n):
            subject = subjects.upsert(s, keys, kind="person", identifier=make_resident_id(rng), name=f"测试{i}")
            s.flush()
            openid = http.post(base + "/_emulator/users", json={"appid": DEMO_APPID}, timeout=10).json()["openid"]
            openids.append(openid)
            aid = s.execute(insert(Account).values(login=f"bench-{i}", subject_id=subject.id, status=Status.approved,
                                                   is_demo=False, created_at=timeutil.now())
                            .returning(Account.id)).scalar()
            s.execute(insert(WeChatIdentity).values(appid=DEMO_APPID, openid=openid, account_id=aid,
                                                    created_at=timeutil.now()))
    http.close()
    return openids


def notices(engine, n: int, round_no: int) -> None:
    with Session(engine) as s, s.begin():
        ids = s.scalars(select(Account.subject_id).where(Account.login.like("bench-%")).order_by(Account.id)).all()[:n]
        now = timeutil.now()
        s.execute(insert(Notice), [{"subject_id": sid, "kind": "redemption", "title": f"第{round_no}轮：已核销",
                                    "body": {"lines": ["西湖观光车免费乘坐"]}, "created_at": now} for sid in ids])


def run_workers(engine, url: str, base: str, workers: int, concurrency: int, batch: int, n: int, round_no: int,
                log_dir: Path, emulator_pid: int) -> tuple[float, float, float]:
    """Start the workers, wait until every one is up, then write the round's notices and wait until all are sent;
    stop the workers with SIGTERM. Returns the seconds from the notices' commit to the last one sent, and the CPU
    seconds the workers and the emulator used meanwhile."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("XINMA_")},
           "XINMA_DATABASE_URL": url, "XINMA_SECRET_KEY": SECRET, "XINMA_WECHAT_APPID": DEMO_APPID,
           "XINMA_WECHAT_SECRET": DEMO_SECRET, "XINMA_WECHAT_API_BASE": base,
           "XINMA_WECHAT_TEMPLATE_IDS": '{"*": "bench-template"}', "XINMA_LOG_LEVEL": "WARNING",
           "XINMA_INSTANCE_PATH": str(log_dir)}
    procs = []
    for w in range(workers):
        path = log_dir / f"round{round_no}-worker{w}.log"
        log = open(path, "wb")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen([sys.executable, "-m", "webhooks.cli", "worker", "--idle", "0.05",
                                        "--concurrency", str(concurrency), "--batch", str(batch),
                                        "--name", f"r{round_no}w{w}"],
                                       env=env, stdout=log, stderr=subprocess.STDOUT), log, path))
    try:
        deadline = time.monotonic() + 120
        while not all(b"outbox worker" in path.read_bytes() for _, _, path in procs):
            if time.monotonic() > deadline or any(proc.poll() is not None for proc, _, _ in procs):
                raise SystemExit(f"a worker did not start (see {log_dir})")
            time.sleep(0.05)
        time.sleep(1.0)  # past their first (empty) pass
        cpu_before = sum(cpu_seconds(proc.pid) for proc, _, _ in procs), cpu_seconds(emulator_pid)
        started = time.perf_counter()
        notices(engine, n, round_no)
        q = select(func.count()).select_from(OutboxAttempt).where(OutboxAttempt.worker.like(f"r{round_no}w%"),
                                                                  OutboxAttempt.outcome == "sent")
        deadline = time.monotonic() + 3600
        with engine.connect() as conn:
            while conn.execute(q).scalar() < n:
                conn.rollback()
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not drain within an hour")
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
        worker_cpu = sum(cpu_seconds(proc.pid) for proc, _, _ in procs) - cpu_before[0]
        emulator_cpu = cpu_seconds(emulator_pid) - cpu_before[1]
    finally:
        for proc, _, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, log, _ in procs:
            proc.wait(120)
            log.close()
    return elapsed, worker_cpu, emulator_cpu


def measure(engine, round_no: int) -> dict:
    with Session(engine) as s:
        prefix = f"r{round_no}w%"
        q = select(func.min(OutboxAttempt.started_at), func.max(OutboxAttempt.finished_at), func.count()).where(
            OutboxAttempt.worker.like(prefix))
        first, last, attempts = s.execute(q).one()
        sent = s.scalar(select(func.count()).select_from(OutboxAttempt).where(
            OutboxAttempt.worker.like(prefix), OutboxAttempt.outcome == "sent"))
        per_worker = dict(s.execute(select(OutboxAttempt.worker, func.count()).where(OutboxAttempt.worker.like(prefix))
                                    .group_by(OutboxAttempt.worker)).all())
        doubled = s.scalar(text("SELECT count(*) FROM (SELECT message_id FROM outbox_attempt WHERE outcome = 'sent' "
                                "GROUP BY message_id HAVING count(*) > 1) d"))
        pending = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state != "sent"))
        spans = sorted((timeutil.aware(b) - timeutil.aware(a)).total_seconds() * 1000 for a, b in s.execute(
            select(OutboxAttempt.started_at, OutboxAttempt.finished_at).where(OutboxAttempt.worker.like(prefix))))
    span = (timeutil.aware(last) - timeutil.aware(first)).total_seconds()
    return {"attempts": attempts, "sent": sent, "span_s": round(span, 2), "rate": round(sent / span, 1),
            "per_worker": per_worker, "doubled": doubled, "not_sent": pending,
            "attempt_ms_p50": round(spans[len(spans) // 2], 1), "attempt_ms_p99": round(spans[int(len(spans) * .99)], 1)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=3000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--concurrency", type=int, default=4, help="sends in flight per worker")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--database", default=os.environ.get("XINMA_BENCH_DATABASE_URL", PG_DEFAULT),
                   help="a PostgreSQL URL (a scratch schema is made in it), or 'sqlite'")
    p.add_argument("--logs", default="/tmp/xinma-outbox-bench")
    args = p.parse_args(argv)
    log_dir = Path(args.logs)
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {load_average()}", flush=True)

    @contextmanager
    def database():
        if args.database == "sqlite":
            path = log_dir / "bench.sqlite3"
            path.unlink(missing_ok=True)
            yield f"sqlite:///{path}"
        else:
            with scratch_schema(args.database, "xinma_outbox_bench") as url:
                yield url

    results = []
    with database() as url, emulator(log_dir / "emulator.log") as (base, emulator_pid):
        migrate.upgrade(url)
        engine = make_engine(url)
        t = time.perf_counter()
        openids = seed(engine, base, args.messages)
        print(f"seeded {len(openids)} recipients in {time.perf_counter() - t:.1f}s", flush=True)
        for round_no, workers in enumerate(args.workers, 1):
            wall, worker_cpu, emulator_cpu = run_workers(engine, url, base, workers, args.concurrency, args.batch,
                                                         args.messages, round_no, log_dir, emulator_pid)
            m = measure(engine, round_no)
            inbox = requests.get(base + "/_emulator/inbox", timeout=60).json()
            per_user = {len(inbox.get(o, [])) for o in openids}
            m |= {"workers": workers, "concurrency": args.concurrency, "batch": args.batch, "commit_to_last_s": round(wall, 2),
                  "worker_cpu_ms_per_message": round(worker_cpu / args.messages * 1000, 2),
                  "emulator_cpu_ms_per_message": round(emulator_cpu / args.messages * 1000, 2),
                  "load_average": load_average(),
                  "inbox_per_recipient": sorted(per_user)}
            ok = m["doubled"] == 0 and m["not_sent"] == 0 and per_user == {round_no} and m["sent"] == args.messages
            m["exactly_once"] = ok
            results.append(m)
            print(f"{workers} worker(s) x {args.concurrency}: {m['sent']} sent in {m['span_s']} s = {m['rate']}/s "
                  f"(commit to last sent {m['commit_to_last_s']} s); one send p50 {m['attempt_ms_p50']} ms, p99 "
                  f"{m['attempt_ms_p99']} ms; CPU per message: workers {m['worker_cpu_ms_per_message']} ms, emulator "
                  f"{m['emulator_cpu_ms_per_message']} ms; load {m['load_average']}; per worker {m['per_worker']}; "
                  f"exactly once: {ok}", flush=True)
        engine.dispose()
    print(f"load average at end: {load_average()}")
    print(json.dumps({"messages": args.messages, "database": "sqlite" if args.database == "sqlite" else "postgresql",
                      "results": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
