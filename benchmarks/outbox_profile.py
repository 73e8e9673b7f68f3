"""One outbox worker in-process with a channel that does nothing: our code's and the database's cost per message.

    python -m benchmarks.outbox_profile                    # 1000 messages, PostgreSQL, one thread
    python -m benchmarks.outbox_profile --messages 2000 --concurrency 4 --profile

No HTTP: the sender answers "sent" at once, so what is measured is fan-out, claim, address look-up and the
recording of each attempt (wall time and this process's CPU per message). --profile prints cProfile's top.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import insert
from sqlalchemy.orm import Session

from handlers import migrate, outbox, timeutil
from handlers.channels import SENT, Outcome
from handlers.db import make_engine, scratch_schema
from handlers.models import Account, Channel, Notice, Status, Subject, SubjectKind, WeChatIdentity
from handlers.privacy import Keys

from ._common import PG_DEFAULT, SECRET, load_average

APPID = "wx-profile"


class NullSender:
    channel = Channel.template
    appid = APPID

    def can_send(self, kind: str) -> bool:
        return True

    def send(self, address: str, message) -> Outcome:
        return Outcome(SENT, 0, "ok", external_id="0")


def seed(engine, n: int) -> None:
    now = timeutil.now()
    with Session(engine) as s, s.begin():
        for i in range(n):
            sid = s.execute(insert(Subject).values(kind=SubjectKind.person, id_hash=f"{i:064d}", id_masked="-",
                                                   name_encrypted=b"-", name_masked="-", created_at=now)
                            .returning(Subject.id)).scalar()
            aid = s.execute(insert(Account).values(login=f"profile-{i}", subject_id=sid, status=Status.approved,
                                                   is_demo=False, created_at=now).returning(Account.id)).scalar()
            s.execute(insert(WeChatIdentity).values(appid=APPID, openid=f"o{i}", account_id=aid, created_at=now))
            s.execute(insert(Notice).values(subject_id=sid, kind="redemption", title="已核销", body={}, created_at=now))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--database", default=os.environ.get("XINMA_BENCH_DATABASE_URL", PG_DEFAULT))
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    with scratch_schema(args.database, "xinma_outbox_profile") as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        seed(engine, args.messages)
        worker = outbox.Worker(engine, Keys.from_secret(SECRET), {Channel.template: NullSender()},
                               outbox.Settings(concurrency=args.concurrency))
        prof = cProfile.Profile()
        load = load_average()
        wall, cpu = time.perf_counter(), time.process_time()
        if args.profile:
            prof.enable()
        with ThreadPoolExecutor(args.concurrency) as pool:
            r = worker.drain(pool=pool if args.concurrency > 1 else None)
        prof.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        engine.dispose()
    n = r.outcomes["sent"]
    print(f"{n} sent, {n / wall:.0f}/s: {wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU per message "
          f"(concurrency {args.concurrency}; load {load})")
    if args.profile:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
