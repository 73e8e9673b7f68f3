"""`xinma worker` and the demo's in-process worker: the outbox's Worker built from settings, run until stopped."""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine

from handlers import channels, documents, outbox, wechat  # noqa: F401 (documents: its outcome hook)
from handlers.db import make_engine
from handlers.privacy import Keys

log = logging.getLogger(__name__)

# The demo talks to the WeChat emulator, which accepts any template id.
DEMO_TEMPLATE_IDS = '{"*": "xinma-demo-notice"}'


def effective_settings(cfg: Mapping[str, Any]) -> dict:
    settings = dict(cfg)
    if settings.get("DEMO"):
        settings["WECHAT_TEMPLATE_IDS"] = settings.get("WECHAT_TEMPLATE_IDS") or DEMO_TEMPLATE_IDS
        settings["WECHAT_SUBSCRIBE_IDS"] = settings.get("WECHAT_SUBSCRIBE_IDS") or DEMO_TEMPLATE_IDS
    return settings


def build(cfg: Mapping[str, Any], *, engine: Engine | None = None, name: str | None = None,
          **overrides) -> outbox.Worker:
    """A worker from XINMA_* settings; ``overrides`` replace fields of outbox.Settings (batch, concurrency …)."""
    settings = effective_settings(cfg)
    owns_engine = engine is None
    engine = engine or make_engine(str(settings["DATABASE_URL"]))
    store = wechat.token_store(settings, engine)
    senders = channels.from_settings(settings, store)
    worker_settings = outbox.Settings.from_config(settings)
    for key, value in overrides.items():
        if value is not None:
            setattr(worker_settings, key, value)
    return outbox.Worker(engine, Keys.from_secret(str(settings["SECRET_KEY"])), senders, worker_settings, name=name,
                         owns_engine=owns_engine)


def describe(worker: outbox.Worker) -> str:
    chans = ", ".join(c.value for c in outbox.CHANNEL_ORDER if c in worker.senders) or "none"
    s = worker.settings
    return (f"outbox worker {worker.name}: channels {chans}; batch {s.batch}, concurrency {s.concurrency}, "
            f"lease {s.lease:g}s, attempts {s.max_attempts}")


def summary(r: outbox.Round) -> str:
    o = r.outcomes
    return (f"fanned out {r.fanned_out} notice(s) into {r.created} message(s); claimed {r.claimed}: "
            f"sent {o['sent']}, retry later {o['retry']}, dead {o['dead']}"
            + (f", lost {o['lost']}" if o["lost"] else "") + (f", error {o['error']}" if o["error"] else ""))


def run(worker: outbox.Worker, *, once: bool = False, idle: float = 1.0, echo: Callable[[str], None] = print) -> int:
    """Run ``worker`` in this process: drain once and return, or until SIGTERM/SIGINT (the pass in flight
    finishes and is recorded first). Returns the exit status."""
    stop = threading.Event()
    totals = Counter()

    def _stop(signum, _frame):
        if not stop.is_set():
            echo(f"received {signal.Signals(signum).name}: finishing the current pass, then stopping")
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    echo(describe(worker))
    started = time.monotonic()

    def on_round(r: outbox.Round) -> None:
        totals.update(r.outcomes)
        totals["fanned_out"] += r.fanned_out
        echo(summary(r))
        log.info("outbox pass", extra={"worker": worker.name, "fanned_out": r.fanned_out, "messages_created": r.created,
                                       "claimed": r.claimed, **{k: v for k, v in r.outcomes.items()}})

    try:
        if once:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max(1, worker.settings.concurrency), thread_name_prefix="outbox") as pool:
                while not stop.is_set():
                    r = worker.run_once(pool=pool)
                    if not r:
                        break
                    on_round(r)
        else:
            worker.run(stop, idle=idle, on_round=on_round)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        worker.close()
    echo(f"stopped after {time.monotonic() - started:.1f}s: sent {totals['sent']}, retry later {totals['retry']}, "
         f"dead {totals['dead']}")
    return 0


class InProcess:
    """A worker on a daemon thread beside the web server (`xinma serve --demo`, or XINMA_OUTBOX_IN_PROCESS)."""

    def __init__(self, worker: outbox.Worker, idle: float = 1.0):
        self.worker = worker
        self.idle = idle
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)

    def _run(self) -> None:
        self.worker.run(self.stop_event, idle=self.idle)

    def start(self) -> InProcess:
        log.info("outbox worker started in-process", extra={"worker": self.worker.name})
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        self.worker.close()


def start_in_process(app) -> InProcess:
    """Start a worker thread for ``app`` (sharing its engine)."""
    worker = build(app.config, engine=app.extensions["xinma.engine"])
    return InProcess(worker, idle=float(app.config.get("OUTBOX_IDLE") or 1.0)).start()
