"""Deterministic, believable import files: subjects (persons and organisations) and their credit records.

    python -m benchmarks.generate --subjects 300000 --records 1000000

writes benchmarks/data/subjects-<N>.csv and records-<N>-<M>.csv (gitignored). Same arguments, same
bytes. Identifiers are valid (check digits included) and unique; a few rows per ten thousand are
deliberately bad, as real exports are, so the rejects path is exercised too.
"""
from __future__ import annotations

import argparse
import csv
import random
import time
from datetime import date, timedelta
from pathlib import Path

from handlers.identifiers import make_credit_code, make_resident_id

DATA = Path(__file__).parent / "data"
SEED = 20261122

# Huizhou's districts and counties: region codes of identifiers.
REGIONS = ("441302", "441303", "441322", "441323", "441324")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤康易乔赖文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国志红梅晓东文斌宇浩然欣怡子涵俊杰嘉琪思远雨桐梓轩诗琪一鸣佳豪振华海燕春林永庆德胜"
TRADES = ("科技", "电子", "实业", "贸易", "建设工程", "物业管理", "食品", "新能源", "物流", "餐饮管理",
          "医药", "文化传媒", "环保科技", "智能装备", "石化", "家具", "服装", "农业发展")
PLACES = ("惠州市", "惠州市惠城区", "惠州市惠阳区", "博罗县", "惠东县", "龙门县", "惠州大亚湾")
ORG_SUFFIX = ("有限公司", "股份有限公司", "有限责任公司")

PERSON_HONOURS = ("star_volunteer", "model_worker", "moral_model", "charity_figure", "huizhou_good_person",
                  "best_civil_servant", "best_nurse", "excellent_teacher", "honest_entrepreneur")
ORG_HONOURS = ("a_grade_taxpayer", "customs_advanced_certified", "honest_enterprise")
BAD = ("administrative_penalty", "dishonest_judgment_debtor", "consumption_restriction", "serious_dishonesty",
       "utility_arrears")
# Where each category comes from (source organisation codes).
SOURCE = {
    "star_volunteer": "hz-volunteers", "model_worker": "hz-federation-of-trade-unions",
    "moral_model": "hz-civilisation-office", "charity_figure": "hz-civil-affairs",
    "huizhou_good_person": "hz-civilisation-office", "best_civil_servant": "hz-hr-bureau",
    "best_nurse": "hz-health-commission", "excellent_teacher": "hz-education-bureau",
    "honest_entrepreneur": "hz-federation-of-industry", "a_grade_taxpayer": "hz-tax-bureau",
    "customs_advanced_certified": "hz-customs", "honest_enterprise": "hz-market-regulation",
    "administrative_penalty": "hz-market-regulation", "dishonest_judgment_debtor": "hz-intermediate-court",
    "consumption_restriction": "hz-intermediate-court", "serious_dishonesty": "hz-credit-office",
    "utility_arrears": "hz-water-and-power",
}
# Records per subject: most have none to a few; the mean (about 3.3) makes 1M records for 300k subjects.
RECORD_COUNTS = (0, 1, 2, 3, 4, 5, 6, 8, 12)
RECORD_WEIGHTS = (14, 14, 15, 15, 14, 12, 8, 5, 3)

SUBJECT_HEADER = ("kind", "identifier", "name", "grade", "grade_evaluated_on", "risk_level")
RECORD_HEADER = ("identifier", "category", "source", "external_id", "effective_on", "published_until",
                 "repaired_on", "repair_reason", "suspended_on", "suspended_until", "suspension_reason")
TODAY = date(2026, 11, 22)


def paths(subjects: int, records: int, out: Path = DATA) -> tuple[Path, Path]:
    return out / f"subjects-{subjects}.csv", out / f"records-{subjects}-{records}.csv"


def generate(subjects: int, records: int, out: Path = DATA) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    subjects_path, records_path = paths(subjects, records, out)
    rng = random.Random(SEED)
    seen: set[str] = set()
    serial: dict[str, int] = {}
    written = 0
    with open(subjects_path, "w", encoding="utf-8", newline="") as sf, \
            open(records_path, "w", encoding="utf-8", newline="") as rf:
        sw, rw = csv.writer(sf), csv.writer(rf)
        sw.writerow(SUBJECT_HEADER)
        rw.writerow(RECORD_HEADER)
        for n in range(subjects):
            person = rng.random() < 0.9
            ident = _unique(rng, seen, person)
            sw.writerow(_subject(rng, ident, person))
            k = rng.choices(RECORD_COUNTS, RECORD_WEIGHTS)[0]
            owed = records - written
            left = subjects - n
            k = min(k, owed) if left > owed / 12 else owed // left + (owed % left > 0)
            for _ in range(k):
                rw.writerow(_record(rng, ident, person, serial))
            written += k
        assert written == records or not subjects, (written, records)
    return subjects_path, records_path


def _unique(rng: random.Random, seen: set[str], person: bool) -> str:
    while True:
        region = rng.choice(REGIONS)
        ident = make_resident_id(rng, region=region) if person else make_credit_code(
            rng, region=region, category=rng.choice("1123"), department=rng.choice("9995"))
        if ident not in seen:
            seen.add(ident)
            return ident


def _subject(rng: random.Random, ident: str, person: bool) -> tuple:
    if person:
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2, 2))))
        return ("person" if rng.random() < 0.7 else "", ident, name, "", "", "")
    kind = "enterprise" if ident[0] == "9" else "institution"
    name = (rng.choice(PLACES) + "".join(rng.choices(GIVEN, k=2)) + rng.choice(TRADES) + rng.choice(ORG_SUFFIX)
            if kind == "enterprise" else rng.choice(PLACES) + rng.choice(("第一中学", "人民医院", "图书馆", "档案馆")))
    grade = rng.choices("ABCD", (30, 45, 18, 7))[0] if rng.random() < 0.8 else ""
    evaluated = (TODAY - timedelta(days=rng.randrange(20, 700))).isoformat() if grade else ""
    risk = rng.choices(("low", "moderate", "elevated", "high", ""), (40, 30, 10, 5, 15))[0]
    row = (kind, ident, name, grade, evaluated, risk)
    if rng.random() < 0.0003:  # a typo in the grade column
        row = (kind, ident, name, "E", evaluated, risk)
    return row


def _record(rng: random.Random, ident: str, person: bool, serial: dict[str, int]) -> tuple:
    if rng.random() < 0.65:
        category = rng.choice(PERSON_HONOURS if person else ORG_HONOURS)
        bad = False
    else:
        category = rng.choice(BAD)
        bad = True
    source = SOURCE[category]
    serial[source] = serial.get(source, 0) + 1
    effective = TODAY - timedelta(days=rng.randrange(-30, 3650))
    published_until = repaired = reason = suspended = suspended_until = suspension_reason = ""
    roll = rng.random()
    if bad:
        if roll < 0.30:
            repaired = (effective + timedelta(days=rng.randrange(30, 900))).isoformat()
            reason = "已履行法定义务，申请信用修复"
        elif roll < 0.45:
            published_until = (effective + timedelta(days=rng.randrange(180, 1100))).isoformat()
        elif roll < 0.50:
            suspended = (effective + timedelta(days=rng.randrange(10, 300))).isoformat()
            if rng.random() < 0.6:
                suspended_until = (date.fromisoformat(suspended) + timedelta(days=rng.randrange(30, 365))).isoformat()
            suspension_reason = "签署信用承诺书，法院决定暂缓执行"
    elif roll < 0.4:
        published_until = (effective + timedelta(days=rng.choice((365, 730, 1095)))).isoformat()
    row = [ident, category, source, f"{source[3:6].upper()}-{effective.year}-{serial[source]:08d}",
           effective.isoformat(), published_until, repaired, reason, suspended, suspended_until, suspension_reason]
    if rng.random() < 0.0005:  # bad rows, as real exports have: a typo in a date or a category
        row[rng.choice((1, 4))] = rng.choice(("2023-02-30", "dishonest_debtor"))
    return tuple(row)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    s, r = generate(args.subjects, args.records, args.out)
    print(f"wrote {s} ({s.stat().st_size / 1e6:.1f} MB) and {r} ({r.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
