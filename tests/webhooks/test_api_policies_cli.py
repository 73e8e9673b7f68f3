"""`xinma policies match|stats` end to end against committed rows: progress lines, the summary, exit statuses."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from handlers import policies
from handlers.models import Account
from webhooks.cli import main

from ..conftest import SECRET, database_of_its_own
from ..handlers.test_offers_concurrency import World

# These tests commit for real: they get a database of their own.
database_url, engine = database_of_its_own()


@pytest.fixture
def world(engine):
    w = World(engine)
    yield w
    w.cleanup()


@pytest.fixture
def run(engine, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("XINMA_DATABASE_URL", database_url)
    monkeypatch.setenv("XINMA_SECRET_KEY", SECRET)
    monkeypatch.setenv("XINMA_INSTANCE_PATH", str(tmp_path / "instance"))

    def invoke(*args):
        return CliRunner().invoke(main, ["policies", *map(str, args)])

    return invoke


def test_match_prints_progress_and_a_summary(run, world, engine):
    world.enterprises(3)
    pid = world.policy(budget_fen=2_500_00)  # room for two of the three
    result = run("match", pid)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"policy {pid} «并发测试政策-") and lines[0].endswith("(draft), run 1")
    assert any("refreshing colours" in line for line in lines)
    assert any("counting eligible enterprises" in line for line in lines)
    assert any("making offers" in line for line in lines)
    assert "done: 3 eligible, 2 offered (2,000.00 yuan), 1 over budget, 0 notified" in result.output
    assert "left 500.00" in result.output and lines[-1].startswith("phases: colours ")

    with Session(engine) as s:  # publish: the preview is matched afresh and pushed
        policies.publish_policy(s, s.get(Account, world.admin_id), pid)
        s.commit()
    again = run("match", pid)
    assert again.exit_code == 0, again.output
    assert "(published), run 3" in again.output and "done: 1 eligible, 0 offered" in again.output
    stats = run("stats", pid)
    assert stats.exit_code == 0, stats.output
    assert "2 offers" in stats.output and "notified 2" in stats.output
    assert "committed  2,000.00 yuan" in stats.output


def test_unknown_or_closed_policy_exits_2(run, world, engine):
    assert run("match", 999_999_999).exit_code == 2
    assert "policy_not_found" in run("match", 999_999_999).output
    pid = world.policy()
    with Session(engine) as s:
        policies.close_policy(s, s.get(Account, world.admin_id), pid)
        s.commit()
    closed = run("match", pid)
    assert closed.exit_code == 2 and "illegal_transition" in closed.output
    assert run("stats", 999_999_999).exit_code == 2
