"""Policy matching benchmark (免申即享): match policies over 1,000,000 enterprises on PostgreSQL.

    python -m benchmarks.policy_bench --enterprises 1000000

Migrates a PostgreSQL schema of its own (XINMA_BENCH_DATABASE_URL or the local default; dropped afterwards),
generates the enterprises in SQL (generate_series: subjects with grades and colours, profiles with industry,
region, establishment date and last year's tax, tags), then times, each in a transaction of its own:

  baseline   SELECT count(*) FROM subject (a scan of the table), and CREATE UNLOGGED TABLE … AS the very
             candidate query the matching inserts from (conditions and amounts, no indexes, no constraints,
             no WAL): the floor any set-based matching can reach on this machine;
  preview    matching a broad draft policy (not red, not D; 5% of last year's tax, capped): the offers alone,
             nobody told -- matching proper;
  publish    publishing a second policy with the same conditions (no preview): the same offers, and a notice
             (push) written for each, in one transaction;
  rematch    matching the published policy again: nothing new (the anti-join over all enterprises);
  budget     publishing a narrower policy whose budget covers about a third of those who qualify: the window
             running sum in priority order (A first) cuts the list.

Prints the numbers and writes benchmarks/data/policy-results.json. ``--database sqlite`` runs the same on SQLite
(smaller sizes are wiser there).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from handlers import accounts, checks, migrate, policies
from handlers.db import make_engine, scratch_schema
from handlers.models import Account, Organisation, OrganisationKind, Role, Status

from .generate import DATA
from .import_bench import PG_DEFAULT, machine

BROAD = {"title": "基准测试：普惠研发奖励", "amount_rule": {"base": "last_year_tax", "rate_bp": 500, "cap_fen": 200_000_00}}
NARROW = {"title": "基准测试：制造业高新技术企业奖励",
          "amount_rule": {"base": "last_year_tax", "rate_bp": 1000, "cap_fen": 500_000_00},
          "conditions": {"min_grade": "B", "industry_prefixes": ["C"], "region_prefixes": ["4413"],
                         "registered_before": "2024-01-01", "tags_any": ["高新技术企业", "专精特新"]}}

# Generation: every subject an enterprise; grades A 12%, B 38%, C 33%, D 5%, none 12%; red 6%, green 30%.
_SUBJECTS = """
INSERT INTO subject (kind, id_hash, id_masked, name_encrypted, name_masked, grade, grade_evaluated_on, risk_level,
                     colour, created_at)
SELECT 'enterprise', md5('bench-a-' || i) || md5('bench-b-' || i), '9144**********' || lpad((i % 10000)::text, 4, '0'),
       '\\x00'::bytea, '惠州**有限公司',
       CASE WHEN g < 12 THEN 'A' WHEN g < 50 THEN 'B' WHEN g < 83 THEN 'C' WHEN g < 88 THEN 'D' END,
       CASE WHEN g < 88 THEN DATE '2025-12-31' END, NULL,
       CASE WHEN c < 6 OR g BETWEEN 83 AND 87 AND c < 50 THEN 'red' WHEN c < 36 THEN 'green' ELSE 'blue' END, now()
FROM (SELECT i, floor(random() * 100)::int AS g, floor(random() * 100)::int AS c
      FROM generate_series(1, :n) AS i) x
"""
_PROFILES = """
INSERT INTO enterprise_profile (subject_id, industry_code, region_code, registered_on, last_year_tax_fen, tax_year,
                                updated_at)
SELECT id,
       (ARRAY['C3982','C3971','C3021','C2662','C1713','C3311','G5431','I6510','I6421','F5123','E4811','M7320',
              'H6210','K7010','L7212','A0141'])[1 + floor(random() * 16)::int],
       (ARRAY['441302','441303','441322','441323','441324','441305','440305','440106'])[1 + floor(random() * 8)::int],
       DATE '1990-01-01' + floor(random() * 12400)::int,
       CASE WHEN random() < 0.05 THEN NULL ELSE floor(exp(random() * 16) * 1000)::bigint END,
       2025, now()
FROM subject
"""
_TAGS = """
INSERT INTO enterprise_tag (subject_id, tag)
SELECT id, '高新技术企业' FROM subject WHERE random() < 0.20
UNION ALL
SELECT id, '专精特新' FROM subject WHERE random() < 0.08
"""


@contextmanager
def fresh_database(kind: str):
    if kind == "sqlite":
        tmp = tempfile.mkdtemp(prefix="xinma-policy-bench-")
        try:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    with scratch_schema(os.environ.get("XINMA_BENCH_DATABASE_URL", PG_DEFAULT), "xinma_policy_bench") as url:
        yield url


def generate(engine, n: int) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT setseed(0.20261122)")
            conn.execute(text(_SUBJECTS), {"n": n})
            conn.exec_driver_sql(_PROFILES)
            conn.exec_driver_sql(_TAGS)
            for table in ("subject", "enterprise_profile", "enterprise_tag"):
                conn.exec_driver_sql(f"ANALYZE {table}")
        else:
            _generate_sqlite(conn, n)
    return time.perf_counter() - started


def _generate_sqlite(conn, n: int) -> None:
    """The same distributions with SQLite's recursive CTE and abs(random()) instead of generate_series."""
    rnd = "(abs(random()) % 100)"
    conn.exec_driver_sql(f"""
        INSERT INTO subject (kind, id_hash, id_masked, name_encrypted, name_masked, grade, grade_evaluated_on,
                             colour, created_at)
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {int(n)}),
             x AS (SELECT i, {rnd} AS g, {rnd} AS c FROM seq)
        SELECT 'enterprise', printf('%064d', i), '9144**********' || substr('0000' || (i % 10000), -4), x'00',
               '惠州**有限公司',
               CASE WHEN g < 12 THEN 'A' WHEN g < 50 THEN 'B' WHEN g < 83 THEN 'C' WHEN g < 88 THEN 'D' END,
               CASE WHEN g < 88 THEN '2025-12-31' END,
               CASE WHEN c < 6 OR (g BETWEEN 83 AND 87 AND c < 50) THEN 'red' WHEN c < 36 THEN 'green' ELSE 'blue' END,
               '2026-11-22 00:00:00.000000'
        FROM x""")
    codes = ["C3982", "C3971", "C3021", "C2662", "C1713", "C3311", "G5431", "I6510", "I6421", "F5123", "E4811",
             "M7320", "H6210", "K7010", "L7212", "A0141"]
    regions = ["441302", "441303", "441322", "441323", "441324", "441305", "440305", "440106"]
    ind = "CASE abs(random()) % 16 " + " ".join(f"WHEN {k} THEN '{c}'" for k, c in enumerate(codes)) + " END"
    reg = "CASE abs(random()) % 8 " + " ".join(f"WHEN {k} THEN '{c}'" for k, c in enumerate(regions)) + " END"
    conn.exec_driver_sql(f"""
        INSERT INTO enterprise_profile (subject_id, industry_code, region_code, registered_on, last_year_tax_fen,
                                        tax_year, updated_at)
        SELECT id, {ind}, {reg}, date('1990-01-01', '+' || (abs(random()) % 12400) || ' days'),
               CASE WHEN {rnd} < 5 THEN NULL ELSE abs(random()) % 900000000 END, 2025, '2026-11-22 00:00:00.000000'
        FROM subject""")
    conn.exec_driver_sql(f"""
        INSERT INTO enterprise_tag (subject_id, tag)
        SELECT id, '高新技术企业' FROM subject WHERE {rnd} < 20
        UNION ALL SELECT id, '专精特新' FROM subject WHERE {rnd} < 8""")


def setup_issuer(engine) -> int:
    with Session(engine) as s:
        admin = accounts.create(s, "bench-admin", status=Status.approved)
        accounts.grant(s, admin, Role.platform_admin)
        org = Organisation(name="惠州市工业和信息化局", kind=OrganisationKind.department, status=Status.approved)
        s.add(org)
        s.commit()
        return admin.id, org.id


def new_policy(engine, admin_id: int, org_id: int, **fields) -> int:
    today = checks.today()
    with Session(engine) as s:
        p = policies.create_policy(s, s.get(Account, admin_id), org_id, notice_from=today,
                                   notice_until=today + timedelta(days=14), **fields)
        s.commit()
        return p.id


def timed(engine, fn) -> tuple[float, object]:
    """fn(session) in one transaction, committed; wall seconds including the commit."""
    started = time.perf_counter()
    with Session(engine) as s:
        out = fn(s)
        s.commit()
    return time.perf_counter() - started, out


def baselines(engine, policy_id: int) -> dict:
    out = {}
    with engine.connect() as conn:
        started = time.perf_counter()
        out["count_rows"] = conn.exec_driver_sql("SELECT count(*) FROM subject").scalar()
        out["count_s"] = time.perf_counter() - started
    with Session(engine) as s:
        sql, params = policies.candidates_sql(policies.get(s, policy_id))
        conn = s.connection()
        pg = conn.dialect.name == "postgresql"
        if pg:
            conn.exec_driver_sql("SET LOCAL work_mem = '128MB'")
        started = time.perf_counter()
        conn.execute(text(f"CREATE {'UNLOGGED ' if pg else ''}TABLE bench_floor AS {sql}")
                     .bindparams(*policies._typed(params)), params)
        s.commit()
        out["floor_s"] = time.perf_counter() - started
        out["floor_rows"] = s.connection().exec_driver_sql("SELECT count(*) FROM bench_floor").scalar()
        s.connection().exec_driver_sql("DROP TABLE bench_floor")
        s.commit()
    return out


def run(kind: str, n: int) -> dict:
    out: dict = {"database": kind, "enterprises": n}
    with fresh_database(kind) as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                if kind == "postgresql":
                    out["server"] = conn.exec_driver_sql("SHOW server_version").scalar()
            print(f"{kind}: generating {n:,} enterprises …", flush=True)
            out["generate_s"] = generate(engine, n)
            print(f"  generated in {out['generate_s']:.1f} s", flush=True)
            admin_id, org_id = setup_issuer(engine)
            broad = new_policy(engine, admin_id, org_id, **BROAD)
            broad_published = new_policy(engine, admin_id, org_id, **{**BROAD, "title": BROAD["title"] + "（发布）"})
            out["baseline"] = baselines(engine, broad)
            b = out["baseline"]
            print(f"  baseline: count(*) {b['count_s']:.2f} s; candidate query into an unlogged table "
                  f"{b['floor_s']:.2f} s ({b['floor_rows']:,} rows)", flush=True)

            def admin(s):
                return s.get(Account, admin_id)

            steps = [
                ("preview", lambda s: policies.match(s, admin(s), broad)),
                ("publish", lambda s: policies.publish_policy(s, admin(s), broad_published)),
                ("rematch", lambda s: policies.match(s, admin(s), broad_published)),
            ]
            for name, fn in steps:
                seconds, r = timed(engine, fn)
                out[name] = {**r.as_dict(), "seconds": seconds, "in_transaction_s": r.seconds}
                print(f"  {name:<8} {seconds:6.2f} s  offered {r.offered:,}, notified {r.notified:,}  "
                      f"phases {', '.join(f'{k} {v:.2f}' for k, v in r.phases.items())}", flush=True)
            narrow_probe = new_policy(engine, admin_id, org_id, **{**NARROW, "title": NARROW["title"] + "（试算）"})
            _, probe = timed(engine, lambda s: policies.match(s, admin(s), narrow_probe))
            budget = max(probe.offered_fen // 3, 1)
            narrow = new_policy(engine, admin_id, org_id, budget_fen=budget, **NARROW)
            seconds, r = timed(engine, lambda s: policies.publish_policy(s, admin(s), narrow))
            out["budget"] = {**r.as_dict(), "seconds": seconds, "in_transaction_s": r.seconds}
            print(f"  budget   {seconds:6.2f} s  eligible {r.eligible:,}, offered {r.offered:,} within "
                  f"{budget / 100:,.0f} yuan, over budget {r.over_budget:,}  "
                  f"phases {', '.join(f'{k} {v:.2f}' for k, v in r.phases.items())}", flush=True)
            with Session(engine) as s:
                out["budget_grades"] = {g or "-": n_ for g, n_ in s.execute(text(
                    "SELECT grade, count(*) FROM offer WHERE policy_id = :p GROUP BY grade ORDER BY grade"),
                    {"p": narrow})}
            print(f"  budget offers by grade: {out['budget_grades']}", flush=True)
        finally:
            engine.dispose()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args(argv)
    info = machine()
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    result = run(args.database, args.enterprises)
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / f"policy-results-{args.database}.json").write_text(
        json.dumps({"machine": info, "run": result}, indent=2, default=str))


if __name__ == "__main__":
    main()
