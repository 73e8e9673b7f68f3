"""Bulk import of subjects and credit records from CSV or JSON Lines: validate in Python, stage, upsert in SQL.

The file streams through in batches: each row is validated by the same rules the single-row
operations use (handlers.subjects, handlers.identifiers), good rows go to a temporary staging
table (COPY on PostgreSQL), bad ones to a reject table with their line number. Then, in one
transaction, set-based SQL finds duplicates within the file, unknown subjects and kind
mismatches, upserts the rest and refreshes the colour of every subject it touched. Memory stays
flat whatever the file size; only masked identifiers and encrypted names ever reach the database
or the rejects file.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date
from itertools import islice

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, Engine, bindparam, column, select, table, text
from sqlalchemy.orm import Session
from tqdm import tqdm

from . import bulk, colours, identifiers, subjects, timeutil
from .errors import CATALOGUE, DomainError
from .models import Category, RecordKind, Subject, SubjectKind
from .privacy import Keys, mask_name

BATCH = 5000
IDENTITY_CACHE = 1 << 15
_BOM = b"\xef\xbb\xbf"
_NOW = bindparam("now", type_=Subject.__table__.c.created_at.type)

# --- the result ------------------------------------------------------------------------------


@dataclass
class Summary:
    """What an import did. ``accepted`` rows are in the database (inserted, updated or unchanged)."""

    what: str
    read: int = 0
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    subjects_refreshed: int = 0
    seconds: float = 0.0
    rejects_path: str | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, for benchmarks

    def describe(self) -> str:
        text_ = (f"{self.what}: {self.read} read, {self.accepted} accepted ({self.inserted} inserted, "
                 f"{self.updated} updated, {self.unchanged} unchanged), {self.rejected} rejected")
        if self.rejected:
            text_ += f" (see {self.rejects_path})"
        if self.subjects_refreshed:
            text_ += f"; {self.subjects_refreshed} subject colours refreshed"
        return text_ + f"; {self.seconds:.1f} s"


class _Reject(Exception):
    def __init__(self, reason: str, field_: str | None, message: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field_
        self.message = message or CATALOGUE[reason][1]


def _check(field_: str, fn: Callable, *args):
    """Run a domain rule on one field; its DomainError becomes a reject naming the field."""
    try:
        return fn(*args)
    except DomainError as e:
        raise _Reject(e.code, field_, e.message) from None


# --- reading: rows as tuples in the order of the format's columns ------------------------------

Row = tuple[int, "tuple[str, ...] | _Reject"]  # (line number, values or why the row cannot be read)


def _csv_rows(f, columns: tuple[str, ...], required: tuple[str, ...]) -> Iterator[Row]:
    decoded = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _csv_decoded(csv.reader(decoded), columns, required)
    finally:
        decoded.detach()  # the caller owns the file (and reads its position for the progress bar)


def _csv_decoded(reader, columns: tuple[str, ...], required: tuple[str, ...]) -> Iterator[Row]:
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return
    for name in required:
        if name not in header:
            raise DomainError("missing_field", f"文件缺少必需的列：{name}")
    where = [header.index(c) if c in header else None for c in columns]
    width = len(header)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield line, _Reject("bad_row", None, "CSV 格式错误")
            continue
        if not row:
            continue  # a blank line
        if len(row) != width:
            yield line, _Reject("bad_row", None, "列数与表头不一致")
            continue
        yield line, _utf8(tuple("" if i is None else row[i] for i in where))


def _jsonl_rows(f, columns: tuple[str, ...]) -> Iterator[Row]:
    for line, raw in enumerate(f, 1):
        if line == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:  # also UnicodeDecodeError
            yield line, _Reject("bad_row", None, "不是有效的 JSON")
            continue
        if not isinstance(obj, dict):
            yield line, _Reject("bad_row", None, "每行应为一个 JSON 对象")
            continue
        try:
            values = tuple(_text(obj.get(c)) for c in columns)
        except TypeError:
            yield line, _Reject("bad_row", None, "字段类型不正确")
            continue
        yield line, _utf8(values)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(type(value).__name__)


def _utf8(values: tuple[str, ...]) -> tuple[str, ...] | _Reject:
    # Undecodable bytes (CSV) and lone surrogates (JSON escapes) would abort the whole load later.
    try:
        "".join(values).encode()
    except UnicodeEncodeError:
        return _Reject("bad_row", None, "不是有效的 UTF-8 文本")
    return values


def _mask_raw(value: str) -> str:
    """A rejects-file form of whatever was in the identifier column: never the value in clear."""
    s = value.strip().upper()
    if 15 <= len(s) <= 20 and s.isascii() and s.isalnum():
        return identifiers.mask(s)
    return "*" * min(len(s), 18)


# --- validating one row ----------------------------------------------------------------------

def _required(values: tuple[str, ...], columns: tuple[str, ...], required_at: tuple[int, ...]) -> None:
    for i in required_at:
        if not values[i].strip():
            raise _Reject("missing_field", columns[i])


def _date(value: str, field_: str) -> str | None:
    """YYYY-MM-DD exactly (date.fromisoformat alone would also take 20240101); kept as ISO text."""
    if not value:
        return None
    s = value.strip()
    if not s:
        return None
    if len(s) != 10 or s[4] != "-" or s[7] != "-":
        raise _Reject("bad_date", field_)
    try:
        date.fromisoformat(s)
    except ValueError:
        raise _Reject("bad_date", field_) from None
    return s


def _text_field(value: str, field_: str, limit: int) -> str:
    s = value.strip()
    if len(s) > limit:
        raise _Reject("field_too_long", field_)
    return s


def _any_identifier(value: str) -> str:
    """Canonical identifier of a person or an organisation, told apart by shape (as subjects.find does)."""
    kind = identifiers.guess_kind(value)
    try:
        return identifiers.normalise(kind, value)
    except DomainError:
        if kind == "person":  # an all-digit credit code has the shape of a resident ID
            try:
                return identifiers.normalise_credit_code(value)
            except DomainError:
                pass
        raise


SUBJECT_COLUMNS = ("kind", "identifier", "name", "grade", "grade_evaluated_on", "risk_level")
SUBJECT_REQUIRED = ("identifier", "name")
_SUBJECT_STAGE = (("line", "int"), ("kind", "text"), ("id_hash", "text"), ("id_masked", "text"),
                  ("name_encrypted", "bytes"), ("name_masked", "text"), ("grade", "text"),
                  ("grade_evaluated_on", "date"), ("risk_level", "text"))


def _subject_validator(hasher: Callable[[str], str]):
    required_at = tuple(SUBJECT_COLUMNS.index(c) for c in SUBJECT_REQUIRED)

    def validate(line: int, values: tuple[str, ...]) -> tuple:
        _required(values, SUBJECT_COLUMNS, required_at)
        kind_raw, ident, name, grade_raw, graded_raw, risk_raw = values
        kind_raw = kind_raw.strip()
        kind = (_check("kind", subjects.kind_of, kind_raw) if kind_raw
                else SubjectKind(identifiers.guess_kind(ident)))
        canonical = _check("identifier", identifiers.normalise, kind.value, ident)
        name = _check("name", subjects.clean_name, name)
        grade = _check("grade", subjects.grade_of, grade_raw)
        graded_on = _date(graded_raw, "grade_evaluated_on")
        risk = _check("risk_level", subjects.risk_of, risk_raw)
        person = kind is SubjectKind.person
        if person and (grade or graded_on):
            raise _Reject("bad_grade", "grade" if grade else "grade_evaluated_on", "个人不适用信用等级")
        if person and risk:
            raise _Reject("bad_risk_level", "risk_level", "个人不适用风险等级")
        # The clear name travels only to _stage_subjects, which encrypts it.
        return (line, kind.value, hasher(canonical), identifiers.mask(canonical), name,
                mask_name(name, person=person), grade and grade.value, graded_on, risk and risk.value)

    return validate


RECORD_COLUMNS = ("identifier", "category", "source", "external_id", "effective_on", "published_until",
                  "repaired_on", "repair_reason", "suspended_on", "suspended_until", "suspension_reason")
RECORD_REQUIRED = ("identifier", "category", "source", "external_id", "effective_on")
_RECORD_STAGE = (("line", "int"), ("id_hash", "text"), ("id_masked", "text"), ("kind", "text"),
                 ("category_code", "text"), ("applies_to", "text"), ("source", "text"), ("external_id", "text"),
                 ("effective_on", "date"), ("published_until", "date"), ("repaired_on", "date"),
                 ("repair_reason", "text"), ("suspended_on", "date"), ("suspended_until", "date"),
                 ("suspension_reason", "text"))
_BAD_ONLY = ("repaired_on", "repair_reason", "suspended_on", "suspended_until", "suspension_reason")


def _record_validator(hasher: Callable[[str], str], categories: dict[str, tuple[str, str]]):
    required_at = tuple(RECORD_COLUMNS.index(c) for c in RECORD_REQUIRED)

    # A subject has a few records, often on neighbouring lines: checking and hashing its identifier
    # once instead of each time is a third of the work per row. Bounded, so memory stays flat.
    @lru_cache(maxsize=IDENTITY_CACHE)
    def identity(raw: str) -> tuple[str, str]:
        canonical = _any_identifier(raw)
        return hasher(canonical), identifiers.mask(canonical)

    bad_only_at = tuple(RECORD_COLUMNS.index(c) for c in _BAD_ONLY)

    def validate(line: int, values: tuple[str, ...]) -> tuple:
        _required(values, RECORD_COLUMNS, required_at)
        (ident, category, source, external_id, effective_raw, published_raw, repaired_raw, repair_reason,
         suspended_raw, suspended_until_raw, suspension_reason) = values
        cat = categories.get(category.strip())
        if cat is None:
            raise _Reject("unknown_category", "category")
        kind, applies_to = cat
        id_hash, id_masked = _check("identifier", identity, ident)
        source = _text_field(source, "source", 64)
        external_id = _text_field(external_id, "external_id", 128)
        effective_on = _date(effective_raw, "effective_on")
        published_until = _date(published_raw, "published_until")
        repaired_on = _date(repaired_raw, "repaired_on")
        suspended_on = _date(suspended_raw, "suspended_on")
        suspended_until = _date(suspended_until_raw, "suspended_until")
        if kind != RecordKind.bad.value:
            for i in bad_only_at:
                if values[i].strip():
                    raise _Reject("not_a_bad_record", RECORD_COLUMNS[i])
        # ISO dates compare as text.
        if published_until is not None and published_until < effective_on:
            raise _Reject("dates_out_of_order", "published_until")
        if suspended_until is not None:
            if suspended_on is None:
                raise _Reject("missing_field", "suspended_on")
            if suspended_until < suspended_on:
                raise _Reject("dates_out_of_order", "suspended_until")
        return (line, id_hash, id_masked, kind, category.strip(), applies_to,
                source, external_id, effective_on, published_until, repaired_on, repair_reason.strip() or None,
                suspended_on, suspended_until, suspension_reason.strip() or None)

    return validate


# --- staging -------------------------------------------------------------------------------------

_REJECT_STAGE = (("line", "int"), ("reason", "text"), ("field", "text"), ("message", "text"),
                 ("identifier_masked", "text"))
_REJECT_COLUMNS = tuple(c for c, _ in _REJECT_STAGE)
_TEMP = ("import_subject", "import_record", "import_reject", "import_resolved", "import_touched")


def _stage_subjects(conn: Connection, keys: Keys, rows: list[tuple]) -> None:
    """Encrypt names and stage. A name that did not change keeps its stored ciphertext, so that the
    set-based phase can tell unchanged rows (AES-GCM with a fresh nonce never encrypts alike twice)."""
    if not rows:
        return
    stored = dict(conn.execute(select(Subject.id_hash, Subject.name_encrypted)
                               .where(Subject.id_hash.in_([r[2] for r in rows]))).all())
    staged = []
    for line, kind, id_hash, id_masked, name, name_masked, grade, graded_on, risk in rows:
        blob = stored.get(id_hash)
        if blob is None or not _same_name(keys, blob, id_hash, name):
            blob = keys.encrypt_name(name, bound_to=id_hash)
        staged.append((line, kind, id_hash, id_masked, blob, name_masked, grade, graded_on, risk))
    bulk.load(conn, "import_subject", [c for c, _ in _SUBJECT_STAGE], staged)


def _same_name(keys: Keys, blob: bytes, id_hash: str, name: str) -> bool:
    try:
        return keys.decrypt_name(blob, bound_to=id_hash) == name
    except InvalidTag:
        return False


def _stage_records(conn: Connection, keys: Keys, rows: list[tuple]) -> None:
    bulk.load(conn, "import_record", [c for c, _ in _RECORD_STAGE], rows)


# --- the set-based phase -----------------------------------------------------------------------

_RESOLVE_SUBJECTS = """
CREATE TEMPORARY TABLE import_resolved AS
SELECT st.line, st.kind, st.id_hash, st.id_masked, st.name_encrypted, st.name_masked, st.grade,
       st.grade_evaluated_on, st.risk_level, s.id AS existing_id, s.colour AS existing_colour,
       CASE WHEN s.id IS NULL THEN 1
            WHEN (s.kind, s.name_encrypted, s.name_masked, s.grade, s.grade_evaluated_on, s.risk_level)
                 IS DISTINCT FROM
                 (st.kind, st.name_encrypted, st.name_masked, st.grade, st.grade_evaluated_on, st.risk_level)
            THEN 1 ELSE 0 END AS changed,
       CASE WHEN row_number() OVER (PARTITION BY st.id_hash ORDER BY st.line) > 1 THEN 'duplicate_in_file'
            WHEN s.id IS NOT NULL AND (s.kind = 'person') <> (st.kind = 'person') THEN 'bad_subject_kind'
       END AS reason
FROM import_subject st LEFT JOIN subject s ON s.id_hash = st.id_hash
"""

_UPSERT_SUBJECTS = """
INSERT INTO subject (kind, id_hash, id_masked, name_encrypted, name_masked, grade, grade_evaluated_on,
                     risk_level, colour, created_at)
SELECT kind, id_hash, id_masked, name_encrypted, name_masked, grade, grade_evaluated_on, risk_level,
       'blue', :now
FROM import_resolved WHERE reason IS NULL AND changed = 1
ON CONFLICT (id_hash) DO UPDATE SET
    kind = excluded.kind, name_encrypted = excluded.name_encrypted, name_masked = excluded.name_masked,
    grade = excluded.grade, grade_evaluated_on = excluded.grade_evaluated_on, risk_level = excluded.risk_level
"""

_RECORD_VALUES = ("kind", "category_code", "effective_on", "published_until", "repaired_on", "repair_reason",
                  "suspended_on", "suspended_until", "suspension_reason")

_RESOLVE_RECORDS = f"""
CREATE TEMPORARY TABLE import_resolved AS
SELECT st.line, st.id_masked, st.source, st.external_id, {', '.join('st.' + c for c in _RECORD_VALUES)},
       s.id AS subject_id, cr.id AS existing_id, cr.subject_id AS old_subject_id,
       CASE WHEN cr.id IS NULL THEN 1
            WHEN (cr.subject_id, {', '.join('cr.' + c for c in _RECORD_VALUES)})
                 IS DISTINCT FROM (s.id, {', '.join('st.' + c for c in _RECORD_VALUES)})
            THEN 1 ELSE 0 END AS changed,
       CASE WHEN row_number() OVER (PARTITION BY st.source, st.external_id ORDER BY st.line) > 1
                 THEN 'duplicate_in_file'
            WHEN s.id IS NULL THEN 'unknown_subject'
            WHEN (st.applies_to = 'person' AND s.kind <> 'person')
                 OR (st.applies_to = 'organisation' AND s.kind = 'person') THEN 'category_kind_mismatch'
       END AS reason
FROM import_record st
LEFT JOIN subject s ON s.id_hash = st.id_hash
LEFT JOIN credit_record cr ON cr.source = st.source AND cr.external_id = st.external_id
"""

_UPSERT_RECORDS = f"""
INSERT INTO credit_record (subject_id, source, external_id, {', '.join(_RECORD_VALUES)}, created_at, updated_at)
SELECT subject_id, source, external_id, {', '.join(_RECORD_VALUES)}, :now, :now
FROM import_resolved WHERE reason IS NULL AND changed = 1
ON CONFLICT (source, external_id) DO UPDATE SET
    subject_id = excluded.subject_id, {', '.join(f'{c} = excluded.{c}' for c in _RECORD_VALUES)},
    updated_at = excluded.updated_at
"""

_TOUCHED_RECORDS = """
CREATE TEMPORARY TABLE import_touched AS
SELECT subject_id FROM import_resolved WHERE reason IS NULL AND changed = 1
UNION
SELECT old_subject_id FROM import_resolved WHERE reason IS NULL AND changed = 1 AND old_subject_id IS NOT NULL
"""

_TOUCHED_SUBJECTS = """
CREATE TEMPORARY TABLE import_touched AS
SELECT existing_id AS subject_id FROM import_resolved
WHERE reason IS NULL AND existing_id IS NOT NULL AND existing_colour IS NULL
"""

_COUNTS = """
SELECT COALESCE(SUM(CASE WHEN reason IS NULL THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN reason IS NULL AND existing_id IS NULL THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN reason IS NULL AND existing_id IS NOT NULL AND changed = 1 THEN 1 ELSE 0 END), 0)
FROM import_resolved
"""


@dataclass(frozen=True)
class _Spec:
    columns: tuple[str, ...]
    required: tuple[str, ...]
    staging: str
    stage_columns: tuple[tuple[str, str], ...]
    stage: Callable[[Connection, Keys, list[tuple]], None]
    resolve: str
    upsert: str
    touched: str


_SPECS = {
    "subjects": _Spec(SUBJECT_COLUMNS, SUBJECT_REQUIRED, "import_subject", _SUBJECT_STAGE, _stage_subjects,
                      _RESOLVE_SUBJECTS, _UPSERT_SUBJECTS, _TOUCHED_SUBJECTS),
    "records": _Spec(RECORD_COLUMNS, RECORD_REQUIRED, "import_record", _RECORD_STAGE, _stage_records,
                     _RESOLVE_RECORDS, _UPSERT_RECORDS, _TOUCHED_RECORDS),
}

_REJECT_FIELDS = """
INSERT INTO import_reject (line, reason, field, identifier_masked)
SELECT line, reason,
       CASE reason WHEN 'duplicate_in_file' THEN :dup_field WHEN 'category_kind_mismatch' THEN 'category'
                   WHEN 'bad_subject_kind' THEN 'kind' ELSE 'identifier' END,
       id_masked
FROM import_resolved WHERE reason IS NOT NULL
"""


# --- the operation -------------------------------------------------------------------------------

def run(engine: Engine, keys: Keys, what: str, path: str | os.PathLike, *, rejects_path: str | None = None,
        fmt: str = "auto", progress: bool = False) -> Summary:
    """Import subjects or records from a file; returns counts. Rejected rows go to the rejects file.

    Idempotent: subjects are keyed by their identifier, records by (source, external_id); a second
    run of the same file inserts nothing and changes nothing. Raises DomainError only for a file it
    cannot read at all (a required column missing from the CSV header).
    """
    if what not in _SPECS:
        raise ValueError(f"cannot import {what!r}")
    spec = _SPECS[what]
    path = os.fspath(path)
    fmt = _format(path, fmt)
    summary = Summary(what, rejects_path=rejects_path or f"{path}.rejects.csv")
    started = time.perf_counter()
    with engine.connect() as conn:
        try:
            with _sqlite_cache(conn):
                _import(conn, keys, spec, path, fmt, summary, progress)
        except BaseException:
            conn.invalidate()  # discards the connection and with it every temporary table
            raise
        bulk.drop_temp(conn, *_TEMP)
        conn.commit()
    summary.seconds = time.perf_counter() - started
    return summary


@contextmanager
def _sqlite_cache(conn: Connection, mib: int = 64):
    """SQLite's default page cache (2 MiB) thrashes on indexes of a million rows; a bounded larger
    one for the duration of the import keeps memory flat and the import several times faster."""
    if conn.dialect.name != "sqlite":
        yield
        return
    saved = [conn.exec_driver_sql(f"PRAGMA {db}.cache_size").scalar() for db in ("main", "temp")]
    for db in ("main", "temp"):
        conn.exec_driver_sql(f"PRAGMA {db}.cache_size = {-mib * 1024}")
    try:
        yield
    finally:
        for db, value in zip(("main", "temp"), saved):
            conn.exec_driver_sql(f"PRAGMA {db}.cache_size = {value}")


def _format(path: str, fmt: str) -> str:
    if fmt == "auto":
        return "jsonl" if path.lower().endswith((".jsonl", ".ndjson")) else "csv"
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}")
    return fmt


def _import(conn: Connection, keys: Keys, spec: _Spec, path: str, fmt: str, summary: Summary,
            progress: bool) -> None:
    clock = time.perf_counter()
    bulk.drop_temp(conn, "import_resolved", "import_touched")
    bulk.create_temp(conn, spec.staging, spec.stage_columns)
    bulk.create_temp(conn, "import_reject", _REJECT_STAGE)
    hasher = keys.hasher()
    if spec is _SPECS["subjects"]:
        validate = _subject_validator(hasher)
    else:
        categories = {code: (kind.value, applies.value) for code, kind, applies in
                      conn.execute(select(Category.code, Category.kind, Category.applies_to))}
        validate = _record_validator(hasher, categories)
    conn.commit()
    id_at = spec.columns.index("identifier")

    with open(path, "rb") as f, tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"import {summary.what}", file=sys.stderr, disable=not progress,
                                     leave=False) as bar:
        rows = _jsonl_rows(f, spec.columns) if fmt == "jsonl" else _csv_rows(f, spec.columns, spec.required)
        staging = 0.0
        for batch in _batches(rows, BATCH):
            good: list[tuple] = []
            bad: list[tuple] = []
            for line, values in batch:
                if isinstance(values, _Reject):
                    bad.append((line, values.reason, values.field, values.message, None))
                    continue
                try:
                    good.append(validate(line, values))
                except _Reject as r:
                    bad.append((line, r.reason, r.field, r.message, _mask_raw(values[id_at])))
            summary.read += len(batch)
            tick = time.perf_counter()
            spec.stage(conn, keys, good)
            bulk.load(conn, "import_reject", _REJECT_COLUMNS, bad)
            conn.commit()  # staging is temporary: committing only ends the batch's (SQLite) write lock
            staging += time.perf_counter() - tick
            bar.update(f.tell() - bar.n)
        bar.set_postfix_str("writing")
        summary.phases["read_and_validate"] = time.perf_counter() - clock - staging
        summary.phases["stage"] = staging

        clock = time.perf_counter()
        with conn.begin():  # everything that changes the ledger, or nothing
            bulk.analyze(conn, spec.staging)
            conn.exec_driver_sql(spec.resolve)
            bulk.analyze(conn, "import_resolved")
            conn.execute(text(_REJECT_FIELDS), {"dup_field": "identifier" if spec.staging == "import_subject"
                                                else "external_id"})
            accepted, inserted, updated = conn.execute(text(_COUNTS)).one()
            conn.execute(text(spec.upsert).bindparams(_NOW), {"now": timeutil.now()})
            summary.phases["upsert"] = time.perf_counter() - clock

            clock = time.perf_counter()
            conn.exec_driver_sql(spec.touched)
            touched = select(column("subject_id")).select_from(table("import_touched"))
            with Session(bind=conn) as session:
                summary.subjects_refreshed = colours.refresh_all(session, touched)
            summary.phases["colours"] = time.perf_counter() - clock
        bar.update(bar.total - bar.n)

    summary.accepted, summary.inserted, summary.updated = int(accepted), int(inserted), int(updated)
    summary.unchanged = summary.accepted - summary.inserted - summary.updated
    summary.rejected = summary.read - summary.accepted
    clock = time.perf_counter()
    _write_rejects(conn, summary.rejects_path, summary.rejected)
    conn.commit()
    summary.phases["rejects"] = time.perf_counter() - clock


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _write_rejects(conn: Connection, path: str, count: int) -> None:
    """Rejects in line order; a stale file from an earlier run is removed so it always tells of this one."""
    if not count:
        if os.path.exists(path):
            os.remove(path)
        return
    rows = conn.execute(text("SELECT line, reason, field, message, identifier_masked FROM import_reject ORDER BY line")
                        .execution_options(yield_per=BATCH))
    with open(path, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out)
        w.writerow(_REJECT_COLUMNS)
        for line, reason, field_, message, masked in rows:
            w.writerow((line, reason, field_ or "", message or CATALOGUE[reason][1], masked or ""))
