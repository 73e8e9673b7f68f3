"""What the HTTP benchmarks share: the database default, token windows and pre-issued tokens, gunicorn on
loopback, CPU accounting per process, and the machine's description."""
from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from handlers import codes, signing
from handlers.models import Subject

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "benchmark-secret-not-for-production"


# --- tokens -----------------------------------------------------------------------------------------

def window_for(seconds_needed: float, now: float | None = None) -> int:
    """A token window length (s) whose current, clock-aligned window still has ``seconds_needed`` left.

    issue_codes aligns windows to multiples of their length; trying lengths up to the ten-minute batch
    limit finds one that does not end in the middle of the run.
    """
    now = time.time() if now is None else now
    for w in range(120, signing.MAX_BATCH_SECONDS + 1):
        if w - now % w >= seconds_needed:
            return w
    raise SystemExit(f"no token window leaves {seconds_needed:.0f} s: shorten the run")


def issue_tokens(session: Session, ring: signing.KeyRing, people: Iterable[Subject], per_subject: int,
                 window: int) -> list[str]:
    """1 + ``per_subject`` fresh tokens for each subject, all valid in the current window (not shuffled).

    issue_codes once per subject (handle, colour, key: ~3 ms with its queries), then more tokens of the
    same window the way issue_codes makes them: codes.issue, a new nonce each."""
    kid, key = ring.signer(session)
    out = []
    for person in people:
        first = signing.issue_codes(session, ring, person, window=window)[0].token
        out.append(first)
        claims = codes.parse(first)[0]
        for _ in range(per_subject):
            out.append(codes.issue(key, kid, claims.handle, colour=claims.colour, kind=claims.kind,
                                   grade=claims.grade, not_before=claims.not_before, lifetime=claims.lifetime)[0])
    return out


# --- gunicorn on loopback -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(app: str, *, options: list[str], env: dict[str, str], log_path: Path) -> Iterator[tuple[int, list, int]]:
    """gunicorn serving ``app`` on a free 127.0.0.1 port until the block ends; yields (port, command, master pid)."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", *options, "--bind", f"127.0.0.1:{port}", app]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start; see {log_path}:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
        yield port, cmd, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def xinma_server(url: str, *, workers: int, threads: int, worker_class: str, log_level: str, log_path: Path,
                 env: dict[str, str] | None = None) -> Iterator[tuple[int, list, int]]:
    """Our app as production runs it (webhooks/gunicorn_conf.py), rate limits off; yields (port, command, pid)."""
    env = {"XINMA_DATABASE_URL": url, "XINMA_SECRET_KEY": SECRET, "XINMA_RATELIMIT_ENABLED": "false",
           "XINMA_LOG_LEVEL": log_level, "XINMA_INSTANCE_PATH": str(log_path.parent), **(env or {})}
    options = ["-c", "python:webhooks.gunicorn_conf", "--workers", str(workers), "--threads", str(threads),
               "--worker-class", worker_class, "--keep-alive", "30", "--backlog", "2048"]
    with gunicorn("webhooks:create_app()", options=options, env=env, log_path=log_path) as out:
        yield out


# --- CPU per process ------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid …": comm may hold spaces and parentheses; the fields after it are fixed.
    head, _, rest = raw.rpartition(")")
    return [head.split("(", 1)[1], *rest.split()]


def cpu_seconds(pid: int) -> float:
    """utime + stime of one live process (0 when it is gone)."""
    st = _stat(pid)
    return (int(st[12]) + int(st[13])) / _TICK if st else 0.0


def processes() -> Iterator[tuple[int, str, int]]:
    """(pid, comm, ppid) of every process."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (st := _stat(int(entry.name))):
            yield int(entry.name), st[0], int(st[2])


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / _TICK, total / _TICK


def backends(url: str, application_name: str) -> list[int]:
    """The PostgreSQL server processes serving connections made with this application_name (same host)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE application_name = %(name)s",
                                             {"name": application_name}).scalars())
    finally:
        engine.dispose()


@dataclass
class CpuSnapshot:
    """CPU seconds used so far by a gunicorn (master + workers), by given PostgreSQL backends, and by the
    whole machine (all cores, everyone's work)."""
    server: float
    postgres: float
    busy: float
    total: float

    @classmethod
    def take(cls, master: int | None, postgres: list[int] = ()) -> CpuSnapshot:
        server = 0.0
        if master is not None:
            server = cpu_seconds(master) + sum(cpu_seconds(p) for p, _, ppid in processes() if ppid == master)
        return cls(server, sum(cpu_seconds(p) for p in postgres), *machine_busy())


# --- report -----------------------------------------------------------------------------------------

def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine(base: str) -> dict:
    meminfo, cpuinfo = Path("/proc/meminfo").read_text().splitlines(), Path("/proc/cpuinfo").read_text().splitlines()
    mem = next(line for line in meminfo if line.startswith("MemTotal")).split()[1]
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    eng = create_engine(base)
    with eng.connect() as conn:
        server = conn.exec_driver_sql("SHOW server_version").scalar()
    eng.dispose()
    import gunicorn as gunicorn_pkg
    return {"nproc": os.cpu_count(), "ram_gb": round(int(mem) / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "postgresql": server, "gunicorn": gunicorn_pkg.__version__}
