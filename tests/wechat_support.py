"""The WeChat emulator for real on a free 127.0.0.1 port, shared by the WeChat tests (import the fixtures)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
import requests
from werkzeug.serving import make_server

from webhooks.wechat_emulator import EmulatorConfig, State, create_emulator


@dataclass
class RunningServer:
    base: str
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


def serve_in_thread(app) -> RunningServer:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-server", daemon=True)
    thread.start()
    return RunningServer(f"http://127.0.0.1:{server.server_port}", server, thread)


class Emulator:
    """Talks to the running emulator's own API."""

    def __init__(self, base: str, state: State):
        self.base = base
        self.state = state
        self.config = state.config
        self.http = requests.Session()

    def get(self, path: str, **params):
        r = self.http.get(self.base + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict | None = None):
        r = self.http.post(self.base + path, json=body or {}, timeout=30)
        assert r.status_code < 400, r.text
        return r.json()

    def fault(self, path: str, times: int = 1, **kind):
        return self.post("/_emulator/faults", {"path": path, "times": times, **kind})

    def fetches(self, appid: str) -> int:
        return self.get("/_emulator/stats")["token_fetches"].get(appid, 0)

    def requests_to(self, path: str) -> int:
        return self.get("/_emulator/stats")["requests"].get(path, 0)

    def user(self, appid: str | None = None, openid: str | None = None) -> str:
        return self.post("/_emulator/users", {"appid": appid or self.config.appid, "openid": openid})["openid"]

    def inbox(self, openid: str) -> list[dict]:
        return self.get(f"/_emulator/inbox/{openid}")


@pytest.fixture(scope="session")
def emulator_server():
    app = create_emulator(EmulatorConfig())
    running = serve_in_thread(app)
    yield Emulator(running.base, app.extensions["wechat_emulator"])
    running.stop()


@pytest.fixture
def emulator(emulator_server):
    """The running emulator, reset to a clean state with the demo configuration."""
    cfg = emulator_server.config
    cfg.token_ttl, cfg.token_grace, cfg.code_ttl = 7200, 300, 300
    emulator_server.state.reset()
    yield emulator_server
    emulator_server.state.reset()  # also wakes any injected delay still sleeping
