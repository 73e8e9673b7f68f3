"""`xinma worker` and `xinma outbox …`: in-process through click, and as real processes stopped by SIGTERM or
killed with SIGKILL in the middle of a batch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner
from sqlalchemy import select

from handlers import outbox
from handlers.models import OutboxAttempt, OutboxMessage, OutboxState
from tests.conftest import SECRET
from tests.outbox_support import (  # noqa: F401 - fixtures
    TEMPLATE_IDS, committed, make_person, make_senders, make_worker, now_plus, outbox_engine, outbox_url, smtp_server,
)
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures
from webhooks.cli import main


def worker_env(outbox_url, emulator, tmp_path, **extra) -> dict:
    cfg = emulator.config
    return {"XINMA_DATABASE_URL": outbox_url, "XINMA_SECRET_KEY": SECRET, "XINMA_INSTANCE_PATH": str(tmp_path),
            "XINMA_WECHAT_APPID": cfg.appid, "XINMA_WECHAT_SECRET": cfg.secret,
            "XINMA_MINIPROGRAM_APPID": cfg.miniprogram_appid, "XINMA_MINIPROGRAM_SECRET": cfg.miniprogram_secret,
            "XINMA_WECHAT_API_BASE": emulator.base, "XINMA_WECHAT_TEMPLATE_IDS": json.dumps(TEMPLATE_IDS),
            "XINMA_LOG_LEVEL": "INFO", **extra}


def notify_people(committed, emulator, n):
    with committed() as s:
        people = [make_person(s, emulator, oa=True) for _ in range(n)]
        for p in people:
            outbox.notify(s, p.subject_id, "redemption", "已核销", {"lines": ["西湖景区"]})
        s.commit()
    return people


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_worker_once_drains_and_reports(committed, outbox_url, emulator, tmp_path):
    people = notify_people(committed, emulator, 3)
    r = CliRunner().invoke(main, ["worker", "--once", "--concurrency", "2", "--name", "cli-once"],
                           env=worker_env(outbox_url, emulator, tmp_path))
    assert r.exit_code == 0, r.output
    assert "channels template" in r.output
    assert "fanned out 3 notice(s) into 3 message(s)" in r.output and "sent 3" in r.output
    assert "stopped after" in r.output
    for p in people:
        assert [i["kind"] for i in emulator.inbox(p.oa_openid)] == ["template"]
    with committed() as s:
        assert {a.worker for a in s.scalars(select(OutboxAttempt))} == {"cli-once"}


def test_outbox_stats_and_retry_commands(committed, outbox_engine, outbox_url, emulator, tmp_path):
    env = worker_env(outbox_url, emulator, tmp_path)
    people = notify_people(committed, emulator, 2)
    emulator.fault("cgi-bin/message/template/send", errcode=40037, times=2)  # template refused: dead
    make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator)).drain()
    runner = CliRunner()
    r = runner.invoke(main, ["outbox", "stats", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["states"] == {"pending": 0, "sent": 0, "dead": 2}
    assert "dead 2" in runner.invoke(main, ["outbox", "stats"], env=env).output
    with committed() as s:
        first, _ = sorted(s.scalars(select(OutboxMessage.id)))
    r = runner.invoke(main, ["outbox", "retry", str(first), "999999"], env=env)
    assert r.exit_code == 1 and f"{first}: will be retried" in r.output
    assert "999999: outbox_message_not_found" in r.output
    r = runner.invoke(main, ["outbox", "retry", str(first)], env=env)
    assert r.exit_code == 1 and "outbox_not_retryable" in r.output  # pending now, not dead
    r = runner.invoke(main, ["outbox", "retry", "--all-dead"], env=env)
    assert r.exit_code == 0 and "1 dead message(s) will be retried" in r.output
    assert runner.invoke(main, ["outbox", "retry"], env=env).exit_code == 2
    assert runner.invoke(main, ["outbox", "retry", "--all-dead", "5"], env=env).exit_code == 2
    r = runner.invoke(main, ["worker", "--once"], env=env)
    assert "sent 2" in r.output
    for p in people:
        assert len(emulator.inbox(p.oa_openid)) == 1


def _start(env: dict, *args: str) -> subprocess.Popen:
    full = {**os.environ, **env}
    return subprocess.Popen([sys.executable, "-m", "webhooks.cli", "worker", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_worker_process_stops_gracefully_on_sigterm(committed, outbox_url, emulator, tmp_path):
    proc = _start(worker_env(outbox_url, emulator, tmp_path), "--idle", "0.1", "--name", "proc")
    try:
        people = notify_people(committed, emulator, 4)
        assert wait_for(lambda: all(emulator.inbox(p.oa_openid) for p in people)), "the worker did not deliver"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "received SIGTERM" in out and "stopped after" in out and "sent 4" in out
    assert '"msg": "outbox sent"' in err  # JSON log lines
    with committed() as s:
        assert {m.state for m in s.scalars(select(OutboxMessage))} == {OutboxState.sent}


def test_a_worker_killed_mid_batch_loses_nothing(committed, outbox_engine, outbox_url, emulator, tmp_path):
    people = notify_people(committed, emulator, 5)
    # The first send hangs for 3 s (then WeChat delivers it anyway): the process dies in the middle of it.
    emulator.fault("cgi-bin/message/template/send", timeout=3)
    proc = _start(worker_env(outbox_url, emulator, tmp_path, XINMA_WECHAT_TIMEOUT="10"),
                  "--concurrency", "1", "--lease", "30", "--name", "doomed")
    try:
        assert wait_for(lambda: emulator.requests_to("cgi-bin/message/template/send") >= 1), "no send started"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with committed() as s:
        leased = s.scalars(select(OutboxMessage).where(OutboxMessage.leased_by.is_not(None))).all()
        assert leased and all(m.leased_by.startswith("doomed/") for m in leased)
        assert all(m.state == OutboxState.pending for m in s.scalars(select(OutboxMessage)))
    heir = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator), name="heir")
    assert heir.drain().claimed == 0  # still leased to the dead process
    r = heir.drain(now=now_plus(31))
    assert r.outcomes["sent"] == 5
    assert wait_for(lambda: sum(len(emulator.inbox(p.oa_openid)) for p in people) >= 6, 10)
    counts = sorted(len(emulator.inbox(p.oa_openid)) for p in people)
    # Nothing lost; the one in flight when the process died arrived twice (at-least-once, docs/outbox.md).
    assert counts == [1, 1, 1, 1, 2]


def test_the_in_process_worker_delivers_and_stops(committed, outbox_engine, outbox_url, emulator, tmp_path):
    from types import SimpleNamespace

    from webhooks import config
    from webhooks import worker as outbox_worker
    settings = config.load({"DATABASE_URL": outbox_url, "SECRET_KEY": SECRET, "INSTANCE_PATH": str(tmp_path),
                            "WECHAT_APPID": emulator.config.appid, "WECHAT_SECRET": emulator.config.secret,
                            "WECHAT_API_BASE": emulator.base, "DEMO": True, "OUTBOX_IDLE": 0.05})
    app = SimpleNamespace(config=settings, extensions={"xinma.engine": outbox_engine})
    running = outbox_worker.start_in_process(app)  # the demo's template ids: one for every kind
    try:
        people = notify_people(committed, emulator, 3)
        assert wait_for(lambda: all(emulator.inbox(p.oa_openid) for p in people)), "not delivered"
    finally:
        running.stop()
    assert not running.thread.is_alive()
    assert [i["template_id"] for i in emulator.inbox(people[0].oa_openid)] == ["xinma-demo-notice"]
    with committed() as s:
        assert s.scalar(select(OutboxMessage.id).limit(1)) is not None  # the shared engine is not disposed
