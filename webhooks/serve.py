"""`xinma serve`: the app under waitress, either as is (database must be migrated) or as a seeded demo."""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from handlers import migrate

from . import config
from .observability import configure_logging

log = logging.getLogger(__name__)


def demo_database_url() -> str:
    """The demo's own SQLite file, beside (never instead of) the normal one."""
    instance = Path(str(config.load()["INSTANCE_PATH"]))
    return f"sqlite:///{instance / 'demo.sqlite3'}"


def migration_state(engine: Engine, url: str) -> tuple[set[str], set[str]]:
    """(revisions the database is at, head revisions of the code)."""
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, set(script.get_heads())


def _build(demo: bool):
    from . import create_app

    overrides: dict[str, object] = {"DEMO": demo}
    if demo and not os.environ.get(config.PREFIX + "DATABASE_URL"):
        overrides["DATABASE_URL"] = demo_database_url()
    return create_app(overrides)


def _seed(app) -> None:
    from handlers import demo

    with app.extensions["xinma.sessionmaker"]() as session:
        demo.seed(session, app.extensions["xinma.keys"])
        session.commit()


def _check_migrated(app) -> None:
    engine = app.extensions["xinma.engine"]
    url = app.config["DATABASE_URL"]
    current, heads = migration_state(engine, url)
    if current != heads:
        where = engine.url.render_as_string(hide_password=True)
        at = ", ".join(sorted(current)) or "none"
        raise click.ClickException(
            f"the database {where} is not at the migration head "
            f"(database at revision {at}, this code at {', '.join(sorted(heads))}).\n"
            "Run `xinma db upgrade` first (with the same XINMA_* settings), then start again.")


def banner(base: str, demo: bool, accounts: list[tuple[str, str]]) -> str:
    lines = [
        "",
        f"Xinma (信码) {'demo ' if demo else ''}is serving on {base}",
        f"  API (OpenAPI 3)  {base}/api/v1/openapi.json",
        f"  health           {base}/healthz",
        f"  metrics          {base}/metrics",
    ]
    if demo:
        width = max(len(login) for login, _ in accounts)
        lines += ["", "Demo logins (no password; demo mode only):"]
        lines += [f"  {login:<{width}}  {text}" for login, text in accounts]
        lines += [
            "",
            "Sign in as one and use the token:",
            f"  curl -s -X POST {base}/api/v1/session/demo -H 'Content-Type: application/json' "
            "-d '{\"account\": \"citizen-green\"}'",
            f"  curl -s {base}/api/v1/me/subject -H 'Authorization: Bearer <token>'",
        ]
    lines += ["", "Stop with Ctrl+C.", ""]
    return "\n".join(lines)


def run(demo: bool, host: str, port: int, threads: int) -> None:
    import waitress

    from handlers.demo import DEMO_ACCOUNTS

    app = _build(demo)
    configure_logging(app.config["LOG_LEVEL"])
    if demo:
        migrate.upgrade(app.config["DATABASE_URL"])
        _seed(app)
    else:
        _check_migrated(app)

    try:
        server = waitress.create_server(app, host=host, port=port, threads=threads, ident="xinma")
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    port = getattr(server, "effective_port", port)  # the real one when asked for port 0
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    click.echo(banner(base, demo, [(login, spec.description) for login, spec in DEMO_ACCOUNTS.items()]))
    log.info("serving", extra={"url": base, "demo": demo, "threads": threads})

    def _stop(signum, _frame):
        # waitress's run() turns SystemExit into a clean shutdown of its worker threads.
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        app.extensions["xinma.engine"].dispose()
        log.info("stopped")
