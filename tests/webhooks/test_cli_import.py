"""`xinma import` end to end: settings from the environment, the summary line, the exit status."""
from __future__ import annotations

import csv
import random
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import identifiers, imports
from handlers.models import Colour, Subject
from webhooks.cli import main

from ..conftest import KEYS, SECRET, database_of_its_own

# These tests commit for real: they get a database of their own.
database_url, engine = database_of_its_own()

_rng = random.Random(777)


@pytest.fixture
def run(engine, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("XINMA_DATABASE_URL", database_url)
    monkeypatch.setenv("XINMA_SECRET_KEY", SECRET)
    monkeypatch.setenv("XINMA_INSTANCE_PATH", str(tmp_path / "instance"))

    def invoke(*args):
        return CliRunner().invoke(main, ["import", *map(str, args)])

    return invoke


def write(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_import_subjects_then_records(run, engine, tmp_path):
    person = identifiers.make_resident_id(_rng)
    source = f"cli-{uuid.uuid4().hex[:8]}"
    subjects = write(tmp_path / "subjects.csv", ["identifier", "name"], [[person, "陈小红"]])
    records = write(tmp_path / "records.jsonl.csv", imports.RECORD_COLUMNS[:5],
                    [[person, "dishonest_judgment_debtor", source, "1", "2020-01-01"]])

    result = run("subjects", subjects, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "1 inserted" in result.output
    result = run("records", records, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "1 inserted" in result.output and "1 subject colours refreshed" in result.output
    with Session(engine) as s:
        subject = s.scalar(select(Subject).where(Subject.id_hash == KEYS.identifier_hash(person)))
        assert subject.colour == Colour.red

    again = run("records", records, "--format", "csv")
    assert again.exit_code == 0 and "0 inserted, 0 updated, 1 unchanged" in again.output


def test_all_rows_rejected_exits_1_and_names_the_rejects_file(run, tmp_path):
    path = write(tmp_path / "bad.csv", ["identifier", "name"], [["123", "某某"]])
    out = tmp_path / "why.csv"
    result = run("subjects", path, "--rejects", out)
    assert result.exit_code == 1
    assert str(out) in result.output
    assert "bad_identifier" in out.read_text(encoding="utf-8") and "某某" not in out.read_text(encoding="utf-8")


def test_an_unreadable_file_exits_2_with_the_reason(run, tmp_path):
    path = write(tmp_path / "s.csv", ["name"], [["张三"]])
    result = run("subjects", path)
    assert result.exit_code == 2
    assert "missing_field" in result.output
