"""gunicorn settings for Xinma: `gunicorn -c python:webhooks.gunicorn_conf 'webhooks:create_app()'`.

gunicorn configures only its own loggers; without this the app's JSON lines (access log, errors,
each scrubbed of identifiers) would not be written at all, or written unscrubbed by Python's last-resort
handler. Command-line options (--workers, --bind …) still override what is set here.
"""
from __future__ import annotations

import os

wsgi_app = "webhooks:create_app()"


def post_worker_init(worker) -> None:
    from webhooks.observability import configure_logging

    configure_logging(os.environ.get("XINMA_LOG_LEVEL", "INFO").upper())


def child_exit(server, worker) -> None:
    # Metrics of several worker processes are only summed when PROMETHEUS_MULTIPROC_DIR is set;
    # a dead worker's live gauges must then be dropped (prometheus_client's multiprocess notes).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
