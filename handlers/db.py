"""Engines and sessions: one place that knows how SQLite and PostgreSQL differ for us."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import select

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection older than this is replaced on its next checkout (firewalls and proxies drop
# long-idle TCP connections without telling either side).
POOL_RECYCLE = 1800


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_recycle", POOL_RECYCLE)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_suspect(engine)
    return engine


def _ping_when_suspect(engine: Engine) -> None:
    """A pre-ping without the round trip, for a connection the server has hung up on.

    pool_pre_ping costs a round trip on every checkout, i.e. on every request. An idle PostgreSQL
    connection has nothing to read unless the server spoke first: a terminated backend
    (pg_terminate_backend, a restart, idle_session_timeout) sends its FATAL and closes the socket.
    So look at the socket (poll, no I/O): only when it is readable, or libpq already knows it is
    bad, ping for real, and let the pool replace the connection when that fails. A connection
    dropped silently (a half-open TCP connection) is what pool_recycle is for.
    """
    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, _record, _proxy):
        if not _suspect(dbapi_conn):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as e:
            raise exc.DisconnectionError(f"pooled connection is gone: {e}") from e


def _suspect(dbapi_conn) -> bool:
    try:
        if dbapi_conn.closed or dbapi_conn.broken:
            return True
        poller = select.poll()
        poller.register(dbapi_conn.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except Exception:  # noqa: BLE001 - anything odd about the connection: ping it
        return True


def _tune_sqlite(engine: Engine) -> None:
    # pysqlite opens transactions lazily and behind SQLAlchemy's back, which breaks SAVEPOINT and lets
    # two writers both read before either writes. Take the transaction over: BEGIN IMMEDIATE takes the
    # write lock up front, so read-check-write sequences are serialised (see SQLAlchemy's pysqlite notes).
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(bind) -> bool:
    return bind.dialect.name == "postgresql"


@contextmanager
def scratch_schema(base_url: str, prefix: str = "xinma_scratch") -> Iterator[str]:
    """A PostgreSQL schema of its own for a test run or a benchmark, dropped afterwards.

    Yields ``base_url`` with the schema as its search_path, so parallel runs on one database never
    collide.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options={quote('-csearch_path=' + schema)}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
