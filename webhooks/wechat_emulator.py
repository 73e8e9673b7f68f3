"""A local WeChat: the parts of its HTTP API Xinma calls, plus an API of its own (inbox, faults, deliver).

Served on loopback only (`xinma wechat-emulator`). Our code reaches it through the very same wechatpy calls
it makes in production; only XINMA_WECHAT_API_BASE differs. State lives in memory, behind one lock.
See docs/wechat.md for the endpoints.
"""
from __future__ import annotations

import hashlib
import io
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import qrcode
import requests
import xmltodict
from flask import Flask, Response, jsonify, request
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

# Used when the XINMA_WECHAT_* settings are unset, so that a demo and its emulator agree out of the box.
DEMO_APPID = "wx0e1a2b3c4d5e6f70"
DEMO_SECRET = "emulator-official-account-secret"
DEMO_TOKEN = "xinma-demo-token"
DEMO_AES_KEY = "eGlubWEtZGVtby1hZXMta2V5LWZvci1lbXVsYXRvciE"  # 43 characters, like WeChat's EncodingAESKey
DEMO_MINIPROGRAM_APPID = "wx9f8e7d6c5b4a3921"
DEMO_MINIPROGRAM_SECRET = "emulator-mini-program-secret"
DEFAULT_WEBHOOK = "http://127.0.0.1:8000/webhooks/wechat"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40007: "invalid media_id",
    40013: "invalid appid",
    40016: "invalid button size",
    40029: "invalid code",
    40037: "invalid template_id",
    40053: "invalid action info",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41005: "media data missing",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    47001: "data format error",
}


class WeChatFault(Exception):
    def __init__(self, errcode: int):
        self.errcode = errcode


def _errmsg(errcode: int) -> str:
    # WeChat appends a request id to every message.
    return f"{ERRMSG.get(errcode, 'injected fault')} rid: {secrets.token_hex(6)}"


def _err(errcode: int) -> Response:
    return jsonify(errcode=errcode, errmsg=_errmsg(errcode))


def _ok(**extra) -> Response:
    return jsonify(errcode=0, errmsg="ok", **extra)


def _png(text: str) -> bytes:
    buf = io.BytesIO()
    qrcode.make(text).save(buf)
    return buf.getvalue()


def _new_openid() -> str:
    return "o" + secrets.token_urlsafe(21)[:27]  # 28 characters, like WeChat's


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK


@dataclass
class EmulatorConfig:
    appid: str = DEMO_APPID  # the official account
    secret: str = DEMO_SECRET
    token: str = DEMO_TOKEN  # webhook signature token
    aes_key: str = DEMO_AES_KEY
    miniprogram_appid: str = DEMO_MINIPROGRAM_APPID
    miniprogram_secret: str = DEMO_MINIPROGRAM_SECRET
    webhook_url: str = DEFAULT_WEBHOOK
    original_id: str = "gh_xinma_emulator"  # the official account's ToUserName
    token_ttl: int = 7200  # seconds an access token lives
    token_grace: int = 300  # seconds a superseded token keeps working (WeChat: five minutes)
    code_ttl: int = 300  # seconds a login code lives

    @classmethod
    def from_settings(cls, settings: dict, **overrides) -> EmulatorConfig:
        """From the app's XINMA_WECHAT_* settings, with the demo values for whatever is unset."""
        pick = {"appid": "WECHAT_APPID", "secret": "WECHAT_SECRET", "token": "WECHAT_TOKEN",
                "aes_key": "WECHAT_AES_KEY", "miniprogram_appid": "MINIPROGRAM_APPID",
                "miniprogram_secret": "MINIPROGRAM_SECRET"}
        values = {attr: settings[name] for attr, name in pick.items() if settings.get(name)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class _Token:
    appid: str
    expires_at: float
    superseded_at: float | None = None


@dataclass
class _Code:
    appid: str
    openid: str
    expires_at: float
    used: bool = False


@dataclass
class _Fault:
    path: str
    times: int
    errcode: int | None = None
    status: int | None = None
    delay: float | None = None

    def public(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class State:
    config: EmulatorConfig
    lock: threading.RLock = field(default_factory=threading.RLock)
    wake: threading.Event = field(default_factory=threading.Event)  # cuts injected delays short on reset
    apps: dict[str, str] = field(default_factory=dict)  # appid -> secret
    tokens: dict[str, _Token] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)  # appid -> newest token
    codes: dict[str, _Code] = field(default_factory=dict)
    users: dict[tuple[str, str], str] = field(default_factory=dict)  # (appid, openid) -> unionid
    refused: set[tuple[str, str]] = field(default_factory=set)  # (openid, template_id)
    media: dict[str, dict] = field(default_factory=dict)
    qrcodes: dict[str, dict] = field(default_factory=dict)
    menus: dict[str, Any] = field(default_factory=dict)
    inbox: dict[str, list[dict]] = field(default_factory=dict)
    faults: list[_Fault] = field(default_factory=list)
    token_fetches: Counter = field(default_factory=Counter)
    requests: Counter = field(default_factory=Counter)
    seq: int = 0

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.wake.set()
            self.wake = threading.Event()
            cfg = self.config
            self.apps = {cfg.appid: cfg.secret, cfg.miniprogram_appid: cfg.miniprogram_secret}
            for name in ("tokens", "latest", "codes", "users", "media", "qrcodes", "menus", "inbox"):
                getattr(self, name).clear()
            self.refused.clear()
            self.faults.clear()
            self.token_fetches.clear()
            self.requests.clear()

    def next_id(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    # --- tokens ------------------------------------------------------------------------------------

    def mint_token(self, appid: str) -> tuple[str, int]:
        with self.lock:
            now = time.time()
            old = self.latest.get(appid)
            if old in self.tokens:
                self.tokens[old].superseded_at = now
            token = secrets.token_urlsafe(96)
            self.tokens[token] = _Token(appid, now + self.config.token_ttl)
            self.latest[appid] = token
            self.token_fetches[appid] += 1
            return token, self.config.token_ttl

    def app_of(self, token: str | None) -> str:
        """The appid a token belongs to, or the errcode WeChat would answer."""
        if not token:
            raise WeChatFault(41001)
        with self.lock:
            t = self.tokens.get(token)
            now = time.time()
            if t is None or (t.superseded_at is not None and now > t.superseded_at + self.config.token_grace):
                raise WeChatFault(40001)
            if now >= t.expires_at:
                raise WeChatFault(42001)
            return t.appid

    def expire_tokens(self, appid: str | None = None) -> int:
        with self.lock:
            n = 0
            for t in self.tokens.values():
                if appid in (None, t.appid):
                    t.expires_at = min(t.expires_at, time.time())
                    n += 1
            return n

    # --- users, codes, inbox -------------------------------------------------------------------------

    def add_user(self, appid: str, openid: str | None = None, unionid: str | None = None) -> dict:
        with self.lock:
            openid = openid or _new_openid()
            unionid = unionid or self.users.get((appid, openid)) or "u" + hashlib.sha1(openid.encode()).hexdigest()[:27]
            self.users[(appid, openid)] = unionid
            return {"appid": appid, "openid": openid, "unionid": unionid}

    def check_user(self, appid: str, openid: Any) -> str:
        if not isinstance(openid, str) or (appid, openid) not in self.users:
            raise WeChatFault(40003)
        return openid

    def record(self, openid: str, kind: str, **entry) -> dict:
        with self.lock:
            item = {"id": self.next_id(), "kind": kind, "at": time.time(), **entry}
            self.inbox.setdefault(openid, []).append(item)
            return item

    def take_fault(self, path: str) -> _Fault | None:
        with self.lock:
            for f in self.faults:
                if f.path in (path, "*") and f.times > 0:
                    f.times -= 1
                    if f.times == 0:
                        self.faults.remove(f)
                    return f
        return None


def _json_body() -> dict:
    try:
        body = json.loads(request.get_data() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise WeChatFault(47001) from None
    if not isinstance(body, dict):
        raise WeChatFault(47001)
    return body


def _cdata(value: str) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: dict) -> str:
    """WeChat's flat XML (one level of nesting, e.g. ScanCodeInfo); numbers bare, text in CDATA."""
    def render(d: dict) -> str:
        out = []
        for k, v in d.items():
            if isinstance(v, dict):
                out.append(f"<{k}>{render(v)}</{k}>")
            elif isinstance(v, int):
                out.append(f"<{k}>{v}</{k}>")
            else:
                out.append(f"<{k}>{_cdata(v)}</{k}>")
        return "".join(out)
    return f"<xml>{render(fields)}</xml>"


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, *extra])).encode()).hexdigest()


def create_emulator(config: EmulatorConfig | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.json.ensure_ascii = False
    state = State(config or EmulatorConfig())
    app.extensions["wechat_emulator"] = state

    def wechat_api(path: str, methods=("GET",), token: bool = True):
        """An endpoint of WeChat's: counted, subject to injected faults, token-checked, errcodes as JSON."""
        def decorate(view):
            def handler():
                state.requests[path] += 1
                fault = state.take_fault(path)
                if fault is not None:
                    if fault.delay:
                        state.wake.wait(fault.delay)  # then answer normally: slow, not lost
                    if fault.status:
                        return Response(f"injected HTTP {fault.status}", status=fault.status)
                    if fault.errcode:
                        return _err(fault.errcode)
                try:
                    appid = state.app_of(request.args.get("access_token")) if token else None
                    return view(appid) if token else view()
                except WeChatFault as e:
                    return _err(e.errcode)
            handler.__name__ = "wx_" + path.replace("/", "_")
            app.add_url_rule("/" + path, view_func=handler, methods=list(methods))
            return view
        return decorate

    # --- WeChat's API --------------------------------------------------------------------------------

    @wechat_api("cgi-bin/token", token=False)
    def token():
        a = request.args
        if a.get("grant_type") != "client_credential":
            raise WeChatFault(40002)
        if a.get("appid") not in state.apps:
            raise WeChatFault(40013)
        if not secrets.compare_digest(str(a.get("secret", "")), state.apps[a["appid"]]):
            raise WeChatFault(40125)
        token, expires_in = state.mint_token(a["appid"])
        return jsonify(access_token=token, expires_in=expires_in)

    @wechat_api("sns/jscode2session", token=False)  # wechatpy sends an access_token too; WeChat ignores it
    def jscode2session():
        a = request.args
        if a.get("appid") not in state.apps:
            raise WeChatFault(40013)
        if not secrets.compare_digest(str(a.get("secret", "")), state.apps[a["appid"]]):
            raise WeChatFault(40125)
        if a.get("grant_type") != "authorization_code":
            raise WeChatFault(40002)
        with state.lock:
            code = state.codes.get(a.get("js_code", ""))
            if code is None or code.appid != a["appid"] or code.expires_at < time.time():
                raise WeChatFault(40029)
            if code.used:
                raise WeChatFault(40163)
            code.used = True
            unionid = state.users.get((code.appid, code.openid))
        return jsonify(openid=code.openid, session_key=secrets.token_urlsafe(16), unionid=unionid)

    @wechat_api("cgi-bin/media/upload", methods=("POST",))
    def media_upload(appid):
        kind = request.args.get("type")
        if kind not in ("image", "voice", "video", "thumb"):
            raise WeChatFault(40004)
        f = request.files.get("media")
        data = f.read() if f else b""
        if not data:
            raise WeChatFault(41005)
        media_id = secrets.token_urlsafe(48)
        with state.lock:
            state.media[media_id] = {"appid": appid, "type": kind, "data": data, "filename": f.filename,
                                     "content_type": f.mimetype, "created_at": int(time.time())}
        return jsonify(type=kind, media_id=media_id, created_at=int(time.time()))

    @wechat_api("cgi-bin/message/custom/send", methods=("POST",))
    def custom_send(appid):
        body = _json_body()
        openid = state.check_user(appid, body.get("touser"))
        msgtype = body.get("msgtype")
        content = body.get(msgtype) if isinstance(msgtype, str) else None
        if not isinstance(content, dict):
            raise WeChatFault(47001)
        if msgtype == "text" and not isinstance(content.get("content"), str):
            raise WeChatFault(47001)
        if msgtype in ("image", "voice", "video") and content.get("media_id") not in state.media:
            raise WeChatFault(40007)
        state.record(openid, "custom", appid=appid, msgtype=msgtype, **{msgtype: content})
        return _ok()

    @wechat_api("cgi-bin/message/template/send", methods=("POST",))
    def template_send(appid):
        body = _json_body()
        openid = state.check_user(appid, body.get("touser"))
        if not body.get("template_id") or not isinstance(body.get("template_id"), str):
            raise WeChatFault(40037)
        if not isinstance(body.get("data"), dict):
            raise WeChatFault(47001)
        msgid = state.next_id()
        state.record(openid, "template", appid=appid, msgid=msgid, template_id=body["template_id"],
                     data=body["data"], url=body.get("url"), miniprogram=body.get("miniprogram"))
        return _ok(msgid=msgid)

    @wechat_api("cgi-bin/message/subscribe/send", methods=("POST",))
    def subscribe_send(appid):
        body = _json_body()
        openid = state.check_user(appid, body.get("touser"))
        template_id = body.get("template_id")
        if not template_id or not isinstance(template_id, str):
            raise WeChatFault(40037)
        if not isinstance(body.get("data"), dict):
            raise WeChatFault(47001)
        if (openid, template_id) in state.refused:
            raise WeChatFault(43101)
        state.record(openid, "subscribe", appid=appid, template_id=template_id, data=body["data"],
                     page=body.get("page"))
        return _ok()

    @wechat_api("cgi-bin/qrcode/create", methods=("POST",))
    def qrcode_create(appid):
        body = _json_body()
        action = body.get("action_name")
        scene = (body.get("action_info") or {}).get("scene") if isinstance(body.get("action_info"), dict) else None
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE") or not isinstance(scene, dict):
            raise WeChatFault(40053)
        value = scene.get("scene_str") if action.endswith("STR_SCENE") else scene.get("scene_id")
        if value in (None, "") or (isinstance(value, str) and len(value) > 64):
            raise WeChatFault(40053)
        permanent = action.startswith("QR_LIMIT")
        expire = None if permanent else min(int(body.get("expire_seconds") or 60), 2592000)
        ticket = secrets.token_urlsafe(40)
        url = f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}"
        with state.lock:
            state.qrcodes[ticket] = {"appid": appid, "scene": str(value), "url": url, "expire_seconds": expire,
                                     "expires_at": None if permanent else time.time() + expire}
        return jsonify(ticket=ticket, url=url, **({"expire_seconds": expire} if expire else {}))

    @app.get("/cgi-bin/showqrcode")
    def showqrcode():
        qr = state.qrcodes.get(request.args.get("ticket", ""))
        if qr is None or (qr["expires_at"] and qr["expires_at"] < time.time()):
            return Response("ticket not found", status=404)
        return Response(_png(qr["url"]), mimetype="image/png")

    @wechat_api("cgi-bin/menu/create", methods=("POST",))
    def menu_create(appid):
        body = _json_body()
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise WeChatFault(40016)
        for b in buttons:
            if not isinstance(b, dict) or not b.get("name") or len(b.get("sub_button") or []) > 5:
                raise WeChatFault(40016)
        with state.lock:
            state.menus[appid] = body
        return _ok()

    @wechat_api("wxa/getwxacodeunlimit", methods=("POST",))
    def wxacode(appid):
        body = _json_body()
        scene = body.get("scene")
        if not isinstance(scene, str) or not 1 <= len(scene) <= 32:
            raise WeChatFault(40097)
        page = body.get("page") or "pages/index/index"
        return Response(_png(f"wxacode:{appid}:{page}?scene={scene}"), mimetype="image/png")

    # --- the emulator's own API -----------------------------------------------------------------------

    own = "/_emulator"

    def body_of() -> dict:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}

    def bad(message: str, status: int = 400):
        return jsonify(error=message), status

    @app.get(own)
    def status():
        cfg = state.config
        return jsonify(official_account=cfg.appid, mini_program=cfg.miniprogram_appid, webhook_url=cfg.webhook_url,
                       original_id=cfg.original_id, token_ttl=cfg.token_ttl, token_grace=cfg.token_grace,
                       code_ttl=cfg.code_ttl)

    @app.post(own + "/config")
    def set_config():
        cfg = state.config
        for name, value in body_of().items():
            if name in ("token_ttl", "token_grace", "code_ttl"):
                setattr(cfg, name, int(value))
            elif name == "webhook_url" and is_loopback_url(str(value)):
                cfg.webhook_url = str(value)
            else:
                return bad(f"cannot set {name}")
        return status()

    @app.post(own + "/reset")
    def reset():
        state.reset()
        return jsonify(ok=True)

    @app.post(own + "/apps")
    def add_app():
        b = body_of()
        if not b.get("appid") or not b.get("secret"):
            return bad("appid and secret are required")
        with state.lock:
            state.apps[str(b["appid"])] = str(b["secret"])
        return jsonify(appid=b["appid"]), 201

    @app.post(own + "/users")
    def add_user():
        b = body_of()
        return jsonify(state.add_user(b.get("appid") or state.config.appid, b.get("openid"), b.get("unionid"))), 201

    @app.post(own + "/login-code")
    def login_code():
        """What wx.login() gives the phone: a single-use code for jscode2session."""
        b = body_of()
        user = state.add_user(b.get("appid") or state.config.miniprogram_appid, b.get("openid"), b.get("unionid"))
        code = secrets.token_urlsafe(24)
        with state.lock:
            state.codes[code] = _Code(user["appid"], user["openid"], time.time() + state.config.code_ttl)
        return jsonify(code=code, **user), 201

    @app.post(own + "/subscriptions")
    def subscriptions():
        """Whether a user accepts a subscription template (accepted unless refused here)."""
        b = body_of()
        if not b.get("openid") or not b.get("template_id"):
            return bad("openid and template_id are required")
        key = (str(b["openid"]), str(b["template_id"]))
        with state.lock:
            (state.refused.discard if b.get("accept", True) else state.refused.add)(key)
        return jsonify(openid=key[0], template_id=key[1], accept=key not in state.refused)

    @app.get(own + "/inbox")
    def inboxes():
        with state.lock:
            return jsonify({openid: list(items) for openid, items in state.inbox.items()})

    @app.route(own + "/inbox/<openid>", methods=["GET", "DELETE"])
    def inbox(openid):
        with state.lock:
            if request.method == "DELETE":
                state.inbox.pop(openid, None)
                return jsonify(ok=True)
            items = list(state.inbox.get(openid, []))
        after = request.args.get("after", type=int)
        return jsonify([i for i in items if after is None or i["id"] > after])

    @app.get(own + "/media/<media_id>")
    def media(media_id):
        m = state.media.get(media_id)
        if m is None:
            return bad("no such media", 404)
        return Response(m["data"], mimetype=m["content_type"] or "application/octet-stream")

    @app.get(own + "/qrcodes/<ticket>")
    def qrcode_info(ticket):
        qr = state.qrcodes.get(ticket)
        return jsonify(qr) if qr else bad("no such ticket", 404)

    @app.get(own + "/menus")
    def menus():
        with state.lock:
            return jsonify(dict(state.menus))

    @app.route(own + "/faults", methods=["GET", "POST", "DELETE"])
    def faults():
        """POST {path, errcode | "timeout" (seconds, default 30) | status, times (default 1)}."""
        if request.method == "DELETE":
            with state.lock:
                state.faults.clear()
            return jsonify(ok=True)
        if request.method == "POST":
            b = body_of()
            path = str(b.get("path", "")).lstrip("/")
            kinds = [k for k in ("errcode", "timeout", "status") if b.get(k) is not None]
            if not path or len(kinds) != 1:
                return bad("give path and exactly one of errcode, timeout, status")
            timeout = b.get("timeout")
            fault = _Fault(path=path, times=int(b.get("times", 1)),
                           errcode=int(b["errcode"]) if "errcode" in kinds else None,
                           status=int(b["status"]) if "status" in kinds else None,
                           delay=(30.0 if timeout is True else float(timeout)) if "timeout" in kinds else None)
            with state.lock:
                state.faults.append(fault)
            return jsonify(fault.public()), 201
        with state.lock:
            return jsonify([f.public() for f in state.faults])

    @app.get(own + "/stats")
    def stats():
        with state.lock:
            return jsonify(token_fetches=dict(state.token_fetches), requests=dict(state.requests))

    @app.post(own + "/tokens/expire")
    def expire_tokens():
        return jsonify(expired=state.expire_tokens(body_of().get("appid")))

    @app.post(own + "/handshake")
    def handshake():
        """WeChat's GET with echostr, as when the webhook URL is saved in the admin console."""
        b = body_of()
        url = b.get("webhook") or state.config.webhook_url
        if not is_loopback_url(url):
            return bad("the webhook must be on loopback")
        ts, nonce, echostr = str(int(time.time())), str(secrets.randbelow(10**9)), secrets.token_hex(8)
        params = {"signature": signature(state.config.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                  "echostr": echostr}
        try:
            r = requests.get(url, params=params, timeout=5)
        except requests.RequestException as e:
            return jsonify(ok=False, error=type(e).__name__)
        return jsonify(ok=r.status_code == 200 and r.text == echostr, status=r.status_code, body=r.text[:200])

    @app.post(own + "/deliver")
    def deliver():
        """Play WeChat: post a user's message or event to the webhook, signed (and encrypted) as WeChat does.

        Body: {openid, xml | message: {type, ...}, encrypt: bool | mode: plain|compat|aes, times, webhook}.
        Answers with each try's status and the reply, decrypted and parsed.
        """
        b = body_of()
        cfg = state.config
        openid = b.get("openid")
        if not isinstance(openid, str) or not openid:
            return bad("openid is required")
        url = b.get("webhook") or cfg.webhook_url
        if not is_loopback_url(url):
            return bad("the webhook must be on loopback")
        mode = b.get("mode") or ("aes" if b.get("encrypt") else "plain")
        if mode not in ("plain", "compat", "aes"):
            return bad("mode is plain, compat or aes")
        state.add_user(cfg.appid, openid)  # whoever writes to the account follows it
        if b.get("xml"):
            plain = str(b["xml"])
        else:
            try:
                plain = build_xml(message_fields(state, openid, b.get("message") or {}))
            except ValueError as e:
                return bad(str(e))
        crypto = WeChatCrypto(cfg.token, cfg.aes_key, cfg.appid) if mode != "plain" else None
        state.record(openid, "user", xml=plain)
        tries = [_post_once(state, url, openid, plain, mode, crypto) for _ in range(max(1, int(b.get("times", 1))))]
        for t in tries:
            if t.get("reply"):
                state.record(openid, "reply", reply=t["reply"])
        return jsonify(tries[-1] | {"tries": tries})

    return app


def message_fields(state: State, openid: str, spec: dict) -> dict:
    """WeChat's fields for a simple message spec: {type: text, content} | {type: image, media_id, pic_url} |
    {type: event, event, key | scene | ticket, scan_result, scan_type, msg_id, status}."""
    kind = spec.get("type", "text")
    fields: dict[str, Any] = {"ToUserName": state.config.original_id, "FromUserName": openid,
                              "CreateTime": int(spec.get("create_time") or time.time()), "MsgType": kind}
    if kind == "text":
        fields["Content"] = str(spec.get("content", ""))
    elif kind == "image":
        fields["PicUrl"] = spec.get("pic_url", "http://mmbiz.qpic.cn/emulator.jpg")
        fields["MediaId"] = spec.get("media_id") or secrets.token_urlsafe(32)
    elif kind == "event":
        event = spec.get("event")
        if not event:
            raise ValueError("an event needs its name (event)")
        fields["Event"] = event
        scene, ticket = spec.get("scene"), spec.get("ticket")
        if ticket and not scene:
            qr = state.qrcodes.get(ticket)
            if qr is None:
                raise ValueError("unknown ticket")
            scene = qr["scene"]
        if scene is not None:  # a parametric QR code: subscribe carries "qrscene_" + scene, SCAN the scene
            fields["EventKey"] = ("qrscene_" if event == "subscribe" else "") + str(scene)
            if ticket:
                fields["Ticket"] = ticket
        elif spec.get("key") is not None:
            fields["EventKey"] = str(spec["key"])
        if event in ("scancode_waitmsg", "scancode_push"):
            fields["ScanCodeInfo"] = {"ScanType": spec.get("scan_type", "qrcode"),
                                      "ScanResult": str(spec.get("scan_result", ""))}
        if event == "TEMPLATESENDJOBFINISH":
            fields["MsgID"] = int(spec.get("msg_id", 0))
            fields["Status"] = spec.get("status", "success")
        return fields
    else:
        raise ValueError(f"unknown message type {kind!r}")
    # Unique across emulator restarts too (the webhook remembers MsgIds for a day): microseconds, then a counter.
    fields["MsgId"] = int(spec.get("msg_id") or time.time_ns() // 1000 * 100 + state.next_id() % 100)
    return fields


def _post_once(state: State, url: str, openid: str, plain: str, mode: str, crypto: WeChatCrypto | None) -> dict:
    cfg = state.config
    ts, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
    params = {"signature": signature(cfg.token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid}
    body = plain
    if crypto is not None:
        encrypted = xmltodict.parse(crypto.encrypt_message(plain, nonce, ts))["xml"]
        params |= {"encrypt_type": "aes", "msg_signature": encrypted["MsgSignature"]}
        envelope = build_xml({"ToUserName": cfg.original_id, "Encrypt": encrypted["Encrypt"]})
        body = envelope if mode == "aes" else plain[: -len("</xml>")] + f"<Encrypt>{_cdata(encrypted['Encrypt'])}</Encrypt></xml>"
    try:
        r = requests.post(url, params=params, data=body.encode("utf-8"), timeout=5,  # WeChat waits 5 seconds
                          headers={"Content-Type": "text/xml"})
    except requests.Timeout:
        return {"status": None, "error": "timeout"}
    except requests.RequestException as e:
        return {"status": None, "error": type(e).__name__}
    out: dict[str, Any] = {"status": r.status_code, "encrypted": False, "reply": None, "reply_xml": None}
    text = r.text
    if r.status_code != 200 or text.strip() in ("", "success"):
        out["body"] = text[:2000]
        return out
    try:
        parsed = xmltodict.parse(text)["xml"]
        if "Encrypt" in parsed:
            if crypto is None:
                crypto = WeChatCrypto(cfg.token, cfg.aes_key, cfg.appid)
            out["encrypted"] = True
            text = crypto.decrypt_message(parsed, parsed.get("MsgSignature"), parsed.get("TimeStamp"),
                                          parsed.get("Nonce"))
            parsed = xmltodict.parse(text)["xml"]
    except InvalidSignatureException:
        out["error"] = "reply signature does not verify"
        return out
    except Exception as e:  # noqa: BLE001 - whatever our webhook sent, report it rather than crash
        out["error"] = f"unreadable reply: {type(e).__name__}"
        out["body"] = r.text[:2000]
        return out
    out["reply_xml"] = text
    out["reply"] = dict(parsed)
    return out


def serve(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8001, threads: int = 8) -> None:
    """Serve with waitress until interrupted; loopback only (it hands out tokens to anyone who asks)."""
    import waitress

    if host not in LOOPBACK:
        raise ValueError("the WeChat emulator serves on loopback only")
    waitress.serve(create_emulator(config), host=host, port=port, threads=threads, ident="wechat-emulator")
