"""CPU per redemption inside the app process, without HTTP: where the time of one scan goes.

    python -m benchmarks.redeem_profile                    # CPU ms per redemption through the Flask app
    python -m benchmarks.redeem_profile --profile 25       # and cProfile's top 25 functions (cumulative)
    python -m benchmarks.redeem_profile --bare             # auth + redeem() + commit, no Flask

A PostgreSQL schema of its own (XINMA_BENCH_DATABASE_URL or the local default), seeded as the HTTP
benchmark does (benchmarks.redeem_bench.seed, smaller); one thread posts fresh tokens through the
Flask test client (or calls the domain directly with --bare) and reports process CPU time per
redemption (time.process_time: this process only, so PostgreSQL's own work is not counted).
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time

from benchmarks.redeem_bench import PATH, PG_DEFAULT, SECRET, fresh_schema, seed
from handlers import migrate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1500, help="timed redemptions (default 1500)")
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions")
    parser.add_argument("--bare", action="store_true", help="auth + redeem() + commit without Flask")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--dump", help="also write the profile here (pstats)")
    args = parser.parse_args(argv)
    base = os.environ.get("XINMA_BENCH_DATABASE_URL", PG_DEFAULT)
    with fresh_schema(base) as url:
        migrate.upgrade(url)
        data = seed(url, clerks=2, subjects_n=200, tokens=args.n + 300, seconds_needed=120)
        from webhooks import create_app

        from webhooks.observability import configure_logging

        # As under gunicorn (webhooks/gunicorn_conf.py): JSON lines at INFO, here written to /dev/null.
        configure_logging("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": False,
                          "INSTANCE_PATH": tempfile.mkdtemp(prefix="xinma-prof-")})
        tokens = data["tokens"]
        headers = {"Authorization": f"Bearer {data['bearer'][0]}"}
        client = app.test_client()

        if args.bare:
            from handlers import accounts, redemptions

            sm, ring = app.extensions["xinma.sessionmaker"], app.extensions["xinma.keyring"]

            def one(i: int) -> None:
                with sm() as s:
                    clerk = accounts.account_for_token(s, data["bearer"][0])
                    v = redemptions.redeem(s, ring, clerk, tokens.pop(), data["incentive_id"],
                                           idempotency_key=f"k{i}")
                    s.commit()
                    assert v.status == "redeemed", v
        else:
            def one(i: int) -> None:
                r = client.post(PATH, json={"token": tokens.pop(), "incentive_id": data["incentive_id"],
                                            "idempotency_key": f"k{i}"}, headers=headers)
                assert r.status_code == 200 and r.get_json()["status"] == "redeemed", r.get_json()

        for i in range(200):  # warm: key ring, caches, prepared statements
            one(-i - 1)
        prof = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        for i in range(args.n):
            one(i)
        if prof:
            prof.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        app.extensions["xinma.engine"].dispose()
    print(f"{'bare' if args.bare else 'flask'}: {args.n} redemptions, CPU {cpu / args.n * 1000:.2f} ms each, "
          f"wall {wall / args.n * 1000:.2f} ms each{' (profiled)' if prof else ''}; "
          f"load {' '.join(open('/proc/loadavg').read().split()[:3])}")
    if prof:
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.profile)
        if args.dump:
            prof.dump_stats(args.dump)


if __name__ == "__main__":
    main()
