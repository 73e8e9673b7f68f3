"""`xinma serve` for real: a subprocess, a real port on 127.0.0.1, real HTTP."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60


def _xinma() -> list[str]:
    script = Path(sys.executable).with_name("xinma")
    if script.exists():
        return [str(script)]
    found = shutil.which("xinma")
    return [found] if found else [sys.executable, "-m", "webhooks.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(instance: Path) -> dict:
    # Nothing from the caller's XINMA_* settings (a database URL above all) may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINMA_")}
    env["XINMA_INSTANCE_PATH"] = str(instance)
    return env


def _request(url: str, *, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@contextmanager
def running_demo(tmp_path, **env):
    """`xinma serve --demo` on a free port; yields (base URL, the process, a function returning its output)."""
    port = _free_port()
    out, err = (tmp_path / "stdout").open("w+"), (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen([*_xinma(), "serve", "--demo", "--port", str(port)],
                            env=_env(tmp_path / "instance") | env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=tmp_path)

    def output() -> str:
        out.seek(0), err.seek(0)
        return out.read() + "\n--- stderr ---\n" + err.read()

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            assert proc.poll() is None, f"xinma serve --demo exited with {proc.returncode}:\n{output()}"
            try:
                if _request(base + "/healthz")[0] == 200:
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, f"not up after {STARTUP_SECONDS}s:\n{output()}"
            time.sleep(0.2)
        yield base, proc, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close(), err.close()


@pytest.fixture
def demo_server(tmp_path):
    with running_demo(tmp_path) as running:
        yield running


def test_demo_serves_seeded_world_and_stops_cleanly(demo_server, tmp_path):
    base, proc, output = demo_server

    status, accounts = _request(base + "/api/v1/session/demo")
    assert status == 200
    by_login = {a["account"]: a for a in accounts}
    assert by_login["citizen-green"]["colour"] == "green"
    assert by_login["citizen-blue"]["colour"] == "blue"
    assert by_login["citizen-red"]["colour"] == "red"
    assert by_login["citizen-red"]["roles"] == ["citizen"]
    assert by_login["citizen-red"]["subject_kind"] == "person"
    assert by_login["enterprise-d"]["subject_kind"] == "enterprise"
    assert by_login["admin"]["roles"] == ["platform_admin"]
    assert all(a["description"] for a in accounts)

    # several requests at once, as at a busy counter: the threaded server answers them all
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: _request(base + "/api/v1/session/demo")[0], range(16)))
    assert statuses == [200] * 16

    status, session = _request(base + "/api/v1/session/demo", body={"account": "citizen-red"})
    assert status == 201, session
    status, subject = _request(base + "/api/v1/me/subject", token=session["token"])
    assert status == 200, subject
    assert subject["colour"] == "red"
    assert subject["records"][0]["category"] == "dishonest_judgment_debtor"

    # the demo has its own database file, not the normal one
    assert (tmp_path / "instance" / "demo.sqlite3").exists()
    assert not (tmp_path / "instance" / "xinma.sqlite3").exists()

    # The WeChat emulator runs beside it: the chat page's messages reach the bot through it, signed and
    # AES-encrypted, and the bot's code image through its media store.
    text = output()
    assert f"{base}/demo/chat" in text
    emulator = re.search(r"emulator on (http://127\.0\.0\.1:\d+)", text).group(1)
    green = "oXmDemoCitizenGreen000000001"
    status, sent = _request(base + "/demo/chat/send", body={"openid": green, "message": {"type": "text",
                                                                                          "content": "信用码"}})
    assert status == 200 and sent["encrypted"] and sent["reply"]["type"] == "image", sent
    with urllib.request.urlopen(f"{base}/demo/chat/media/{sent['reply']['media_id']}", timeout=10) as r:
        assert r.read().startswith(b"\x89PNG")
    status, code = _request(base + "/api/v1/codes", body={}, token=session["token"])  # citizen-red's code
    status, scanned = _request(base + "/demo/chat/send", body={"openid": "oXmDemoClerkWestlake00000001", "message": {
        "type": "event", "event": "scancode_waitmsg", "key": "scan", "scan_result": code["tokens"][0]["token"]}})
    assert scanned["reply"]["text"].startswith("❌") and "红码" in scanned["reply"]["text"], scanned
    assert _request(emulator + "/_emulator")[1]["webhook_url"] == base + "/webhooks/wechat"

    proc.terminate()
    assert proc.wait(timeout=20) == 0, output()
    text = output()
    assert "citizen-red" in text and "/api/v1/openapi.json" in text and "/api/v1/session/demo" in text
    assert '"msg": "stopped"' in text
    with pytest.raises(OSError):  # the emulator stopped with it
        _request(emulator + "/_emulator")


def test_demo_uses_the_wechat_the_settings_name(tmp_path):
    # XINMA_WECHAT_API_BASE is set (here: to nothing listening): no emulator is started; the page says so.
    with running_demo(tmp_path, XINMA_WECHAT_API_BASE=f"http://127.0.0.1:{_free_port()}") as (base, proc, output):
        assert "no emulator started" in output()
        status, body = _request(base + "/demo/chat/send", body={"openid": "oXmDemoCitizenGreen000000001",
                                                                "message": {"type": "text", "content": "帮助"}})
        assert status == 503 and body["error"]["code"] == "wechat_unavailable"
        proc.terminate()
        assert proc.wait(timeout=20) == 0, output()


def test_plain_serve_refuses_an_unmigrated_database(tmp_path):
    proc = subprocess.run([*_xinma(), "serve", "--port", str(_free_port())], env=_env(tmp_path / "instance"),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert "xinma db upgrade" in proc.stderr
    assert "migration head" in proc.stderr


def test_serve_says_so_when_the_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([*_xinma(), "serve", "--demo", "--port", str(port)], env=_env(tmp_path / "instance"),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
