"""The signed-in account and its own subject."""
from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import accounts, wechat_users
from handlers.errors import DomainError

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, AccountSchema, SubjectDetail, errors_doc, subject_detail

PREFIX = "/me"
blp = Blueprint("me", __name__, description="The signed-in account")


@blp.route("", methods=["GET"])
@blp.response(200, AccountSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401)
def me():
    """The signed-in account, its roles and its subject (works for accounts still under review)."""
    return accounts.describe(db.session(), auth.account(active=False))


@blp.route("/subject", methods=["GET"])
@blp.response(200, SubjectDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 409)
def my_subject():
    """My own subject: colour now and every record."""
    a = auth.account()
    if a.subject_id is None:
        raise DomainError("no_subject")
    return subject_detail(a.subject_id)


class BindingCodeSchema(Schema):
    code = fields.String(metadata={"description": "8 characters; send 绑定 <code> to the official account"})
    expires_at = fields.DateTime()
    expires_in = fields.Integer(metadata={"description": "seconds"})
    message = fields.String(metadata={"description": "what to do with it, in Chinese"})


@blp.route("/wechat-binding-code", methods=["POST"])
@write_limit()
@blp.response(201, BindingCodeSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403)
def wechat_binding_code():
    """A one-time code that binds the WeChat user who sends it to the official account (绑定 <code>) to me.

    Valid 10 minutes, single use; asking again withdraws the previous code. Only its keyed hash is stored.
    The binding replaces my earlier official-account binding, if any."""
    code, row = wechat_users.create_binding_code(db.session(), current_app.extensions["xinma.keys"], auth.account())
    seconds = int(wechat_users.BINDING_TTL.total_seconds())
    return {"code": code, "expires_at": row.expires_at, "expires_in": seconds,
            "message": f"请在{seconds // 60}分钟内，在信码微信公众号中发送“绑定 {code}”。"}
