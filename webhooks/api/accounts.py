"""Registration (注册): a pending account, bound to its subject by identifier and name."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import accounts

from .. import db
from ..limits import login_limit, write_limit
from .common import AccountSchema, errors_doc, keys

PREFIX = "/accounts"
blp = Blueprint("accounts", __name__, description="Registration of natural and legal persons")


class RegisterSchema(Schema):
    login = fields.String(required=True, metadata={"description": "3-64 of A-Z a-z 0-9 _ . -"})
    password = fields.String(required=True, metadata={"description": "at least 8 characters"})
    identifier = fields.String(required=True, metadata={
        "description": "resident ID number (a citizen) or unified social credit code (an enterprise agent); "
                       "kept only as a keyed hash"})
    name = fields.String(required=True, metadata={
        "description": "the person's or enterprise's name; must match a subject already on file"})


@blp.route("", methods=["POST"])
@login_limit()
@write_limit()
@blp.arguments(RegisterSchema)
@blp.response(201, AccountSchema)
@errors_doc(blp, 409, 422, 429)
def register(body):
    """Register; the account can sign in at once but acts only after a platform admin approves it."""
    s = db.session()
    return accounts.describe(s, accounts.register(s, keys(), **body))
