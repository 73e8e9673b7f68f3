"""Sign in and out: password login, and in demo mode a login by demo account name."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validates_schema
from sqlalchemy import select

from handlers import accounts, demo, subjects, wechat_users
from handlers.errors import DomainError
from handlers.models import Account
from handlers.wechat import WeChatError

from .. import auth, db, errors
from .. import wechat as wechat_edge
from ..limits import login_limit, write_limit
from .common import BEARER, AccountSchema, errors_doc

PREFIX = "/session"
blp = Blueprint("session", __name__, description="Sign in and out")


class LoginSchema(Schema):
    """Either ``login`` and ``password``, or ``code`` (the mini-program's wx.login())."""

    login = fields.String(validate=lambda s: 0 < len(s) <= 64)
    password = fields.String(validate=lambda s: 0 < len(s) <= 256)
    code = fields.String(validate=lambda s: 0 < len(s) <= 128,
                         metadata={"description": "mini-program login: the code wx.login() gave the phone"})

    @validates_schema
    def _one_shape(self, data, **kwargs):
        if "code" in data:
            if "login" in data or "password" in data:
                raise ValidationError("give either code, or login and password", "code")
        else:
            missing = {name: ["Missing data for required field."] for name in ("login", "password")
                       if name not in data}
            if missing:
                raise ValidationError(missing)


_STRING = {"type": "string", "minLength": 1}
LOGIN_BODY = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    {"title": "PasswordLogin", "type": "object", "required": ["login", "password"], "additionalProperties": False,
     "properties": {"login": _STRING | {"maxLength": 64}, "password": _STRING | {"maxLength": 256}}},
    {"title": "MiniProgramLogin", "type": "object", "required": ["code"], "additionalProperties": False,
     "properties": {"code": _STRING | {"maxLength": 128, "description": "what wx.login() gave the phone; "
                                       "WeChat accepts each code once, for five minutes"}}},
]}}}}
WECHAT_UNAVAILABLE = ("wechat_unavailable", "微信服务暂时不可用，请稍后再试")


class SessionSchema(Schema):
    token = fields.String(metadata={"description": "send as Authorization: Bearer <token>"})
    expires_at = fields.DateTime()
    account = fields.Nested(AccountSchema)


class DemoLoginSchema(Schema):
    account = fields.String(required=True, metadata={"description": "a demo account's login"})


class DemoAccountSchema(Schema):
    account = fields.String()
    roles = fields.List(fields.String())
    subject_kind = fields.String(allow_none=True)
    colour = fields.String(allow_none=True)
    description = fields.String(allow_none=True)


def _open(account: Account) -> dict:
    s = db.session()
    token, expires = accounts.open_session(
        s, account, lifetime=timedelta(days=current_app.config["SESSION_DAYS"]))
    return {"token": token, "expires_at": expires, "account": accounts.describe(s, account)}


@blp.route("", methods=["POST"])
@login_limit()
@write_limit()
@blp.arguments(LoginSchema)
@blp.doc(requestBody=LOGIN_BODY)
@blp.response(201, SessionSchema)
@errors_doc(blp, 401, 422, 429, 503)
def login(body):
    """Sign in with login and password, or in the mini-program with the code of ``wx.login()``.

    A code is exchanged with WeChat for the user's openid; the first login creates a pending account
    with no subject (``account.subject`` null) until the person binds their identity. WeChat's
    session_key never leaves the server. A bad, expired or reused code is 401 ``wechat_login_failed``
    with WeChat's ``errcode`` in ``detail``; WeChat unreachable is 503 ``wechat_unavailable``.
    """
    if "code" in body:
        try:
            account = wechat_users.login(db.session(), wechat_edge.mini_program(), body["code"])
        except DomainError:
            raise
        except WeChatError:  # unreachable, timed out, or not configured here
            return errors.error_response(503, *WECHAT_UNAVAILABLE)
        return _open(account)
    return _open(accounts.authenticate(db.session(), body["login"], body["password"]))


@blp.route("", methods=["DELETE"])
@write_limit()
@blp.response(204)
@blp.doc(security=BEARER)
def logout():
    """Sign out: the token stops working."""
    token = auth.bearer_token()
    if token:
        accounts.close_session(db.session(), token)


def _require_demo():
    if not current_app.config.get("DEMO"):
        raise DomainError("demo_account_not_found", "演示登录仅在演示模式下可用")


@blp.route("/demo", methods=["GET"])
@blp.response(200, DemoAccountSchema(many=True))
@errors_doc(blp, 404)
def demo_accounts():
    """List the demo accounts (demo mode only)."""
    _require_demo()
    s = db.session()
    out = []
    for a in s.scalars(select(Account).where(Account.is_demo.is_(True)).order_by(Account.id)):
        subject = a.subject
        if subject is None:
            agent = next((g for g in a.grants if g.subject_id), None)
            subject = subjects.get(s, agent.subject_id) if agent else None
        out.append({
            "account": a.login,
            "roles": [g.role.value for g in a.grants],
            "subject_kind": subject.kind.value if subject else None,
            "colour": subjects.summary(s, subject)["colour"] if subject else None,
            "description": demo.description(a.login),
        })
    return out


@blp.route("/demo", methods=["POST"])
@login_limit()
@write_limit()
@blp.arguments(DemoLoginSchema)
@blp.response(201, SessionSchema)
@errors_doc(blp, 404, 422)
def demo_login(body):
    """Sign in as a demo account (demo mode only)."""
    _require_demo()
    account = db.session().scalar(select(Account).where(Account.login == body["account"],
                                                        Account.is_demo.is_(True)))
    if account is None:
        raise DomainError("demo_account_not_found")
    return _open(account)
