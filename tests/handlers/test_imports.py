"""Bulk import: formats, idempotency, every reject reason with its line, colours afterwards, no clear data out.

Imports commit through their own connection, so these tests do not roll back: each uses fresh
identifiers and a source name of its own, and asserts only about what it imported.
"""
from __future__ import annotations

import csv
import json
import random
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import colours, identifiers, imports, subjects, timeutil
from handlers.errors import CATALOGUE, DomainError
from handlers.models import Colour, CreditRecord, Subject

from ..conftest import KEYS, add_record, create_subject, database_of_its_own

# These tests commit for real: they get a database of their own.
database_url, engine = database_of_its_own()

_rng = random.Random(4242)
SUBJECT_HEADER = list(imports.SUBJECT_COLUMNS)
RECORD_HEADER = list(imports.RECORD_COLUMNS)
TODAY = timeutil.local_date(timeutil.now())


def person_id() -> str:
    return identifiers.make_resident_id(_rng)


def org_id() -> str:
    return identifiers.make_credit_code(_rng)


def source() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def write_csv(path, header, rows, *, bom=False):
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in rows:
            w.writerow(row)
    return path


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
            f.write("\n")
    return path


def subject_row(ident, name="张三明", kind="person", grade="", graded_on="", risk=""):
    return [kind, ident, name, grade, graded_on, risk]


def record_row(ident, src, external_id, category="dishonest_judgment_debtor", effective_on="2020-01-01", **kw):
    row = dict.fromkeys(RECORD_HEADER, "")
    row.update(identifier=ident, category=category, source=src, external_id=external_id, effective_on=effective_on, **kw)
    return [row[c] for c in RECORD_HEADER]


def stored(engine, ident) -> Subject | None:
    with Session(engine) as s:
        return s.scalar(select(Subject).where(Subject.id_hash == KEYS.identifier_hash(ident)))


def records_of(engine, src) -> list[CreditRecord]:
    with Session(engine) as s:
        return list(s.scalars(select(CreditRecord).where(CreditRecord.source == src)
                              .order_by(CreditRecord.external_id)))


def rejects(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def import_subjects(engine, tmp_path, rows, **kw):
    path = write_csv(tmp_path / f"subjects-{uuid.uuid4().hex[:6]}.csv", SUBJECT_HEADER, rows)
    return imports.run(engine, KEYS, "subjects", path, **kw), path


# --- subjects -------------------------------------------------------------------------------------

def test_subjects_are_inserted_then_a_second_run_changes_nothing(engine, tmp_path):
    p, e, i = person_id(), org_id(), org_id()
    rows = [subject_row(p, "王小明"),
            subject_row(e, "惠州市示例科技有限公司", "enterprise", "A", "2025-06-30", "low"),
            subject_row(i, "惠州市第一中学", "", "B")]  # kind guessed from the identifier's shape
    path = write_csv(tmp_path / "subjects.csv", SUBJECT_HEADER, rows)

    first = imports.run(engine, KEYS, "subjects", path)
    assert (first.read, first.accepted, first.inserted, first.updated, first.rejected) == (3, 3, 3, 0, 0)
    before = {x: stored(engine, x) for x in (p, e, i)}
    assert before[p].kind == "person" and before[p].colour == Colour.blue and before[p].name_masked == "王*明"
    assert subjects.full_name(KEYS, before[e]) == "惠州市示例科技有限公司"
    assert (before[e].grade, before[e].grade_evaluated_on, before[e].risk_level) == ("A", date(2025, 6, 30), "low")
    assert before[i].kind == "enterprise" and before[i].grade == "B"
    assert before[p].id_masked == identifiers.mask(p)

    second = imports.run(engine, KEYS, "subjects", path)
    assert (second.inserted, second.updated, second.unchanged, second.rejected) == (0, 0, 3, 0)
    for ident, old in before.items():
        new = stored(engine, ident)
        assert (new.id, new.name_encrypted, new.grade, new.colour) == (old.id, old.name_encrypted, old.grade, old.colour)
    assert not (tmp_path / "subjects.csv.rejects.csv").exists()


def test_a_subject_is_updated_in_place_and_its_identifier_never_changes(engine, tmp_path):
    e = org_id()
    import_subjects(engine, tmp_path, [subject_row(e, "惠州市旧名有限公司", "enterprise", "C")])
    old = stored(engine, e)
    summary, _ = import_subjects(engine, tmp_path, [subject_row(e, "惠州市新名有限公司", "institution", "A", "", "high")])
    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 0)
    new = stored(engine, e)
    assert new.id == old.id and new.id_hash == old.id_hash
    assert subjects.full_name(KEYS, new) == "惠州市新名有限公司"
    assert (new.kind, new.grade, new.risk_level) == ("institution", "A", "high")


def test_subjects_from_json_lines_with_a_bom(engine, tmp_path):
    p = person_id()
    path = tmp_path / "subjects.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"identifier": p, "name": "李四"}, ensure_ascii=False).encode() + b"\n\n")
    summary = imports.run(engine, KEYS, "subjects", path)
    assert (summary.read, summary.inserted) == (1, 1)
    assert stored(engine, p).kind == "person"


def test_a_missing_required_column_stops_before_anything_is_read(engine, tmp_path):
    path = write_csv(tmp_path / "s.csv", ["kind", "name"], [["person", "张三"]])
    with pytest.raises(DomainError) as excinfo:
        imports.run(engine, KEYS, "subjects", path)
    assert excinfo.value.code == "missing_field"


def test_every_subject_reason_code_with_its_line(engine, tmp_path):
    good, dup = person_id(), org_id()
    valid = person_id()
    bad_digit = valid[:17] + ("1" if valid[17] != "1" else "2")
    path = tmp_path / "subjects.csv"
    lines = [
        ",".join(SUBJECT_HEADER),                                        # 1
        ",".join(subject_row(good, "赵六")),                              # 2 good
        ",".join(subject_row("12345", "钱七")),                           # 3 bad_identifier
        ",".join(subject_row(bad_digit, "孙八")),                         # 4 bad_check_digit
        ",".join(subject_row(person_id(), "周九", "martian")),            # 5 bad_subject_kind
        ",".join(subject_row(person_id(), "   ")),                         # 6 missing_field (name)
        ",".join(subject_row(person_id(), "名" * 101)),                    # 7 bad_name
        ",".join(subject_row(org_id(), "惠州市甲有限公司", "enterprise", "E")),    # 8 bad_grade
        ",".join(subject_row(person_id(), "吴十", "person", "A")),          # 9 bad_grade (persons have none)
        ",".join(subject_row(org_id(), "惠州市乙有限公司", "enterprise", "", "", "red")),  # 10 bad_risk_level
        ",".join(subject_row(org_id(), "惠州市丙有限公司", "enterprise", "A", "2025/01/01")),  # 11 bad_date
        ",".join(subject_row(dup, "惠州市丁有限公司", "enterprise")),       # 12 good
        "person,only-three-columns,x",                                     # 13 bad_row
        ",".join(subject_row(dup, "惠州市丁有限公司", "enterprise")),       # 14 duplicate_in_file
        ",".join(subject_row(good, "赵六", "enterprise")),                 # 15 bad_check_digit: not a credit code
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = imports.run(engine, KEYS, "subjects", path)
    assert (summary.read, summary.accepted, summary.rejected) == (14, 2, 12)
    got = [(int(r["line"]), r["reason"], r["field"]) for r in rejects(summary.rejects_path)]
    assert got == [
        (3, "bad_identifier", "identifier"), (4, "bad_check_digit", "identifier"), (5, "bad_subject_kind", "kind"),
        (6, "missing_field", "name"), (7, "bad_name", "name"), (8, "bad_grade", "grade"), (9, "bad_grade", "grade"),
        (10, "bad_risk_level", "risk_level"), (11, "bad_date", "grade_evaluated_on"), (13, "bad_row", ""),
        (14, "duplicate_in_file", "identifier"), (15, "bad_check_digit", "identifier"),
    ]
    assert stored(engine, good) is not None and stored(engine, dup) is not None
    text = Path(summary.rejects_path).read_text(encoding="utf-8")
    assert good not in text and dup not in text and "孙八" not in text and "周九" not in text
    assert all(r["message"] for r in rejects(summary.rejects_path))


def test_a_person_cannot_become_an_organisation(engine, tmp_path):
    # An identifier valid both as a resident ID and as a credit code (about one in 31 are), so that
    # only the stored subject can tell that the kind changed.
    rng = random.Random(11)
    while True:
        ident = identifiers.make_resident_id(rng)
        if identifiers.credit_code_check(ident[:17]) == ident[17]:
            break
    import_subjects(engine, tmp_path, [subject_row(ident, "张三")])
    summary, _ = import_subjects(engine, tmp_path, [subject_row(ident, "张三", "enterprise")])
    assert [(r["line"], r["reason"], r["field"]) for r in rejects(summary.rejects_path)] == [("2", "bad_subject_kind", "kind")]
    assert stored(engine, ident).kind == "person"


# --- records --------------------------------------------------------------------------------------

@pytest.fixture
def people(engine, tmp_path):
    """Five fresh persons and two enterprises, imported; returns their clear identifiers."""
    ids = {name: person_id() for name in ("red", "repaired", "honour", "suspended", "ended", "plain")}
    ids["firm"] = org_id()
    ids["firm2"] = org_id()
    rows = [subject_row(v, "测试人") for k, v in ids.items() if not k.startswith("firm")]
    rows += [subject_row(ids["firm"], "惠州市测试有限公司", "enterprise", "A"),
             subject_row(ids["firm2"], "惠州市测试二有限公司", "enterprise")]
    summary, _ = import_subjects(engine, tmp_path, rows)
    assert summary.inserted == len(ids)
    return ids


def test_records_from_csv_and_json_lines_give_the_right_colours(engine, tmp_path, people):
    src = source()
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    rows = [
        record_row(people["red"], src, "1"),
        record_row(people["repaired"], src, "2", repaired_on="2021-06-01", repair_reason="已履行"),
        record_row(people["honour"], src, "3", category="star_volunteer"),
        record_row(people["suspended"], src, "4", suspended_on="2021-01-01", suspension_reason="信用承诺"),
        record_row(people["ended"], src, "5", published_until=yesterday),
        record_row(people["firm"], src, "6", category="a_grade_taxpayer"),
    ]
    csv_path = write_csv(tmp_path / "records.csv", RECORD_HEADER, rows[:3])
    jsonl_path = write_jsonl(tmp_path / "records.jsonl", [dict(zip(RECORD_HEADER, r)) for r in rows[3:]])

    a = imports.run(engine, KEYS, "records", csv_path)
    b = imports.run(engine, KEYS, "records", jsonl_path)
    assert (a.inserted, b.inserted, a.rejected + b.rejected) == (3, 3, 0)
    assert a.subjects_refreshed == 3 and b.subjects_refreshed == 3
    expected = {"red": Colour.red, "repaired": Colour.blue, "honour": Colour.green, "suspended": Colour.blue,
                "ended": Colour.blue, "firm": Colour.green, "plain": Colour.blue}
    with Session(engine) as s:
        for who, colour in expected.items():
            subject = subjects.find(s, KEYS, people[who])
            assert subject.colour == colour, who  # the stored colour …
            assert colours.compute(colours._records_of(s, subject.id), timeutil.now()).colour == colour  # … is right
    record = next(r for r in records_of(engine, src) if r.external_id == "2")
    assert (record.kind, record.repaired_on, record.repair_reason) == ("bad", date(2021, 6, 1), "已履行")

    again = imports.run(engine, KEYS, "records", csv_path)
    assert (again.inserted, again.updated, again.unchanged, again.subjects_refreshed) == (0, 0, 3, 0)
    assert [r.updated_at for r in records_of(engine, src)] == [r.updated_at for r in records_of(engine, src)]


def test_a_second_run_changes_nothing_at_all(engine, tmp_path, people):
    src = source()
    path = write_csv(tmp_path / "r.csv", RECORD_HEADER, [record_row(people["plain"], src, str(n)) for n in range(5)])
    imports.run(engine, KEYS, "records", path)
    before = [(r.id, r.updated_at, r.created_at) for r in records_of(engine, src)]
    again = imports.run(engine, KEYS, "records", path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    assert [(r.id, r.updated_at, r.created_at) for r in records_of(engine, src)] == before


def test_a_changed_record_is_updated_and_the_colour_follows(engine, tmp_path, people):
    src = source()
    imports.run(engine, KEYS, "records", write_csv(tmp_path / "1.csv", RECORD_HEADER, [record_row(people["red"], src, "x")]))
    assert stored(engine, people["red"]).colour == Colour.red
    summary = imports.run(engine, KEYS, "records", write_csv(
        tmp_path / "2.csv", RECORD_HEADER, [record_row(people["red"], src, "x", repaired_on="2022-01-01")]))
    assert (summary.inserted, summary.updated) == (0, 1)
    assert stored(engine, people["red"]).colour == Colour.blue
    assert records_of(engine, src)[0].repaired_on == date(2022, 1, 1)


def test_a_record_moved_to_another_subject_refreshes_both(engine, tmp_path, people):
    src = source()
    imports.run(engine, KEYS, "records", write_csv(tmp_path / "1.csv", RECORD_HEADER, [record_row(people["red"], src, "m")]))
    summary = imports.run(engine, KEYS, "records", write_csv(
        tmp_path / "2.csv", RECORD_HEADER, [record_row(people["plain"], src, "m")]))
    assert summary.updated == 1 and summary.subjects_refreshed == 2
    assert stored(engine, people["red"]).colour == Colour.blue
    assert stored(engine, people["plain"]).colour == Colour.red


def test_every_record_reason_code_with_its_line(engine, tmp_path, people):
    src = source()
    unknown = person_id()
    rows = [
        record_row(people["red"], src, "1"),                                                         # 2 good
        record_row(people["red"], src, "2", category="no_such_category"),                            # 3 unknown_category
        record_row(people["red"], src, "3", category="a_grade_taxpayer"),                            # 4 category_kind_mismatch
        record_row(people["firm"], src, "4", category="star_volunteer"),                             # 5 category_kind_mismatch
        record_row(people["red"], src, "5", effective_on="2020-02-30"),                              # 6 bad_date
        record_row(people["red"], src, "6", published_until="2019-12-31"),                           # 7 dates_out_of_order
        record_row(people["red"], src, "7", suspended_on="2021-05-01", suspended_until="2021-04-01"),  # 8 dates_out_of_order
        record_row(people["honour"], src, "8", category="star_volunteer", repaired_on="2021-01-01"),  # 9 not_a_bad_record
        record_row(unknown, src, "9"),                                                               # 10 unknown_subject
        record_row(people["red"], src, "1"),                                                         # 11 duplicate_in_file
        record_row(people["red"], src, "", effective_on="2020-01-01"),                               # 12 missing_field
        record_row("not-an-id", src, "12"),                                                          # 13 bad_identifier
        record_row(people["red"][:17] + ("0" if people["red"][17] != "0" else "1"), src, "13"),      # 14 bad_check_digit
        record_row(people["red"], "s" * 65, "14"),                                                   # 15 field_too_long
        record_row(people["red"], src, "15", suspended_until="2021-04-01"),                          # 16 missing_field
        record_row(people["honour"], src, "16", category="star_volunteer"),                          # 17 good
        record_row(people["firm2"], src, "17", category="honest_enterprise"),                        # 18 good
    ]
    path = write_csv(tmp_path / "records.csv", RECORD_HEADER, rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write("only,three,fields\n")                                                              # 19 bad_row
    summary = imports.run(engine, KEYS, "records", path)
    got = [(int(r["line"]), r["reason"], r["field"]) for r in rejects(summary.rejects_path)]
    assert got == [
        (3, "unknown_category", "category"), (4, "category_kind_mismatch", "category"),
        (5, "category_kind_mismatch", "category"), (6, "bad_date", "effective_on"),
        (7, "dates_out_of_order", "published_until"), (8, "dates_out_of_order", "suspended_until"),
        (9, "not_a_bad_record", "repaired_on"), (10, "unknown_subject", "identifier"),
        (11, "duplicate_in_file", "external_id"), (12, "missing_field", "external_id"),
        (13, "bad_identifier", "identifier"), (14, "bad_check_digit", "identifier"),
        (15, "field_too_long", "source"), (16, "missing_field", "suspended_on"), (19, "bad_row", ""),
    ]
    assert (summary.read, summary.accepted, summary.inserted, summary.rejected) == (18, 3, 3, 15)
    assert [r.external_id for r in records_of(engine, src)] == ["1", "16", "17"]
    text = Path(summary.rejects_path).read_text(encoding="utf-8")
    for ident in (*people.values(), unknown):
        assert ident not in text
    reasons = {r["reason"] for r in rejects(summary.rejects_path)}
    assert reasons <= set(CATALOGUE)


def test_bad_json_lines_are_rejected_and_the_rest_imported(engine, tmp_path, people):
    src = source()
    good = dict(zip(RECORD_HEADER, record_row(people["plain"], src, "j1")))
    path = write_jsonl(tmp_path / "r.jsonl", [
        good,                                                  # 1
        "{not json",                                           # 2
        "[1, 2]",                                              # 3
        {**good, "external_id": "j2", "effective_on": None},   # 4 missing_field
        {**good, "external_id": ["j3"]},                       # 5 bad_row: not a string
        {**good, "external_id": 7},                            # 6 good: numbers are read as text
    ])
    summary = imports.run(engine, KEYS, "records", path, rejects_path=str(tmp_path / "out.csv"))
    got = [(int(r["line"]), r["reason"]) for r in rejects(tmp_path / "out.csv")]
    assert got == [(2, "bad_row"), (3, "bad_row"), (4, "missing_field"), (5, "bad_row")]
    assert sorted(r.external_id for r in records_of(engine, src)) == ["7", "j1"]
    assert summary.rejects_path == str(tmp_path / "out.csv")


def test_line_numbers_count_physical_lines_of_quoted_multi_line_fields(engine, tmp_path, people):
    src = source()
    path = write_csv(tmp_path / "r.csv", RECORD_HEADER, [
        record_row(people["red"], src, "a", repaired_on="2021-01-01", repair_reason="第一行\n第二行"),  # 2-3
        record_row(people["red"], src, "b", effective_on="bad"),                                     # 4
    ])
    summary = imports.run(engine, KEYS, "records", path)
    assert [(int(r["line"]), r["reason"]) for r in rejects(summary.rejects_path)] == [(4, "bad_date")]
    assert records_of(engine, src)[0].repair_reason == "第一行\n第二行"


def test_a_stale_rejects_file_is_removed_when_nothing_is_rejected(engine, tmp_path, people):
    src = source()
    path = write_csv(tmp_path / "r.csv", RECORD_HEADER, [record_row(people["plain"], src, "s")])
    stale = tmp_path / "r.csv.rejects.csv"
    stale.write_text("old")
    summary = imports.run(engine, KEYS, "records", path, progress=True)
    assert summary.rejected == 0 and not stale.exists()
    assert "1 read" in summary.describe()


def test_refresh_all_without_ids_covers_every_subject(db):
    s = create_subject(db)
    add_record(db, s, kind="bad")
    s.colour = None
    db.flush()
    assert colours.refresh_all(db) >= 1
    db.refresh(s)
    assert s.colour == Colour.red
