"""The demo's WeChat chat page (/demo/chat): type as a WeChat user, see the bot's replies and what was pushed.

Demo mode only (404 otherwise). The page never calls the bot itself: it asks the WeChat emulator to play
WeChat's side (`/_emulator/deliver`: signed, optionally AES-encrypted XML posted to our own
/webhooks/wechat), the code path production takes, and reads back the emulator's inbox (passive replies,
custom, template and subscription sends) and its media store (the code image the bot uploaded). Whatever
else the page needs (a clerk invite, a citizen's code, a binding code) it asks of the public API as a demo
login, from the browser, as the mini-program would.
"""
from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
import xmltodict
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import wechat_users
from handlers.models import Account

from .errors import error_response
from .wechat_emulator import is_loopback_url

TEMPLATES = Path(__file__).resolve().parent / "templates"
blp = Blueprint("demo_chat", __name__, url_prefix="/demo/chat", template_folder="templates")


class ChatError(Exception):
    """Refused by the page's own endpoints: answered in the API's error shape."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


@blp.errorhandler(ChatError)
def _chat_error(e: ChatError):
    return error_response(e.status, e.code, e.message)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TEXT = 600  # characters a person may type in one message (WeChat allows about as many)
# What the page may ask the emulator to send: the messages and menu events a WeChat user can produce.
EVENTS = {"subscribe", "unsubscribe", "SCAN", "CLICK", "scancode_waitmsg"}
EVENT_FIELDS = ("key", "ticket", "scan_result")
EMULATOR_DOWN = "演示聊天需要本地微信模拟器：用 `xinma serve --demo` 启动（会自动启动模拟器），" \
                "或把 XINMA_WECHAT_API_BASE 指向正在运行的 `xinma wechat-emulator`。"


@dataclass(frozen=True)
class DemoPerson:
    openid: str
    label: str
    login: str | None  # the demo account the openid is bound to; None: a newcomer, bound to nobody
    description: str


# Fixed openids (28 characters, like WeChat's), bound to demo logins when the demo is seeded.
DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("oXmDemoCitizenGreen000000001", "陈志明 · 绿码市民", "citizen-green",
               "星级志愿者；试试“信用码”“我的权益”“荣誉”"),
    DemoPerson("oXmDemoCitizenRed00000000001", "黄国强 · 红码市民", "citizen-red",
               "失信被执行人；他的码被核销员扫到会怎样？"),
    DemoPerson("oXmDemoClerkWestlake00000001", "西湖观光车核销员", "clerk-westlake",
               "点菜单“扫码核销”，粘贴市民的码串"),
)
# A newcomer gets a fresh random openid in the browser each time: bound to nobody, whatever earlier visitors did.
NEWCOMER = "先“关注”；再用绑定码绑定已有账号（右侧 3），或扫描核销员邀请二维码（右侧 1）"


def seed_people(session: Session, appid: str | None) -> int:
    """Bind the demo people's openids to their demo logins (idempotent; flushes, never commits)."""
    if not appid:
        return 0
    bound = 0
    for person in DEMO_PEOPLE:
        if person.login is None or wechat_users.identity(session, appid, person.openid) is not None:
            continue
        account = session.scalar(select(Account).where(Account.login == person.login))
        if account is not None:
            wechat_users.bind(session, account, appid, person.openid)
            bound += 1
    return bound


# --- talking to the emulator ----------------------------------------------------------------------------

_http_lock = threading.Lock()


def _http() -> requests.Session:
    ext = current_app.extensions
    if "xinma.demo_chat.http" not in ext:
        with _http_lock:
            ext.setdefault("xinma.demo_chat.http", requests.Session())
    return ext["xinma.demo_chat.http"]


def _emulator() -> str:
    base = current_app.config.get("WECHAT_API_BASE") or ""
    if not is_loopback_url(base):
        raise ChatError(503, "wechat_unavailable", EMULATOR_DOWN)
    return base.rstrip("/")


def _webhook() -> str:
    """Our own webhook as the emulator reaches it: set by `xinma serve`, else this server's port on loopback."""
    return current_app.extensions.get("xinma.demo_chat.webhook") or \
        f"http://127.0.0.1:{request.environ.get('SERVER_PORT', '80')}/webhooks/wechat"


def _call(method: str, path: str, **kwargs) -> requests.Response:
    try:
        return _http().request(method, _emulator() + path, timeout=kwargs.pop("timeout", 10), **kwargs)
    except requests.RequestException:
        raise ChatError(503, "wechat_unavailable", EMULATOR_DOWN)


def _openid(value: Any) -> str:
    if not isinstance(value, str) or not OPENID.fullmatch(value):
        raise ChatError(422, "validation_failed", "openid 应为1到64个字母、数字、下划线或连字符")
    return value


def _message(spec: Any) -> dict:
    """Only what a WeChat user can send: text, or one of the menu and QR events, with their few fields."""
    if not isinstance(spec, dict):
        raise ChatError(422, "validation_failed", "消息格式不正确")
    if spec.get("type") == "text":
        content = spec.get("content")
        if not isinstance(content, str) or not content.strip() or len(content) > MAX_TEXT:
            raise ChatError(422, "validation_failed", f"请输入1到{MAX_TEXT}个字")
        return {"type": "text", "content": content}
    if spec.get("type") == "event" and spec.get("event") in EVENTS:
        out = {"type": "event", "event": spec["event"]}
        for name in EVENT_FIELDS:
            value = spec.get(name)
            if value is not None:
                if not isinstance(value, str) or len(value) > 2048:
                    raise ChatError(422, "validation_failed", "消息格式不正确")
                out[name] = value
        return out
    raise ChatError(422, "validation_failed", "只能发送文字，或菜单、关注、扫码事件")


# --- the inbox as the page shows it ---------------------------------------------------------------------

EVENT_WORDS = {"subscribe": "关注了公众号", "unsubscribe": "取消了关注", "SCAN": "扫描了二维码",
               "scancode_waitmsg": "扫码"}
MENU_WORDS = {"code": "我的信用码", "incentives": "我的权益", "scan": "扫码核销"}


def _items(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _values(data: Any) -> list[tuple[str, str]]:
    if not isinstance(data, dict):
        return []
    return [(k, str(v.get("value", "")) if isinstance(v, dict) else str(v)) for k, v in data.items()]


def _user_entry(xml: str) -> dict:
    try:
        m = xmltodict.parse(xml)["xml"]  # the emulator's own XML, built from what the page sent
    except Exception:  # noqa: BLE001 - an `xml` delivered by hand through the emulator's API
        return {"side": "me", "type": "text", "text": "（无法显示的消息）"}
    if m.get("MsgType") == "text":
        return {"side": "me", "type": "text", "text": m.get("Content") or ""}
    event = m.get("Event") or ""
    if event == "CLICK":
        return {"side": "system", "text": f"点击了菜单“{MENU_WORDS.get(m.get('EventKey'), m.get('EventKey'))}”"}
    if event == "scancode_waitmsg":
        scanned = (m.get("ScanCodeInfo") or {}).get("ScanResult") or ""
        short = scanned if len(scanned) <= 24 else scanned[:24] + "…"
        return {"side": "system", "text": f"点击“扫码核销”，扫到：{short}"}
    if event in ("subscribe", "SCAN") and m.get("EventKey"):
        return {"side": "system", "text": ("扫码关注了公众号" if event == "subscribe" else "扫描了带参数二维码")}
    return {"side": "system", "text": EVENT_WORDS.get(event, f"事件 {event}")}


def _reply_entry(r: dict) -> dict | None:
    kind = r.get("MsgType")
    if kind == "text":
        return {"side": "bot", "type": "text", "text": r.get("Content") or ""}
    if kind == "image":
        return {"side": "bot", "type": "image", "media_id": (r.get("Image") or {}).get("MediaId")}
    if kind == "news":
        articles = _items((r.get("Articles") or {}).get("item"))
        return {"side": "bot", "type": "cards", "cards": [
            {"title": a.get("Title"), "description": a.get("Description"), "url": a.get("Url"),
             "image": a.get("PicUrl")} for a in articles]}
    return None


def _custom_entry(item: dict) -> dict:
    kind = item.get("msgtype")
    body = item.get(kind) or {}
    if kind == "text":
        return {"side": "bot", "type": "text", "text": body.get("content", ""), "pushed": "客服消息"}
    if kind == "image":
        return {"side": "bot", "type": "image", "media_id": body.get("media_id"), "pushed": "客服消息"}
    if kind == "news":
        return {"side": "bot", "type": "cards", "pushed": "客服消息", "cards": [
            {"title": a.get("title"), "description": a.get("description"), "url": a.get("url"),
             "image": a.get("picurl")} for a in _items(body.get("articles"))]}
    return {"side": "bot", "type": "text", "text": f"（{kind} 消息）", "pushed": "客服消息"}


def display(item: dict) -> dict | None:
    """One emulator inbox item as a chat entry: side (me | bot | system), type (text | image | cards | notice)."""
    kind = item.get("kind")
    entry: dict | None
    if kind == "user":
        entry = _user_entry(item.get("xml") or "")
    elif kind == "reply":
        entry = _reply_entry(item.get("reply") or {})
    elif kind == "custom":
        entry = _custom_entry(item)
    elif kind in ("template", "subscribe"):
        entry = {"side": "bot", "type": "notice", "pushed": "模板消息" if kind == "template" else "订阅消息",
                 "template_id": item.get("template_id"), "fields": _values(item.get("data")),
                 "url": item.get("url") or item.get("page")}
    else:
        entry = None
    if entry is not None:
        entry |= {"id": item.get("id"), "at": item.get("at")}
    return entry


# --- routes -----------------------------------------------------------------------------------------------

@blp.before_request
def _demo_only():
    if not current_app.config.get("DEMO"):
        abort(404)


@blp.after_request
def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@blp.get("")
def page():
    return render_template("demo_chat.html", people=[asdict(p) for p in DEMO_PEOPLE], newcomer=NEWCOMER,
                           emulator=bool(is_loopback_url(current_app.config.get("WECHAT_API_BASE") or "")),
                           emulator_down=EMULATOR_DOWN)


@blp.get("/chat.js")
def script():
    return Response((TEMPLATES / "demo_chat.js").read_text(encoding="utf-8"), mimetype="text/javascript")


@blp.get("/chat.css")
def style():
    return Response((TEMPLATES / "demo_chat.css").read_text(encoding="utf-8"), mimetype="text/css")


@blp.post("/send")
def send():
    """{openid, message: {type: text, content} | {type: event, event, key?, ticket?, scan_result?}, encrypt?}:
    the emulator posts it to our webhook as WeChat would; answers with the decrypted reply (or the error)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ChatError(400, "bad_request", "请求内容应为 JSON 对象")
    openid = _openid(body.get("openid"))
    message = _message(body.get("message"))
    r = _call("POST", "/_emulator/deliver", timeout=20, json={
        "openid": openid, "message": message, "webhook": _webhook(),
        "mode": "aes" if body.get("encrypt", True) else "plain"})
    if r.status_code != 200:
        raise ChatError(502, "wechat_unavailable", "微信模拟器拒绝了这条消息：" + r.text[:200])
    out = r.json()
    reply = out.get("reply")
    return jsonify(status=out.get("status"), encrypted=out.get("encrypted"), error=out.get("error"),
                   reply=_reply_entry(reply) if reply else None)


@blp.get("/inbox/<openid>")
def inbox(openid: str):
    """What this WeChat user has seen, from the emulator: messages sent, replies, and pushed messages."""
    _openid(openid)
    params = {"after": request.args.get("after", type=int)} if request.args.get("after") else None
    r = _call("GET", f"/_emulator/inbox/{openid}", params=params)
    if r.status_code != 200:
        raise ChatError(502, "wechat_unavailable", "微信模拟器没有返回收件箱")
    entries = [e for e in (display(i) for i in r.json()) if e is not None]
    last = max((i.get("id") or 0 for i in r.json()), default=request.args.get("after", 0, type=int))
    return jsonify(entries=entries, last=last)


@blp.delete("/inbox/<openid>")
def clear_inbox(openid: str):
    _call("DELETE", f"/_emulator/inbox/{_openid(openid)}")
    return jsonify(ok=True)


def _proxy_image(path: str, params: dict | None = None) -> Response:
    r = _call("GET", path, params=params)
    if r.status_code != 200 or not r.content.startswith(b"\x89PNG"):
        abort(404)
    return Response(r.content, mimetype="image/png")


@blp.get("/media/<media_id>")
def media(media_id: str):
    """An image the bot uploaded (the code), from the emulator's media store."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", media_id):
        abort(404)
    return _proxy_image(f"/_emulator/media/{media_id}")


@blp.get("/qrcode")
def qrcode():
    """WeChat's picture of a parametric QR code (showqrcode), e.g. a clerk invite."""
    ticket = request.args.get("ticket", "")
    if not ticket or len(ticket) > 200:
        abort(404)
    return _proxy_image("/cgi-bin/showqrcode", {"ticket": ticket})


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)
