"""The command table: Chinese keywords with English aliases, menu CLICK keys, and the events we answer."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from handlers import codes, declarations, incentives, redemptions, render, signing, subjects, timeutil, wechat_users
from handlers.models import Account, CreditRecord, Notice, RecordKind, Role, Subject, WeChatIdentity
from handlers.privacy import Keys
from handlers.signing import KeyRing
from handlers.wechat import WeChat, WeChatError

from .replies import Card, Image, NoReply, Reply, Text

log = logging.getLogger(__name__)

COLOUR_WORDS = render.COLOUR_WORDS
PERIOD_WORDS = {"day": "今日", "week": "本周", "month": "本月", "year": "今年", "ever": "累计"}
LIST_MAX = 8  # items per list: a chat bubble, not a report

BIND_EXAMPLE = "绑定 AB23CD45"
BIND_HOW = (f"• 已有信码账号：在信码小程序或网页的“我的—绑定微信”中获取绑定码，然后在这里发送“{BIND_EXAMPLE}”"
            "（换成您的绑定码，10分钟内有效）。\n"
            "• 还没有账号：打开“信码”小程序，用微信登录并完成实名绑定。")
BIND_HINT = "您还没有绑定信码账号。\n" + BIND_HOW + "\n绑定后即可在这里查看信用码和权益。"
CLERK_HINT = "核销员请让机构管理员生成“核销员邀请”二维码，用微信扫码绑定后再使用扫码核销。"
NOT_CLERK = "您还不是核销员。" + CLERK_HINT
NOT_BOUND_CLERK = "您还没有绑定信码账号，也不是核销员。\n" + CLERK_HINT + "\n市民查看自己的信用码：\n" + BIND_HOW
TOO_MANY_TRIES = "绑定码尝试次数过多，请稍后再试。"
PENDING = "您的账号正在审核中或已停用，暂时不能使用此功能。"


@dataclass
class Context:
    """One inbound message: who sent it (the official account's openid) and what the bot may use."""
    session: Session
    keys: Keys
    keyring: KeyRing
    appid: str
    openid: str
    idempotency_key: str  # stable across WeChat's retries of this message
    wechat: WeChat | None = None  # the official account, for media upload
    code_url: str | None = None  # the page showing my code: the link card when an image cannot be sent
    code_window: int = signing.WINDOW
    # May this sender try a binding code now? (The edge counts tries per openid; None: no limit.)
    binding_allowed: Callable[[], bool] | None = None
    now: datetime = field(default_factory=timeutil.now)

    @cached_property
    def identity(self) -> WeChatIdentity | None:
        return wechat_users.identity(self.session, self.appid, self.openid)

    @property
    def account(self) -> Account | None:
        return self.identity.account if self.identity is not None else None


@dataclass(frozen=True)
class Command:
    name: str  # English alias, and the menu CLICK key
    keywords: tuple[str, ...]
    run: Callable[[Context, str], Reply]
    summary: str


# --- helpers --------------------------------------------------------------------------------------

def _holder(ctx: Context) -> Subject | Text:
    """The subject whose code and measures the sender sees, or the reply that says why there is none."""
    account = ctx.account
    mine = declarations.subject_ids_of(account) if account is not None else []
    if not mine:
        return Text(BIND_HINT)
    if not account.active:
        return Text(PENDING)
    return subjects.get(ctx.session, mine[0])


def _clerk(ctx: Context) -> WeChatIdentity | Text:
    ident = ctx.identity
    if ident is None:
        return Text(NOT_BOUND_CLERK)
    if not any(g.role in (Role.clerk, Role.org_admin) and g.organisation_id is not None
                                for g in ident.account.grants):
        return Text(NOT_CLERK)
    if not ident.account.active:
        return Text(PENDING)
    return ident


def _local(at: datetime) -> str:
    return f"{at.astimezone(timeutil.LOCAL):%m-%d %H:%M}"


def _remaining(remaining: dict) -> str:
    parts = []
    if remaining.get("quota") is not None:
        parts.append(f"{PERIOD_WORDS.get(remaining.get('period'), '')}还可使用{remaining['quota']}次")
    if remaining.get("stock") is not None:
        parts.append(f"名额剩余{remaining['stock']}")
    return "；".join(parts) or "不限次数"


def _more(total: int) -> str:
    return f"\n……共{total}项，完整列表请在小程序中查看。" if total > LIST_MAX else ""


# --- commands -------------------------------------------------------------------------------------

def show_help(ctx: Context, args: str = "") -> Reply:
    lines = [f"{c.keywords[0]}（{c.name}）— {c.summary}" for c in COMMANDS]
    return Text("您可以发送以下指令：\n" + "\n".join(lines))


def my_code(ctx: Context, args: str = "") -> Reply:
    subject = _holder(ctx)
    if isinstance(subject, Text):
        return subject
    token = signing.issue_codes(ctx.session, ctx.keyring, subject, window=ctx.code_window, at=ctx.now)[0].token
    colour = codes.parse(token)[0].colour
    caption = f"{subject.name_masked} · {ctx.now.astimezone(timeutil.LOCAL):%Y-%m-%d %H:%M:%S}"
    png = render.png(token, colour=colour, caption=caption)
    if ctx.wechat is not None:
        try:
            return Image(ctx.wechat.upload_media(png, filename="code.png"))
        except WeChatError as e:
            log.warning("code image upload failed (errcode %s); answering with the link card", e.errcode)
    if ctx.code_url:
        return Card("我的信用码", f"{COLOUR_WORDS[colour]}。点击打开小程序查看实时信用码（每{ctx.code_window}秒刷新）。",
                    ctx.code_url)
    return Text(f"您当前是{COLOUR_WORDS[colour]}。图片暂时发送失败，请打开“信码”小程序出示信用码。")


def my_incentives(ctx: Context, args: str = "") -> Reply:
    subject = _holder(ctx)
    if isinstance(subject, Text):
        return subject
    mine = incentives.for_subject(ctx.session, ctx.account, subject.id, at=ctx.now)
    usable = mine.usable
    lines = [f"{subject.name_masked}（{COLOUR_WORDS[mine.colour.value]}）现在可以使用的激励措施："]
    if usable:
        lines += [f"{n}. {e.incentive.title} — {e.incentive.organisation.name}（{_remaining(e.remaining)}）"
                  for n, e in enumerate(usable[:LIST_MAX], 1)]
        lines[-1] += _more(len(usable))
    else:
        lines.append("暂无可用的激励措施。")
    recent = sorted((r for e in mine.entries for r in e.recent), key=lambda r: r.created_at, reverse=True)
    if recent:
        titles = {e.incentive.id: e.incentive.title for e in mine.entries}
        lines.append("最近使用：")
        lines += [f"{_local(r.created_at)} {titles[r.incentive_id]}（{'已撤销' if r.voided_at else '已核销'}）"
                  for r in recent[:5]]
    return Text("\n".join(lines))


def my_honours(ctx: Context, args: str = "") -> Reply:
    subject = _holder(ctx)
    if isinstance(subject, Text):
        return subject
    today = timeutil.local_date(ctx.now)
    rows = ctx.session.scalars(
        select(CreditRecord).where(CreditRecord.subject_id == subject.id, CreditRecord.kind == RecordKind.honour,
                                   or_(CreditRecord.published_until.is_(None), CreditRecord.published_until >= today))
        .order_by(CreditRecord.effective_on.desc(), CreditRecord.id.desc())).all()
    if not rows:
        return Text("您目前没有在有效期内的荣誉记录。获得荣誉后可在小程序中申报。")
    lines = ["您的荣誉："] + [f"• {r.category.name}（{r.effective_on:%Y-%m-%d}起）" for r in rows[:LIST_MAX]]
    return Text("\n".join(lines) + _more(len(rows)))


def my_notices(ctx: Context, args: str = "") -> Reply:
    subject = _holder(ctx)
    if isinstance(subject, Text):
        return subject
    rows = ctx.session.scalars(select(Notice).where(Notice.subject_id == subject.id)
                               .order_by(Notice.created_at.desc(), Notice.id.desc()).limit(5)).all()
    if not rows:
        return Text("暂无消息。")
    return Text("最近的消息：\n" + "\n".join(f"{_local(n.created_at)} {n.title}" for n in rows))


def choose_measure(ctx: Context, args: str = "") -> Reply:
    ident = _clerk(ctx)
    if isinstance(ident, Text):
        return ident
    args = args.strip()
    if args:
        if not args.isdigit():
            return Text("请发送“核销 编号”，例如：核销 12")
        chosen = wechat_users.choose_measure(ctx.session, ident, int(args))
        return Text(f"已选择【{chosen.id}】{chosen.title}。现在可以点菜单“扫码核销”扫描对方的信用码。")
    measures = wechat_users.clerk_measures(ctx.session, ident.account)
    if not measures:
        return Text("您所在的机构目前没有可以核销的激励措施。")
    current = wechat_users.current_measure(ctx.session, ident)
    lines = [f"【{i.id}】{i.title}{'（当前）' if current and i.id == current.id else ''}" for i in measures]
    return Text("可核销的措施：\n" + "\n".join(lines) + "\n发送“核销 编号”选择要核销的措施。")


def bind_account(ctx: Context, args: str = "") -> Reply:
    """绑定 <code>: bind this openid to the account that asked for the code."""
    code = args.strip()
    if not code:
        if ctx.account is not None:
            return Text("此微信已绑定信码账号。发送“信用码”出示信用码。")
        return Text(BIND_HINT)
    if ctx.binding_allowed is not None and not ctx.binding_allowed():
        return Text(TOO_MANY_TRIES)
    account = wechat_users.bind_with_code(ctx.session, ctx.keys, ctx.appid, ctx.openid, code, at=ctx.now)
    ctx.__dict__.pop("identity", None)  # bound just now
    who = f"（{account.subject.name_masked}）" if account.subject is not None else ""
    return Text(f"绑定成功！此微信已绑定您的信码账号{who}。\n"
                "发送“信用码”出示信用码，发送“我的权益”查看可用的激励措施，发送“帮助”查看全部指令。")


COMMANDS: tuple[Command, ...] = (
    Command("code", ("信用码",), my_code, "查看我的信用码"),
    Command("incentives", ("我的权益", "权益"), my_incentives, "现在可用的激励措施和最近使用"),
    Command("honours", ("荣誉",), my_honours, "我的荣誉记录"),
    Command("notices", ("消息",), my_notices, "我的消息"),
    Command("redeem", ("核销",), choose_measure, "核销员选择要核销的措施，如“核销 12”"),
    Command("bind", ("绑定",), bind_account, f"用绑定码绑定已有的信码账号，如“{BIND_EXAMPLE}”"),
    Command("help", ("帮助",), show_help, "显示本帮助"),
)
_BY_WORD: dict[str, Command] = {w.lower(): c for c in COMMANDS for w in (c.name, *c.keywords)}
_LONGEST_FIRST = sorted(_BY_WORD, key=len, reverse=True)


def parse(text: str) -> tuple[Command | None, str]:
    """A command and its argument: "核销 12", "核销12", "绑定AB23CD45", "code please"; (None, "") for anything else.

    Chinese keywords may run straight into their argument; an English word must end at a space."""
    text = (text or "").replace("\u3000", " ").strip()
    low = text.lower()
    for word in _LONGEST_FIRST:
        if low.startswith(word):
            rest = text[len(word):]
            if word.isascii() and rest and not rest[0].isspace():
                continue  # "codes" is not "code s"
            return _BY_WORD[word], rest.strip()
    return None, ""


def _text(ctx: Context, content: str) -> Reply:
    command, args = parse(content)
    if command is None:
        return Text("没有听懂。发送“帮助”查看可用指令；常用：信用码、我的权益。")
    return command.run(ctx, args)


# --- events ---------------------------------------------------------------------------------------

def _welcome(ctx: Context, message) -> Reply:
    if ctx.account is not None and declarations.subject_ids_of(ctx.account):
        return Text("欢迎回来！发送“信用码”出示信用码，发送“帮助”查看全部指令。")
    return Text("欢迎关注信码！\n" + BIND_HINT + "\n发送“帮助”查看全部指令。")


def _scene(ctx: Context, message) -> Reply:
    """Subscribing (or scanning, when already following) through a parametric QR code."""
    scene = message.scene_id or ""
    if wechat_users.is_invite_scene(scene):
        _, org = wechat_users.accept_clerk_invite(ctx.session, ctx.appid, ctx.openid, scene, at=ctx.now)
        ctx.__dict__.pop("identity", None)  # bound just now
        return Text(f"您已绑定为“{org.name}”的核销员。\n发送“核销”查看可核销的措施，"
                    "然后点菜单“扫码核销”扫描对方的信用码。")
    return _welcome(ctx, message) if message.event == "subscribe_scan" else NoReply()


def _click(ctx: Context, message) -> Reply:
    command = _BY_WORD.get((message.key or "").lower())
    return command.run(ctx, "") if command is not None else show_help(ctx)


def _verdict_text(v: redemptions.Verdict) -> str:
    head = "✅ 核销成功" if v.status == "redeemed" else "❌ 未通过"
    lines = [head, f"措施：{v.incentive['title']}"]
    if v.subject:
        lines.append(f"对象：{v.subject['name']}（{COLOUR_WORDS.get(v.subject['colour'], v.subject['colour'])}）")
    if v.status != "redeemed":
        lines.append(f"原因：{v.message}")
    if v.subject:
        lines.append(f"剩余：{_remaining(v.remaining)}")
    return "\n".join(lines)


def _scancode(ctx: Context, message) -> Reply:
    """A clerk scanned a citizen's code with the menu's scan button: redeem the clerk's current measure."""
    ident = _clerk(ctx)
    if isinstance(ident, Text):
        return ident
    measure = wechat_users.current_measure(ctx.session, ident)
    if measure is None:
        return choose_measure(ctx) if wechat_users.clerk_measures(ctx.session, ident.account) else Text(
            "您所在的机构目前没有可以核销的激励措施。")
    token = (message.scan_result or "").strip()
    if token.upper().startswith("QR_CODE,"):  # some clients prefix the symbology
        token = token[len("QR_CODE,"):]
    verdict = redemptions.redeem(ctx.session, ctx.keyring, ident.account, token, measure.id,
                                 idempotency_key=ctx.idempotency_key, at=ctx.now)
    return Text(_verdict_text(verdict))


def _silent(ctx: Context, message) -> Reply:
    return NoReply()


EVENTS: dict[str, Callable[[Context, object], Reply]] = {
    "subscribe": _welcome,
    "subscribe_scan": _scene,
    "scan": _scene,
    "click": _click,
    "scancode_waitmsg": _scancode,
    "scancode_push": _scancode,
    "view": _silent,
    "unsubscribe": _silent,
    "templatesendjobfinish": _silent,
    "location": _silent,
}


def handle(ctx: Context, message) -> Reply:
    """The reply to one parsed wechatpy message or event. DomainError passes through to the edge."""
    if message.type == "text":
        return _text(ctx, message.content)
    if message.type == "event":
        return EVENTS.get(message.event, _silent)(ctx, message)
    if "Event" in getattr(message, "_data", {}):  # an event wechatpy does not know: nothing to say
        return NoReply()
    return Text("暂时只能识别文字指令。发送“帮助”查看可用指令。")
