"""Request ids, one-JSON-object-per-line logs with identifiers scrubbed, Prometheus metrics, /healthz."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from sqlalchemy import text

from . import db

REQUESTS = Counter("xinma_http_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram("xinma_http_request_duration_seconds", "HTTP request latency", ["endpoint", "method"],
                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))

# What must never reach a log line even if some code passes it in: ID numbers, credit codes, tokens.
_SCRUB = [
    (re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])"), "[id]"),
    (re.compile(r"(?<![0-9A-Z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Z])"), "[code]"),
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1[token]"),
]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STANDARD = set(vars(logging.makeLogRecord({})))


def scrub(value: str) -> str:
    for pattern, repl in _SCRUB:
        value = pattern.sub(repl, value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            try:
                record.request_id = g.get("request_id")
            except RuntimeError:  # outside a request
                record.request_id = None
        return True


def configure_logging(level: str = "INFO", stream=None) -> logging.Handler:
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_xinma", False):
            root.removeHandler(h)
    handler._xinma = True
    root.addHandler(handler)
    root.setLevel(level)
    return handler


access_log = logging.getLogger("xinma.access")


def init_app(app: Flask) -> None:
    @app.before_request
    def _start():
        g.started = time.perf_counter()
        rid = request.headers.get("X-Request-Id", "")
        g.request_id = rid if _REQUEST_ID.fullmatch(rid) else uuid.uuid4().hex

    @app.after_request
    def _finish(response: Response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        LATENCY.labels(endpoint, request.method).observe(elapsed)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        account = g.get("account") or g.get("principal")
        # Path only: query strings and bodies may carry what must not be logged.
        access_log.info("request", extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2), "account_id": account.id if account else None,
        })
        return response

    @app.get("/healthz")
    def healthz():
        try:
            db.session().execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means unreachable
            logging.getLogger(__name__).exception("database unreachable")
            return {"status": "unavailable", "database": "unreachable"}, 503
        return {"status": "ok", "database": "ok"}

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


def _registry():
    """This process's metrics, or under gunicorn with PROMETHEUS_MULTIPROC_DIR set, every worker's summed."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
