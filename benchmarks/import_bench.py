"""Bulk import and colour look-up benchmark, on SQLite and/or PostgreSQL.

    python -m benchmarks.import_bench --subjects 300000 --records 1000000 --database both

For each database: migrate a fresh one (SQLite in a temporary directory; PostgreSQL in a schema of
its own, dropped afterwards, at XINMA_BENCH_DATABASE_URL or the local default), time a baseline
(PostgreSQL: bare COPY of the records CSV into an unlogged table without indexes; SQLite: bare
executemany of the same rows into a table without indexes), import subjects then records with
handlers.imports.run, re-import the records (nothing may change), sample RSS throughout, then look
up the colour of 10,000 random subjects by identifier. A run with half the data first shows that
memory does not grow with the file. Prints a table and writes benchmarks/data/results-<db>.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy.orm import Session

from handlers import colours, imports, migrate, subjects
from handlers.db import make_engine, scratch_schema
from handlers.privacy import Keys

from .generate import DATA, paths

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEYS = Keys.from_secret("benchmark-secret-not-for-production")
LOOKUPS = 10_000


# --- memory ------------------------------------------------------------------------------------

class RSS:
    """Samples this process's resident set size every 20 ms; peak() since the last reset()."""

    def __init__(self):
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self):
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self.now())

    def reset(self) -> None:
        self._peak = self.now()

    def peak(self) -> int:
        return max(self._peak, self.now())

    def stop(self):
        self._stop.set()
        self._thread.join()


# --- databases ----------------------------------------------------------------------------------

@contextmanager
def fresh_database(kind: str):
    if kind == "sqlite":
        tmp = tempfile.mkdtemp(prefix="xinma-bench-")
        try:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    with scratch_schema(os.environ.get("XINMA_BENCH_DATABASE_URL", PG_DEFAULT), "xinma_bench") as url:
        yield url


def baseline(engine, records_csv: Path) -> float:
    """The floor: the database taking the same bytes with no validation, no indexes, no logging."""
    cols = ", ".join(f"c{i} text" for i in range(11))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE UNLOGGED TABLE bench_baseline ({cols})")
            conn.commit()
            started = time.perf_counter()
            cur = conn.connection.driver_connection.cursor()
            with open(records_csv, "rb") as f, cur.copy("COPY bench_baseline FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            conn.commit()
        else:
            conn.exec_driver_sql(f"CREATE TABLE bench_baseline ({cols})")
            conn.commit()
            started = time.perf_counter()
            sql = f"INSERT INTO bench_baseline VALUES ({', '.join('?' * 11)})"
            with open(records_csv, encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                next(reader)
                while batch := [tuple(row) for _, row in zip(range(5000), reader)]:
                    conn.exec_driver_sql(sql, batch)
            conn.commit()
        seconds = time.perf_counter() - started
        conn.exec_driver_sql("DROP TABLE bench_baseline")
        conn.commit()
    return seconds


def sample_identifiers(subjects_csv: Path, n: int, seed: int = 7) -> list[str]:
    """n identifiers chosen uniformly from the file (reservoir sampling: one pass, n kept)."""
    rng = random.Random(seed)
    chosen: list[str] = []
    with open(subjects_csv, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for i, row in enumerate(reader):
            if i < n:
                chosen.append(row[1])
            elif (j := rng.randrange(i + 1)) < n:
                chosen[j] = row[1]
    rng.shuffle(chosen)
    return chosen


def lookups(engine, identifiers: list[str]) -> dict:
    """Wall time of one scan at the counter: find the subject by identifier, read its colour."""
    times = []
    found = 0
    with Session(engine) as session:
        for ident in identifiers[:200]:  # warm the pool and the caches
            subjects.find(session, KEYS, ident)
        session.expunge_all()
        for ident in identifiers:
            t0 = time.perf_counter()
            subject = subjects.find(session, KEYS, ident)
            if subject is not None:
                colours.colour(session, subject)
                found += 1
            times.append(time.perf_counter() - t0)
            session.expunge(subject) if subject is not None else None
        session.rollback()
    times.sort()
    return {"lookups": len(times), "found": found, "median_us": statistics.median(times) * 1e6,
            "p99_us": times[int(len(times) * 0.99)] * 1e6}


def run_one(kind: str, n_subjects: int, n_records: int, rss: RSS, *, reimport: bool) -> dict:
    subjects_csv, records_csv = ensure_data(n_subjects, n_records)
    out: dict = {"database": kind, "subjects": n_subjects, "records": n_records}
    with fresh_database(kind) as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            if kind == "postgresql":
                with engine.connect() as conn:
                    out["server"] = conn.exec_driver_sql("SHOW server_version").scalar()
            rss.reset()
            for what, path in (("subjects", subjects_csv), ("records", records_csv)):
                rss.reset()
                s = imports.run(engine, KEYS, what, path, rejects_path=str(path) + f".{kind}.rejects.csv")
                out[what] = {**{k: v for k, v in vars(s).items() if k not in ("what", "rejects_path")},
                             "rows_per_s": s.read / s.seconds, "peak_rss_mb": rss.peak() / 2**20}
                print(f"  {kind}: {s.describe()}", flush=True)
            if reimport:
                rss.reset()
                s = imports.run(engine, KEYS, "records", records_csv, rejects_path=str(records_csv) + f".{kind}.rejects.csv")
                assert s.inserted == 0 and s.updated == 0 and s.subjects_refreshed == 0, s
                out["records_again"] = {"seconds": s.seconds, "unchanged": s.unchanged, "phases": s.phases,
                                        "peak_rss_mb": rss.peak() / 2**20}
                print(f"  {kind}: again: {s.describe()}", flush=True)
            out["baseline_s"] = baseline(engine, records_csv)
            out["lookup"] = lookups(engine, sample_identifiers(subjects_csv, LOOKUPS))
        finally:
            engine.dispose()
    return out


def ensure_data(n_subjects: int, n_records: int) -> tuple[Path, Path]:
    s, r = paths(n_subjects, n_records)
    if not (s.exists() and r.exists()):
        # A separate process, so that the generator's memory never counts in our RSS.
        subprocess.run([sys.executable, "-m", "benchmarks.generate", "--subjects", str(n_subjects),
                        "--records", str(n_records)], check=True)
    return s, r


# --- report ----------------------------------------------------------------------------------------

def machine() -> dict:
    mem = next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import psycopg
    import sqlite3
    return {"nproc": os.cpu_count(), "ram_gb": round(int(mem) / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "sqlalchemy": sqlalchemy.__version__, "psycopg": psycopg.__version__}


def report(results: list[dict]) -> None:
    for r in results:
        s, rec = r["subjects"], r["records"]
        full = next((x for x in results if x["database"] == r["database"] and x is not r), None)
        print(f"\n{r['database']} ({r.get('server', 'sqlite ' + machine()['sqlite'])}): "
              f"{s['read']:,} subjects, {rec['read']:,} records")
        print(f"  import subjects   {s['seconds']:7.1f} s  {s['rows_per_s']:>9,.0f} rows/s  peak RSS {s['peak_rss_mb']:.0f} MB")
        print(f"  import records    {rec['seconds']:7.1f} s  {rec['rows_per_s']:>9,.0f} rows/s  peak RSS {rec['peak_rss_mb']:.0f} MB"
              f"  phases {', '.join(f'{k} {v:.1f}' for k, v in rec['phases'].items())}")
        if "records_again" in r:
            a = r["records_again"]
            print(f"  re-import records {a['seconds']:7.1f} s  ({a['unchanged']:,} unchanged)  peak RSS {a['peak_rss_mb']:.0f} MB")
        total = s["seconds"] + rec["seconds"]
        print(f"  subjects + records {total:6.1f} s")
        print(f"  baseline (bare load of the records file) {r['baseline_s']:.1f} s; "
              f"records import / baseline = {rec['seconds'] / r['baseline_s']:.1f}x")
        lk = r["lookup"]
        print(f"  colour look-up: median {lk['median_us']:.0f} µs, p99 {lk['p99_us']:.0f} µs "
              f"({lk['found']:,}/{lk['lookups']:,} found)")
        del full


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--no-half", dest="half", action="store_false",
                        help="Skip the run with half the data (it shows memory does not grow with the file).")
    parser.add_argument("--no-reimport", dest="reimport", action="store_false",
                        help="Skip the second, idempotent import of the records.")
    args = parser.parse_args(argv)
    info = machine()
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    rss = RSS()
    results = []
    for kind in (("sqlite", "postgresql") if args.database == "both" else (args.database,)):
        sizes = [(args.subjects // 2, args.records // 2)] if args.half else []
        for n_subjects, n_records in sizes + [(args.subjects, args.records)]:
            print(f"{kind}: {n_subjects:,} subjects, {n_records:,} records", flush=True)
            results.append(run_one(kind, n_subjects, n_records, rss, reimport=args.reimport))
    rss.stop()
    report(results)
    DATA.mkdir(parents=True, exist_ok=True)
    for kind in {r["database"] for r in results}:
        (DATA / f"results-{kind}.json").write_text(json.dumps(
            {"machine": info, "runs": [r for r in results if r["database"] == kind]}, indent=2, default=str))


if __name__ == "__main__":
    main()
