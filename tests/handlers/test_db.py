"""The connection pool without pool_pre_ping: a connection the server dropped is replaced, not used."""
from __future__ import annotations

import time

import pytest
from handlers.db import make_engine

from ..conftest import SECRET


def _terminate(engine, pid: int) -> None:
    # Another connection kills the pooled one's backend, as a restart or idle_session_timeout would.
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar() is True
        for _ in range(100):
            if not conn.exec_driver_sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}").scalar():
                break
            time.sleep(0.02)


@pytest.fixture
def pg_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite connections are not dropped by a server")
    return database_url


def test_no_pre_ping_round_trip(pg_url):
    engine = make_engine(pg_url)
    assert not engine.pool._pre_ping


def test_terminated_backend_is_replaced_on_checkout(pg_url):
    engine = make_engine(pg_url, pool_size=1, max_overflow=1)
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        other_engine = make_engine(pg_url, pool_size=1, max_overflow=0)
        try:
            _terminate(other_engine, pid)
        finally:
            other_engine.dispose()
        with engine.connect() as conn:  # the same pool slot: must be a fresh, working connection
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    finally:
        engine.dispose()


def test_terminated_backend_is_not_a_500(pg_url, tmp_path):
    from webhooks import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": pg_url, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": False,
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    engine = app.extensions["xinma.engine"]
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        with engine.connect() as conn:  # the connection the request just returned to the pool
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        killer = make_engine(pg_url, pool_size=1, max_overflow=0)
        try:
            _terminate(killer, pid)
        finally:
            killer.dispose()
        r = client.get("/healthz")
        assert r.status_code == 200, r.get_json()
        assert r.get_json() == {"status": "ok", "database": "ok"}
    finally:
        engine.dispose()
