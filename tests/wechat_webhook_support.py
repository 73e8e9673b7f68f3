"""Playing WeChat against our webhook through the Flask test client: hand-built XML, signed (and encrypted)
exactly as WeChat does, in plaintext, compatible and safe mode; a token store that lives in memory; and our
app served for real on 127.0.0.1 for the emulator to post to."""
from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
import xmltodict
from flask import Flask
from sqlalchemy.orm import Session
from wechatpy.crypto import WeChatCrypto

from handlers import wechat
from webhooks.wechat_emulator import (
    DEMO_AES_KEY, DEMO_APPID, DEMO_SECRET, DEMO_TOKEN, build_xml, signature,
)

MODES = ("plain", "compat", "aes")
ORIGINAL_ID = "gh_xinma_test"
WECHAT_SETTINGS = {"WECHAT_TOKEN": DEMO_TOKEN, "WECHAT_AES_KEY": DEMO_AES_KEY, "WECHAT_APPID": DEMO_APPID}


class MemoryTokenStore(wechat._SharedTokenStore):
    """Tests bind the app to one open transaction; a token store with its own connection would wait on it."""

    def _shared(self, appid, fetch, rejected):
        token, expires_in = fetch()
        return token, time.time() + expires_in


def with_emulator(make_app, emulator, **overrides):
    """An app whose WeChat calls go to the running emulator."""
    app = make_app(**WECHAT_SETTINGS, WECHAT_SECRET=DEMO_SECRET, WECHAT_API_BASE=emulator.base,
                   MINIPROGRAM_APPID=emulator.config.miniprogram_appid,
                   MINIPROGRAM_SECRET=emulator.config.miniprogram_secret, **overrides)
    app.extensions["xinma.wechat.store"] = MemoryTokenStore()
    return app


def fields(openid: str, kind: str = "text", *, msg_id: int | None = None, create_time: int | None = None, **extra):
    f = {"ToUserName": ORIGINAL_ID, "FromUserName": openid, "CreateTime": create_time or int(time.time()),
         "MsgType": kind, **extra}
    if kind != "event":
        f["MsgId"] = msg_id or time.time_ns() // 1000
    return f


def text(openid: str, content: str, **kw) -> str:
    return build_xml(fields(openid, "text", Content=content, **kw))


def event(openid: str, name: str, **extra) -> str:
    return build_xml(fields(openid, "event", Event=name, **extra))


def post(client, xml: str | bytes, mode: str = "plain", *, token: str = DEMO_TOKEN, params: dict | None = None):
    """POST as WeChat would; returns (response, reply dict or None, encrypted?)."""
    ts, nonce = str(int(time.time())), "20261122"
    query = {"signature": signature(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "o"}
    body = xml.encode("utf-8") if isinstance(xml, str) else xml
    crypto = WeChatCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID)
    if mode != "plain":
        enc = xmltodict.parse(crypto.encrypt_message(body.decode("utf-8"), nonce, ts))["xml"]
        query |= {"encrypt_type": "aes", "msg_signature": enc["MsgSignature"]}
        if mode == "aes":
            body = build_xml({"ToUserName": ORIGINAL_ID, "Encrypt": enc["Encrypt"]}).encode()
        else:
            body = body[: -len(b"</xml>")] + f"<Encrypt><![CDATA[{enc['Encrypt']}]]></Encrypt></xml>".encode()
    query |= params or {}
    r = client.post("/webhooks/wechat", query_string=query, data=body, content_type="text/xml")
    if r.status_code != 200:
        return r, None, False
    return r, *read_reply(r.get_data(as_text=True), crypto)


def read_reply(text_: str, crypto: WeChatCrypto):
    if text_.strip() in ("", "success"):
        return None, False
    parsed = xmltodict.parse(text_)["xml"]
    if "Encrypt" not in parsed:
        return dict(parsed), False
    plain = crypto.decrypt_message(parsed, parsed["MsgSignature"], parsed["TimeStamp"], parsed["Nonce"])
    return dict(xmltodict.parse(plain)["xml"]), True


# --- our app served for real on 127.0.0.1, for the emulator to post to ----------------------------------

@dataclass
class Served:
    """The app on a free loopback port with its own SQLite file (real commits, the real token store)."""
    base: str
    app: Flask
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def webhook(self) -> str:
        return self.base + "/webhooks/wechat"

    def session(self):
        return self.app.extensions["xinma.sessionmaker"]()

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {}) | ({"Authorization": f"Bearer {token}"} if token else {})
        return self.http.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def login(self, account: str) -> str:
        """A demo login's bearer token (demo mode only)."""
        r = self.call("POST", "/api/v1/session/demo", json={"account": account})
        assert r.status_code == 201, r.text
        return r.json()["token"]


SERVED_SECRET = "served-test-secret"
_TEMPLATES: dict[bool, Path] = {}  # demo? -> a migrated (and seeded) database file, copied for each test


def _database(tmp_path: Path, demo: bool) -> str:
    from handlers import demo as demo_world, migrate
    from handlers.db import make_engine
    from handlers.privacy import Keys
    from webhooks import demo_chat

    if demo not in _TEMPLATES:
        folder = Path(tempfile.mkdtemp(prefix="xinma-served-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        template = folder / "template.sqlite3"
        migrate.upgrade(f"sqlite:///{template}")
        if demo:
            engine = make_engine(f"sqlite:///{template}")
            with Session(engine) as s:
                demo_world.seed(s, Keys.from_secret(SERVED_SECRET))
                demo_chat.seed_people(s, WECHAT_SETTINGS["WECHAT_APPID"])
                s.commit()
            engine.dispose()
        _TEMPLATES[demo] = template
    path = tmp_path / "served.sqlite3"
    shutil.copyfile(_TEMPLATES[demo], path)
    return f"sqlite:///{path}"


@contextmanager
def served_app(tmp_path, emulator, *, demo: bool = False, **settings):
    """Our app against the running emulator; with ``demo`` the demo world is seeded and its people bound."""
    from tests.wechat_support import serve_in_thread
    from webhooks import create_app

    app = create_app({"DATABASE_URL": _database(tmp_path, demo), "SECRET_KEY": SERVED_SECRET,
                      "RATELIMIT_ENABLED": False, "INSTANCE_PATH": str(tmp_path / "instance"), **WECHAT_SETTINGS,
                      "WECHAT_SECRET": DEMO_SECRET, "WECHAT_API_BASE": emulator.base,
                      "MINIPROGRAM_APPID": emulator.config.miniprogram_appid,
                      "MINIPROGRAM_SECRET": emulator.config.miniprogram_secret, "DEMO": demo, **settings})
    running = serve_in_thread(app)
    try:
        yield Served(running.base, app)
    finally:
        running.stop()
        app.extensions["xinma.engine"].dispose()
