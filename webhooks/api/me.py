"""The signed-in account and its own subject."""
from __future__ import annotations

from flask_smorest import Blueprint

from handlers import accounts
from handlers.errors import DomainError

from .. import auth, db
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
