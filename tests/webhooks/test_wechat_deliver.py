"""WeChat's side played by the emulator itself: /_emulator/deliver posts to our app served on 127.0.0.1,
signed and (in compat and AES mode) encrypted, retried; the app calls the emulator back for the code image."""
from __future__ import annotations

import pytest

from handlers import migrate
from tests.wechat_support import emulator, emulator_server, serve_in_thread  # noqa: F401 - fixtures
from tests.wechat_webhook_support import WECHAT_SETTINGS
from webhooks import create_app
from webhooks.wechat_emulator import DEMO_SECRET


@pytest.fixture
def served(tmp_path, emulator):
    """A real app with its own SQLite database (real commits, real token store), on a free port."""
    url = f"sqlite:///{tmp_path / 'deliver.sqlite3'}"
    migrate.upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "deliver-test-secret", "RATELIMIT_ENABLED": False,
                      "INSTANCE_PATH": str(tmp_path / "instance"), **WECHAT_SETTINGS, "WECHAT_SECRET": DEMO_SECRET,
                      "WECHAT_API_BASE": emulator.base})
    running = serve_in_thread(app)
    yield running.base + "/webhooks/wechat"
    running.stop()
    app.extensions["xinma.engine"].dispose()


def test_handshake_and_deliveries_in_every_mode(emulator, served):
    assert emulator.post("/_emulator/handshake", {"webhook": served})["ok"]
    for mode in ("plain", "compat", "aes"):
        out = emulator.post("/_emulator/deliver", {"openid": "oDeliver0000000000000000001", "mode": mode,
                                                   "webhook": served, "times": 3,
                                                   "message": {"type": "text", "content": "帮助"}})
        assert [t["status"] for t in out["tries"]] == [200, 200, 200]
        assert out["encrypted"] == (mode != "plain") and "error" not in out
        assert len({t["reply_xml"] for t in out["tries"]}) == 1  # retries: the very same reply
        assert "信用码" in out["reply"]["Content"]
    scan = emulator.post("/_emulator/deliver", {"openid": "oDeliver0000000000000000001", "encrypt": True,
                                                "webhook": served, "message": {
                                                    "type": "event", "event": "scancode_waitmsg", "key": "scan",
                                                    "scan_result": "XM1.whatever"}})
    assert "不是核销员" in scan["reply"]["Content"]
