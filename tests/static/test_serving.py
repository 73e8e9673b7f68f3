"""webhooks/pages.py serves static/ at /app/ (no build step): the files, their headers, the generated server
module, and the vendored libraries exactly as static/vendor/MANIFEST records them, with their licences."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from handlers import signing
from handlers.incentives import SCENARIO_NAMES
from handlers.redemptions import REASONS, VOID_WINDOW
from webhooks.pages import CSP

STATIC = Path(__file__).resolve().parents[2] / "static"


def get(client, path: str, **kw):
    """A response read to the end and closed (send_file's open file must not outlive the test)."""
    with client.get(path, **kw) as r:
        r.get_data()
        return r


def test_the_app_is_served_with_a_strict_policy(client):
    r = get(client, "/app/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert '<html lang="zh-CN">' in r.get_data(as_text=True)
    assert r.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP and "default-src 'none'" in CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["ETag"]
    assert get(client, "/app/", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304

    redirect = get(client, "/app")
    assert redirect.status_code == 308 and redirect.headers["Location"].endswith("/app/")


@pytest.mark.parametrize("path", ["/app/../webhooks/pages.py", "/app/%2e%2e/webhooks/pages.py",
                                  "/app/..%2fpyproject.toml", "/app/nothing-here.js"])
def test_nothing_outside_static_is_served(client, path):
    assert get(client, path).status_code == 404


def test_every_file_the_page_loads_exists_with_the_right_type(client):
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    refs = re.findall(r'(?:src|href)="([^"#:]+)"', html)
    assert {"vendor/weui/weui.min.css", "vendor/qrcode-generator/qrcode.js", "js/main.js", "app.css"} <= set(refs)
    types = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
    for ref in refs:
        r = get(client, "/app/" + ref)
        assert r.status_code == 200, ref
        assert r.mimetype == types[Path(ref).suffix], ref


def test_every_module_import_resolves(client):
    # No bundler: every relative import must name a file the server has (server.js is generated).
    for module in sorted((STATIC / "js").rglob("*.js")):
        for target in re.findall(r"\bfrom '(\.[^']+)';", module.read_text(encoding="utf-8")):
            path = (module.parent / target).resolve().relative_to(STATIC)
            assert get(client, f"/app/{path.as_posix()}").status_code == 200, (module.name, target)


def test_server_module_says_what_the_server_does(client, app):
    r = get(client, "/app/js/server.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    text = r.get_data(as_text=True)
    settings = json.loads(text[text.index("{"):text.rindex("}") + 1])
    assert settings["reasons"] == REASONS
    assert settings["scenarios"] == {k.value: v for k, v in SCENARIO_NAMES.items()}
    assert settings["colours"] == {"green": "绿码", "blue": "蓝码", "red": "红码"}
    assert settings["code_window"] == app.config["CODE_WINDOW"]
    assert settings["skew_seconds"] == signing.SKEW and settings["max_batch_seconds"] == signing.MAX_BATCH_SECONDS
    assert settings["void_window_seconds"] == VOID_WINDOW.total_seconds()


def test_vendored_files_are_what_the_manifest_records_with_their_licences():
    lines = (STATIC / "vendor" / "MANIFEST").read_text(encoding="utf-8").splitlines()
    packages = {parts[1]: parts[2] for parts in (line.split() for line in lines) if parts[0] == "package"}
    assert set(packages) == {"weui", "qrcode-generator", "jsqr"}
    files = {}
    for line in lines:
        if re.fullmatch(r"[0-9a-f]{64}  \S+", line):
            digest, name = line.split("  ")
            files[name] = digest
    assert {"weui/weui.min.css", "qrcode-generator/qrcode.js", "jsqr/jsQR.js"} <= set(files)
    for name, digest in files.items():
        assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest, name
    licences = {"weui/LICENSE.txt": "MIT", "qrcode-generator/LICENSE.txt": "MIT", "jsqr/LICENSE": "Apache License"}
    for name, words in licences.items():
        assert name in files and words in (STATIC / "vendor" / name).read_text(encoding="utf-8")
