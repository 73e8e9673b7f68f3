"""gunicorn settings for Xinma: `gunicorn -c python:webhooks.gunicorn_conf 'webhooks:create_app()'`.

gunicorn configures only its own loggers; without this the app's JSON lines (access log, errors,
each scrubbed of identifiers) would not be written at all, or written unscrubbed by Python's last-resort
handler. Command-line options (--workers, --bind …) still override what is set here.
"""
from __future__ import annotations

import os

wsgi_app = "webhooks:create_app()"

# The production default, chosen by measurement (benchmarks/redeem_bench.py, docs/benchmarks.md): a
# request here is CPU in Python from start to end (a scan is ~5 ms of CPU and a few 0.1 ms waits on
# PostgreSQL), so threads only queue for the GIL. Sync workers, two per core: while one waits on the
# database the other computes. On 2 cores, 4 sync workers served redemptions faster and with a lower p99
# than gthread (2×2, 2×4, 3×2) and than 2 or 3 sync workers. Sync workers do not keep connections alive
# and must not face slow clients directly: put a buffering proxy (nginx) in front, as gunicorn advises.
# XINMA_WEB_WORKERS overrides the count; command-line options (--workers …) override everything here.
worker_class = "sync"
threads = 1
workers = int(os.environ.get("XINMA_WEB_WORKERS") or 2 * (os.cpu_count() or 1))


def post_worker_init(worker) -> None:
    from webhooks.observability import configure_logging

    configure_logging(os.environ.get("XINMA_LOG_LEVEL", "INFO").upper())


def child_exit(server, worker) -> None:
    # Metrics of several worker processes are only summed when PROMETHEUS_MULTIPROC_DIR is set;
    # a dead worker's live gauges must then be dropped (prometheus_client's multiprocess notes).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
