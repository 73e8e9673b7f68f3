"""The `xinma` command: serve, migrate, import, manage keys and accounts."""
from __future__ import annotations

import sys

import click

from . import config as settings


def _app(**overrides):
    from . import create_app
    return create_app(overrides or None)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Xinma (信码): credit codes, incentives and notices.

    Settings come from XINMA_* environment variables (see README). The database defaults to
    a SQLite file in ./instance.

    \b
    Try it:      xinma serve --demo         (seeded demo on http://127.0.0.1:8000)
    Production:  xinma db upgrade && xinma serve   (or gunicorn, see README)
    """


# --- serve ------------------------------------------------------------------------------------

@main.command(short_help="Serve the app; --demo for the seeded demo.")
@click.option("--demo", is_flag=True, help="Create and seed a demo database, enable demo logins.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads of the WSGI server.")
def serve(demo: bool, host: str, port: int, threads: int) -> None:
    """Serve the app with waitress (a production WSGI server, threaded).

    Without --demo the database must be at the migration head (run `xinma db upgrade`), or
    serve refuses to start. With --demo it uses its own instance/demo.sqlite3 (unless
    XINMA_DATABASE_URL is set), migrates and seeds it, and prints the demo logins.
    For several processes use gunicorn (see README). Stop with Ctrl+C or SIGTERM.
    """
    from .serve import run
    run(demo=demo, host=host, port=port, threads=threads)


# --- db ---------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database migrations (Alembic)."""


def _url() -> str:
    return settings.load()["DATABASE_URL"]


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    from handlers import migrate
    migrate.upgrade(_url(), revision)
    click.echo(f"database at {revision}")


@db.command()
@click.argument("revision", default="-1")
def downgrade(revision: str) -> None:
    """Downgrade to REVISION (default: one step back; 'base' empties the database)."""
    from handlers import migrate
    migrate.downgrade(_url(), revision)
    click.echo(f"database at {revision}")


@db.command()
def current() -> None:
    """Show the database's current revision."""
    from handlers import migrate
    migrate.current(_url())


@db.command()
@click.option("-m", "--message", required=True)
def revision(message: str) -> None:
    """Autogenerate a new migration from the models (developers)."""
    from handlers import migrate
    migrate.revision(_url(), message)


# --- import -----------------------------------------------------------------------------------

@main.command("import")
@click.argument("what", type=click.Choice(["subjects", "records"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejects", type=click.Path(dir_okay=False),
              help="Where rejected rows go (default: PATH.rejects.csv).")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "jsonl"]), default="auto", show_default=True,
              help="auto: by file extension (.jsonl/.ndjson are JSON Lines).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
def import_(what: str, path: str, rejects: str | None, fmt: str, progress: bool | None) -> None:
    """Bulk-import subjects or credit records from CSV or JSON Lines (formats: docs/import.md).

    Idempotent (upsert by identifier / by source + external id), streaming, and a bad row never
    stops the good ones: it goes to the rejects file with its line number and a reason code.
    Exit status 1 when every row was rejected, 2 when the file cannot be read at all.
    """
    from handlers import imports
    from handlers.db import make_engine
    from handlers.errors import DomainError
    from handlers.privacy import Keys
    cfg = settings.load()
    engine = make_engine(cfg["DATABASE_URL"])
    show = sys.stderr.isatty() if progress is None else progress
    try:
        summary = imports.run(engine, Keys.from_secret(cfg["SECRET_KEY"]), what, path,
                              rejects_path=rejects, fmt=fmt, progress=show)
    except DomainError as e:
        click.echo(f"Error: {e.code}: {e.message}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()
    click.echo(summary.describe())
    if summary.rejected:
        sys.exit(1 if summary.accepted == 0 else 0)


# --- accounts ---------------------------------------------------------------------------------

@main.group()
def accounts() -> None:
    """Manage accounts."""


@accounts.command("create-admin")
@click.argument("login")
@click.password_option()
def create_admin(login: str, password: str) -> None:
    """Create an approved platform admin who signs in with LOGIN and a password."""
    from handlers import accounts as ops
    from handlers.models import Role, Status
    from .db import session
    app = _app()
    with app.app_context():
        s = session()
        account = ops.create(s, login, password=password, status=Status.approved)
        ops.grant(s, account, Role.platform_admin)
        s.commit()
    click.echo(f"platform admin {login!r} created")


@main.group(short_help="Materialised colours.")
def colours() -> None:
    """Materialised colours (each subject's stored colour and its validity window)."""


@colours.command("refresh")
def colours_refresh() -> None:
    """Recompute every subject's stored colour (after a manual database change)."""
    from handlers import colours as ops
    from .db import session
    app = _app()
    with app.app_context():
        s = session()
        n = ops.refresh_all(s)
        s.commit()
    click.echo(f"{n} subjects refreshed")


# --- keys -------------------------------------------------------------------------------------

@main.group()
def keys() -> None:
    """Ed25519 keys that sign credit codes (published at /api/v1/keys)."""


def _key_session():
    from sqlalchemy.orm import Session

    from handlers.db import make_engine
    from handlers.privacy import Keys
    cfg = settings.load()
    engine = make_engine(cfg["DATABASE_URL"])
    return engine, Session(engine), Keys.from_secret(cfg["SECRET_KEY"])


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a key that signs from now on; the previous key is retired but keeps verifying until the
    last token it may have signed (a full offline batch) has expired. Running servers pick the new
    key up within a minute."""
    from handlers import signing
    engine, s, secrets = _key_session()
    try:
        with s.begin():
            row = signing.create_key(s, secrets)
            kid = row.kid
    finally:
        s.close()
        engine.dispose()
    click.echo(f"new signing key kid={kid}")


@keys.command("list")
def keys_list() -> None:
    """Keys that still verify, oldest first: kid, status, created, verifies until."""
    from handlers import signing
    engine, s, _ = _key_session()
    try:
        rows = signing.jwks(s)
    finally:
        s.close()
        engine.dispose()
    if not rows:
        click.echo("no signing keys yet (the first code issued creates one)")
    for k in rows:
        click.echo(f"kid={k['kid']}\t{k['status']}\tcreated {k['created_at']}\t"
                   f"verifies until {k['verify_until'] or '-'}")


# --- docs -------------------------------------------------------------------------------------

@main.group()
def docs() -> None:
    """Documentation generated from the code."""


@docs.command("errors")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="docs/errors.md", show_default=True,
              help="Where to write (run from the repository root).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the file is out of date.")
def docs_errors(output: str, check: bool) -> None:
    """Write the table of API error codes, HTTP statuses and messages (docs/errors.md)."""
    from pathlib import Path

    from .docs import errors_markdown
    text = errors_markdown()
    path = Path(output)
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if check:
        if current != text:
            raise click.ClickException(f"{output} is out of date: run `xinma docs errors`")
        click.echo(f"{output} is up to date")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"{output} {'unchanged' if current == text else 'written'}")


# --- wechat emulator ---------------------------------------------------------------------------

@main.command("wechat-emulator", short_help="A local WeChat API for development and the demo.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on.")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on.")
@click.option("--webhook", default="http://127.0.0.1:8000/webhooks/wechat", show_default=True,
              help="Where /_emulator/deliver posts messages (our webhook).")
@click.option("--appid", help="Official account appid (default: XINMA_WECHAT_APPID, else a demo value).")
@click.option("--secret", help="Official account secret (default: XINMA_WECHAT_SECRET, else a demo value).")
@click.option("--token", help="Webhook signature token (default: XINMA_WECHAT_TOKEN, else a demo value).")
@click.option("--aes-key", help="EncodingAESKey (default: XINMA_WECHAT_AES_KEY, else a demo value).")
@click.option("--miniprogram-appid", help="Mini-program appid (default: XINMA_MINIPROGRAM_APPID, else a demo value).")
@click.option("--miniprogram-secret", help="Mini-program secret (default: XINMA_MINIPROGRAM_SECRET, else a demo value).")
@click.option("--token-ttl", default=7200, show_default=True, type=int, help="Seconds an access token lives.")
def wechat_emulator(host: str, port: int, webhook: str, token_ttl: int, **credentials) -> None:
    """Serve a local stand-in for WeChat's API (token, jscode2session, media, messages, QR codes, menu,
    mini-program codes) plus its own API under /_emulator (inbox, faults, deliver); see docs/wechat.md.

    Uses the same XINMA_WECHAT_* settings as the app, so both agree with one configuration; point the app
    at it with XINMA_WECHAT_API_BASE=http://127.0.0.1:8001. Loopback only.
    """
    import os

    from .wechat_emulator import EmulatorConfig, is_loopback_url, serve as serve_emulator
    if not is_loopback_url(webhook):
        raise click.BadParameter("the webhook must be on loopback", param_hint="--webhook")
    env = {name: value for name in settings.DEFAULTS
           if (value := os.environ.get(settings.PREFIX + name))}
    config = EmulatorConfig.from_settings(env, webhook_url=webhook, token_ttl=token_ttl, **credentials)
    click.echo(f"WeChat emulator on http://{host}:{port} (official account {config.appid}, "
               f"mini-program {config.miniprogram_appid}); deliveries go to {webhook}")
    try:
        serve_emulator(config, host=host, port=port)
    except ValueError as e:
        raise click.ClickException(str(e)) from e


# --- wechat -------------------------------------------------------------------------------------

MENU_CLICK_INCENTIVES = "incentives"  # the bot's command names are the menu's CLICK keys
MENU_SCAN = "scan"


def wechat_menu(code_url: str) -> dict:
    """The official account's custom menu: my code (a page), my incentives (the bot), scan to redeem (clerks)."""
    return {"button": [
        {"type": "view", "name": "我的信用码", "url": code_url},
        {"type": "click", "name": "我的权益", "key": MENU_CLICK_INCENTIVES},
        {"type": "scancode_waitmsg", "name": "扫码核销", "key": MENU_SCAN},
    ]}


@main.group()
def wechat() -> None:
    """The WeChat official account."""


@wechat.command("menu")
@click.option("--code-url", help="The page the 我的信用码 button opens (default: XINMA_WECHAT_CODE_URL).")
def wechat_menu_command(code_url: str | None) -> None:
    """Create the official account's custom menu (replaces the current one)."""
    from handlers import wechat as wx
    from handlers.db import make_engine
    cfg = settings.load()
    code_url = code_url or cfg.get("WECHAT_CODE_URL")
    if not code_url:
        raise click.UsageError("give --code-url or set XINMA_WECHAT_CODE_URL")
    engine = make_engine(cfg["DATABASE_URL"])
    try:
        oa = wx.official_account(cfg, wx.token_store(cfg, engine))
        oa.create_menu(wechat_menu(code_url))
    except wx.WeChatError as e:
        raise click.ClickException(f"WeChat refused the menu: errcode {e.errcode}: {e.errmsg}") from e
    finally:
        engine.dispose()
    click.echo("menu created: 我的信用码 / 我的权益 / 扫码核销")


@wechat.command("prune")
@click.option("--keep-hours", type=float, help="Keep this many hours (default: XINMA_WECHAT_INBOUND_KEEP_HOURS, 24).")
def wechat_prune(keep_hours: float | None) -> None:
    """Delete stored webhook replies past WeChat's retry window, and binding codes long expired.

    The webhook also prunes a batch now and then; run this from cron to keep the table small regardless.
    """
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from handlers import wechat_users
    from handlers.db import make_engine
    cfg = settings.load()
    keep = timedelta(hours=keep_hours if keep_hours is not None else float(cfg["WECHAT_INBOUND_KEEP_HOURS"]))
    engine = make_engine(cfg["DATABASE_URL"])
    try:
        with Session(engine) as s, s.begin():
            inbound, codes = wechat_users.prune(s, keep=keep)
    finally:
        engine.dispose()
    click.echo(f"pruned {inbound} inbound messages and {codes} binding codes older than {keep}")


# --- the outbox: worker, dead letters, stats ---------------------------------------------------------

@main.command("worker", short_help="Deliver the outbox: notices and messages to WeChat, e-mail, SMS.")
@click.option("--once", is_flag=True, help="Drain what is due now, then exit (else run until SIGTERM/Ctrl+C).")
@click.option("--batch", type=int, help="Messages claimed at once (default: XINMA_OUTBOX_BATCH, 100).")
@click.option("--concurrency", type=int, help="Sends in flight (default: XINMA_OUTBOX_CONCURRENCY, 4).")
@click.option("--lease", type=float, help="Seconds a claim lasts (default: XINMA_OUTBOX_LEASE, 60).")
@click.option("--idle", type=float, help="Seconds to nap when nothing is due (default: XINMA_OUTBOX_IDLE, 1).")
@click.option("--name", help="This worker's name in the attempts it records (default: host:pid:random).")
def worker_command(once: bool, batch: int | None, concurrency: int | None, lease: float | None,
                   idle: float | None, name: str | None) -> None:
    """Fan notices out to their recipients and deliver due messages, with retries and fallbacks.

    Several workers may run side by side on PostgreSQL (claims skip each other's rows; a dead
    worker's rows are taken over when its lease ends); on SQLite run one. SIGTERM finishes the
    pass in flight, records it, and exits 0. Channels and settings: docs/outbox.md.
    """
    from . import worker as outbox_worker
    from .observability import configure_logging
    cfg = settings.load()
    configure_logging(str(cfg["LOG_LEVEL"]))
    w = outbox_worker.build(cfg, name=name, batch=batch, concurrency=concurrency, lease=lease)
    sys.exit(outbox_worker.run(w, once=once, idle=idle if idle is not None else float(cfg["OUTBOX_IDLE"]),
                               echo=click.echo))


@main.group(short_help="The outbox's dead letters and numbers.")
def outbox() -> None:
    """The outbox: retry dead messages, show counts (the worker is `xinma worker`)."""


def _outbox_session():
    from handlers.db import make_engine, make_sessionmaker
    engine = make_engine(settings.load()["DATABASE_URL"])
    return engine, make_sessionmaker(engine)()


@outbox.command("retry")
@click.option("--all-dead", is_flag=True, help="Every dead message.")
@click.argument("ids", nargs=-1, type=int)
def outbox_retry(all_dead: bool, ids: tuple[int, ...]) -> None:
    """Give dead messages a new round (from their first channel, with a fresh attempt budget)."""
    from handlers import outbox as ob
    from handlers.errors import DomainError
    if all_dead == bool(ids):
        raise click.UsageError("give message IDs or --all-dead (not both)")
    engine, s = _outbox_session()
    failed = 0
    try:
        if all_dead:
            n = ob.retry_all_dead(s)
            s.commit()
            click.echo(f"{n} dead message(s) will be retried")
            return
        for message_id in ids:
            try:
                with s.begin_nested():
                    ob.retry(s, message_id)
                click.echo(f"{message_id}: will be retried")
            except DomainError as e:
                failed += 1
                click.echo(f"{message_id}: {e.code}: {e.message}", err=True)
        s.commit()
    finally:
        s.close()
        engine.dispose()
    if failed:
        sys.exit(1)


@outbox.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def outbox_stats(as_json: bool) -> None:
    """Messages by state and channel, what is due, the backlog's age, notices waiting for fan-out."""
    import json

    from handlers import outbox as ob
    engine, s = _outbox_session()
    try:
        st = ob.stats(s)
    finally:
        s.close()
        engine.dispose()
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False))
        return
    click.echo("messages: " + ", ".join(f"{k} {v}" for k, v in st["states"].items()))
    for key, n in st["by_channel"].items():
        click.echo(f"  {key:<20} {n}")
    age = st["oldest_pending_seconds"]
    click.echo(f"due now: {st['due']}; oldest pending: {'-' if age is None else f'{age:.0f}s'}; "
               f"notices waiting for fan-out: {st['notices_waiting_fanout']}")


# --- policy offers ------------------------------------------------------------------------------

@main.group()
def policies() -> None:
    """Policy offers (免申即享): match a policy over every enterprise, see where its offers stand."""


def _policy_session():
    from sqlalchemy.orm import Session

    from handlers.db import make_engine
    engine = make_engine(settings.load()["DATABASE_URL"])
    return engine, Session(engine, expire_on_commit=False)


@policies.command("match")
@click.argument("policy_id", type=int)
def policies_match(policy_id: int) -> None:
    """Match POLICY_ID over all enterprises in one set-based pass, as its admins' API does (idempotent).

    A draft gets a fresh silent preview; a published policy offers, and pushes to, the enterprises that
    qualify now and had no offer, within what is left of the budget (A-grade first). One transaction:
    nothing is written unless it all succeeds.
    """
    import time

    from handlers import policies as ops
    from handlers.errors import DomainError
    engine, s = _policy_session()
    started = time.perf_counter()
    steps = {"colours": "refreshing colours whose window has passed", "counting": "counting eligible enterprises",
             "matching": "making offers", "notifying": "writing the notices (pushes)",
             "matching_and_notifying": "making offers and writing their notices (pushes)"}

    def progress(phase: str, info: dict) -> None:
        if phase in steps:
            extra = ", ".join(f"{k} {v:,}" for k, v in info.items() if isinstance(v, int))
            click.echo(f"[{time.perf_counter() - started:6.1f}s] {steps[phase]}" + (f" ({extra})" if extra else ""))

    try:
        with s.begin():
            policy = ops.locked(s, policy_id)
            click.echo(f"policy {policy.id} «{policy.title}» ({policy.state.value}), run {policy.match_runs + 1}")
            r = ops.run_match(s, policy, progress=progress)
    except DomainError as e:
        click.echo(f"Error: {e.code}: {e.message} {e.detail or ''}".rstrip(), err=True)
        sys.exit(2)
    finally:
        s.close()
        engine.dispose()
    budget = "no budget limit" if r.budget_fen is None else (
        f"budget {r.budget_fen / 100:,.2f} yuan, committed {r.committed_fen / 100:,.2f}, "
        f"left {r.remaining_fen / 100:,.2f}")
    click.echo(f"[{time.perf_counter() - started:6.1f}s] done: {r.eligible:,} eligible, {r.offered:,} offered "
               f"({r.offered_fen / 100:,.2f} yuan), {r.over_budget:,} over budget, {r.notified:,} notified; {budget}")
    click.echo("phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in r.phases.items()))


@policies.command("stats")
@click.argument("policy_id", type=int)
def policies_stats(policy_id: int) -> None:
    """Offers of POLICY_ID per state, and the money committed, confirmed, disbursed and received."""
    from handlers import offers
    from handlers import policies as ops
    from handlers.errors import DomainError
    engine, s = _policy_session()
    try:
        policy = ops.get(s, policy_id)
        st = offers.stats(s, policy)
    except DomainError as e:
        click.echo(f"Error: {e.code}: {e.message}", err=True)
        sys.exit(2)
    finally:
        s.close()
        engine.dispose()
    click.echo(f"policy {policy.id} «{policy.title}» ({policy.state.value}): {st['offers']:,} offers")
    click.echo("  " + ", ".join(f"{k} {v:,}" for k, v in st["counts"].items() if v))
    for key in ("budget_fen", "committed_fen", "confirmed_fen", "disbursed_fen", "received_fen", "held_fen",
                "remaining_fen"):
        value = st[key]
        click.echo(f"  {key.removesuffix('_fen'):<10} {'-' if value is None else f'{value / 100:,.2f} yuan'}")


# --- legal service: the evidence log and the documents' deadlines (docs/legal-service.md) -----------------

def _legal_session():
    from sqlalchemy.orm import Session

    from handlers.db import make_engine
    engine = make_engine(settings.load()["DATABASE_URL"])
    return engine, Session(engine, expire_on_commit=False)


@main.group()
def evidence() -> None:
    """The hash-chained evidence log of legal service."""


def _head(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise click.BadParameter("SEQ:HASH, e.g. 1234:9f86d0…", param_hint="--head")
    return int(seq), digest.lower()


@evidence.command("verify")
@click.option("--head", "head", metavar="SEQ:HASH",
              help="A head handed out earlier (a receipt's, or `xinma evidence head`'s): it must still be there.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
@click.option("--no-documents", is_flag=True, help="Skip checking every document against its first entry.")
def evidence_verify(head: str | None, progress: bool | None, no_documents: bool) -> None:
    """Check the whole chain, in order: every entry's hash, every link, no gaps; name the first broken entry.

    Exit status 0 when it holds, 1 when it does not (the broken entry and why on stderr).
    """
    from handlers import evidence as ops
    expected = _head(head)
    engine, s = _legal_session()
    try:
        with s.begin():
            result = ops.verify(s, progress=sys.stderr.isatty() if progress is None else progress,
                                expect_head=expected, check_documents=not no_documents)
    finally:
        s.close()
        engine.dispose()
    if not result.ok:
        click.echo(f"BROKEN after {result.entries:,} good entries: {result.broken.describe()}", err=True)
        sys.exit(1)
    click.echo(f"ok: {result.entries:,} entries, head {result.head_seq}:{result.head_hash}")


@evidence.command("head")
def evidence_head() -> None:
    """Print the chain's head (SEQ:HASH): publish or file it, and check later with verify --head."""
    from handlers import evidence as ops
    engine, s = _legal_session()
    try:
        head = ops.head(s)
    finally:
        s.close()
        engine.dispose()
    click.echo(f"{head[0]}:{head[1]}" if head else "empty")


@main.group()
def documents() -> None:
    """Legal documents served electronically."""


@documents.command("close-overdue")
def documents_close_overdue() -> None:
    """Record every document whose deadline passed unopened and unacknowledged as evaded (a bad credit
    record of its recipient). Idempotent: run it from cron as often as you like."""
    from handlers import documents as ops
    engine, s = _legal_session()
    try:
        with s.begin():
            closed = ops.close_overdue(s)
    finally:
        s.close()
        engine.dispose()
    click.echo(f"{len(closed)} documents closed as evaded" + (f": {', '.join(map(str, closed))}" if closed else ""))


if __name__ == "__main__":  # pragma: no cover
    main()
