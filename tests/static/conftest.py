"""The H5 app in a real browser: the app served on 127.0.0.1 over a migrated, seeded database of its own, and
Debian's Chromium driven by Playwright, with a fake camera that shows whatever code a test puts in front of it.

One server and one browser for the package (closed when its tests are done); every test opens its own browser
context (its own tabs and storage)."""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from .support import CHROMIUM, CODE_WINDOW, VIEWPORT, Camera, Served

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS_ENV = "XINMA_SCREENSHOTS"


@pytest.fixture(scope="package")
def served(tmp_path_factory):
    """The app with demo logins on a seeded database of its own (never the suite's shared one)."""
    from werkzeug.serving import make_server

    from handlers import demo, migrate
    from handlers.db import scratch_schema
    from webhooks import create_app

    from ..conftest import SECRET

    base_url = os.environ.get("XINMA_TEST_DATABASE_URL")
    folder = tmp_path_factory.mktemp("served")

    @contextmanager
    def database():
        if base_url:
            with scratch_schema(base_url, "xinma_browser") as url:
                yield url
        else:
            yield f"sqlite:///{folder / 'browser.sqlite3'}"

    with database() as url:
        migrate.upgrade(url)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "INSTANCE_PATH": str(folder / "instance"),
                          "DEMO": True, "RATELIMIT_ENABLED": False, "CODE_WINDOW": CODE_WINDOW})
        with app.extensions["xinma.sessionmaker"]() as session:
            demo.seed(session, app.extensions["xinma.keys"])
            session.commit()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the test output
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="served-app", daemon=True)
        thread.start()
        try:
            yield Served(f"http://127.0.0.1:{server.server_port}", app)
        finally:
            server.shutdown()
            thread.join(10)
            server.server_close()
            app.extensions["xinma.engine"].dispose()


@pytest.fixture(scope="package")
def camera(tmp_path_factory):
    return Camera(tmp_path_factory.mktemp("camera") / "camera.y4m")


@pytest.fixture(scope="package")
def browser(camera):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-wqy-microhei (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            # every host name resolves to nothing but 127.0.0.1: no lookups leave this machine
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera.path}",
        ])
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """new_page() -> a page in a fresh context: its own sessionStorage, so one signed-in person per tab."""
    contexts = []

    def make(viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20000)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="package")
def screenshot_dir(tmp_path_factory):
    """A temporary folder, or docs/screenshots with XINMA_SCREENSHOTS=1 (to regenerate the README's pictures:
    ``XINMA_SCREENSHOTS=1 pytest tests/static``)."""
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def shoot(screenshot_dir):
    def take(page, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.evaluate("document.getElementById('toast').hidden = true")  # a passing toast would hide the page
        page.screenshot(path=str(path))  # the viewport, 390x844, as a phone shows it
        return path
    return take
