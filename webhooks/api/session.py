"""Sign in and out: password login, and in demo mode a login by demo account name."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from handlers import accounts, demo, subjects
from handlers.errors import DomainError
from handlers.models import Account

from .. import auth, db
from ..limits import login_limit, write_limit
from .common import BEARER, AccountSchema, errors_doc

PREFIX = "/session"
blp = Blueprint("session", __name__, description="Sign in and out")


class LoginSchema(Schema):
    login = fields.String(required=True, validate=lambda s: 0 < len(s) <= 64)
    password = fields.String(required=True, validate=lambda s: 0 < len(s) <= 256)


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
@blp.response(201, SessionSchema)
@errors_doc(blp, 401, 422, 429)
def login(body):
    """Sign in with login and password."""
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
