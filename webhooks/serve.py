"""`xinma serve`: the app under waitress, either as is (database must be migrated) or as a seeded demo.

The demo also starts the WeChat emulator on loopback (in a thread of this process) and points the app at it,
unless XINMA_WECHAT_API_BASE says where WeChat is: then that is used and nothing is started.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
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


def _build(demo: bool, settings: dict | None = None):
    from . import create_app

    overrides: dict[str, object] = {"DEMO": demo, **(settings or {})}
    if demo and not os.environ.get(config.PREFIX + "DATABASE_URL"):
        overrides["DATABASE_URL"] = demo_database_url()
    return create_app(overrides)


def _seed(app) -> None:
    from handlers import demo

    from . import demo_chat

    with app.extensions["xinma.sessionmaker"]() as session:
        demo.seed(session, app.extensions["xinma.keys"])
        demo_chat.seed_people(session, app.config.get("WECHAT_APPID"))
        session.commit()


# --- the WeChat emulator of the demo ----------------------------------------------------------------------

EMULATOR_PORT = 8001  # as `xinma wechat-emulator`; any free port when it is taken


@dataclass
class RunningEmulator:
    base: str
    state: object  # webhooks.wechat_emulator.State
    server: object  # a werkzeug server: shutdown() stops serve_forever cleanly
    thread: threading.Thread

    def settings(self) -> dict[str, str]:
        """The app's WeChat settings that make it call this emulator (and accept its signatures)."""
        cfg = self.state.config
        return {"WECHAT_APPID": cfg.appid, "WECHAT_SECRET": cfg.secret, "WECHAT_TOKEN": cfg.token,
                "WECHAT_AES_KEY": cfg.aes_key, "MINIPROGRAM_APPID": cfg.miniprogram_appid,
                "MINIPROGRAM_SECRET": cfg.miniprogram_secret, "WECHAT_API_BASE": self.base}

    def forget_tokens(self, app) -> None:
        """Drop access tokens a previous run's emulator minted: this one knows none of them. Else the first call
        would find out from a 40001 inside a request's transaction, and on SQLite the refresh, which needs the
        write lock that very transaction holds, would wait on itself."""
        from sqlalchemy import delete

        from handlers.models import WeChatAccessToken

        cfg = self.state.config
        with app.extensions["xinma.sessionmaker"]() as session:
            session.execute(delete(WeChatAccessToken).where(
                WeChatAccessToken.appid.in_([cfg.appid, cfg.miniprogram_appid])))
            session.commit()

    def follow(self, openids) -> None:
        """These users follow the official account (so that messages pushed to them arrive)."""
        for openid in openids:
            self.state.add_user(self.state.config.appid, openid)

    def deliver_to(self, webhook: str) -> None:
        """Where the emulator posts as WeChat (its /_emulator/deliver and handshake)."""
        self.state.config.webhook_url = webhook

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.bind((host, 0))
    sock.listen(128)
    return sock


def start_emulator(settings: dict, port: int = EMULATOR_PORT) -> RunningEmulator:
    """The WeChat emulator on 127.0.0.1 (``port`` when free), in a daemon thread, with the app's XINMA_WECHAT_*
    credentials where set and the demo values otherwise."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from .wechat_emulator import EmulatorConfig, create_emulator

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:  # the app logs its side of every exchange
            pass

    app = create_emulator(EmulatorConfig.from_settings(settings))
    sock = _listen("127.0.0.1", port)
    try:
        server = make_server("127.0.0.1", sock.getsockname()[1], app, threaded=True, request_handler=Quiet,
                             fd=sock.fileno())
    finally:
        sock.close()  # the server holds its own duplicate of the socket
    thread = threading.Thread(target=server.serve_forever, name="wechat-emulator", daemon=True)
    thread.start()
    return RunningEmulator(f"http://127.0.0.1:{server.port}", app.extensions["wechat_emulator"], server, thread)


def loopback_base(host: str, port: int) -> str | None:
    """How a process on this machine reaches the server on loopback; None when it listens elsewhere only."""
    if host in ("0.0.0.0", "", "127.0.0.1", "localhost"):
        return f"http://127.0.0.1:{port}"
    if host in ("::", "::1"):
        return f"http://[::1]:{port}"
    return None


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


def banner(base: str, demo: bool, accounts: list[tuple[str, str]], wechat: str | None = None) -> str:
    lines = [
        "",
        f"Xinma (信码) {'demo ' if demo else ''}is serving on {base}",
        f"  mini-program     {base}/app/   (the H5 app: my code, scanner, notices, admin)",
        f"  API (OpenAPI 3)  {base}/api/v1/openapi.json",
        f"  health           {base}/healthz",
        f"  metrics          {base}/metrics",
    ]
    if demo:
        lines += [f"  WeChat chat      {base}/demo/chat   (type as a WeChat user; the bot answers)"]
        if wechat:
            lines += [f"  WeChat           {wechat}"]
    if demo:
        width = max(len(login) for login, _ in accounts)
        lines += ["", "Demo logins (no password; demo mode only):"]
        lines += [f"  {login:<{width}}  {text}" for login, text in accounts]
        lines += [
            "",
            f"Open {base}/app/ and pick a login; show a code as citizen-green in one tab and scan it",
            "as clerk-westlake (扫码核销) in another. Or sign in over the API and use the token:",
            f"  curl -s -X POST {base}/api/v1/session/demo -H 'Content-Type: application/json' "
            "-d '{\"account\": \"citizen-green\"}'",
            f"  curl -s {base}/api/v1/me/subject -H 'Authorization: Bearer <token>'",
        ]
    lines += ["", "Stop with Ctrl+C.", ""]
    return "\n".join(lines)


def run(demo: bool, host: str, port: int, threads: int) -> None:
    import waitress

    from handlers.demo import DEMO_ACCOUNTS

    emulator: RunningEmulator | None = None
    wechat = None
    if demo:
        settings = config.load()
        if settings.get("WECHAT_API_BASE"):
            wechat = f"{settings['WECHAT_API_BASE']} (XINMA_WECHAT_API_BASE; no emulator started)"
        elif loopback_base(host, port) is None:
            wechat = f"no emulator: it posts to the webhook on loopback, and {host} is not loopback"
        else:
            emulator = start_emulator(settings)
            wechat = f"emulator on {emulator.base} (xinma wechat-emulator's API, docs/wechat.md)"
    try:
        app = _build(demo, emulator.settings() if emulator else None)
        configure_logging(app.config["LOG_LEVEL"])
        if demo:
            migrate.upgrade(app.config["DATABASE_URL"])
            _seed(app)
            if emulator is not None:
                from .demo_chat import DEMO_PEOPLE

                emulator.forget_tokens(app)
                emulator.follow(p.openid for p in DEMO_PEOPLE)
        else:
            _check_migrated(app)
        try:
            server = waitress.create_server(app, host=host, port=port, threads=threads, ident="xinma")
        except OSError as e:
            raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    port = getattr(server, "effective_port", port)  # the real one when asked for port 0
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    if emulator is not None:
        webhook = f"{loopback_base(host, port)}/webhooks/wechat"
        emulator.deliver_to(webhook)
        app.extensions["xinma.demo_chat.webhook"] = webhook
    click.echo(banner(base, demo, [(login, spec.description) for login, spec in DEMO_ACCOUNTS.items()], wechat))
    log.info("serving", extra={"url": base, "demo": demo, "threads": threads,
                               "wechat_emulator": emulator.base if emulator else None})

    def _stop(signum, _frame):
        # waitress's run() turns SystemExit into a clean shutdown of its worker threads.
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, _stop)
    outbox_worker = None
    if demo or app.config.get("OUTBOX_IN_PROCESS"):
        from .worker import start_in_process  # one outbox worker thread beside the server (docs/outbox.md)
        outbox_worker = start_in_process(app)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if outbox_worker is not None:
            outbox_worker.stop()
        if emulator is not None:
            emulator.stop()
        app.extensions["xinma.engine"].dispose()
        log.info("stopped")
