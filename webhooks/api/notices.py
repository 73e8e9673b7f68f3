"""My notices (消息): what my subject and my enterprises were told, whatever the push channels did."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import outbox, paging
from handlers.models import Notice

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, PageArgs, errors_doc

PREFIX = "/me/notices"
blp = Blueprint("notices", __name__, description="My notices, newest first, with read state")


class NoticeSchema(Schema):
    id = fields.Integer()
    subject_id = fields.Integer(metadata={"description": "my own subject or an enterprise I am agent of"})
    kind = fields.String(metadata={"description": "redemption, redemption_voided, offer_*, legal_document …"})
    title = fields.String()
    body = fields.Dict()
    page = fields.String(allow_none=True, metadata={"description": "the page this notice links to"})
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True, metadata={"description": "shared by an enterprise's agents"})


class NoticeListArgs(PageArgs):
    unread = fields.Boolean(load_default=False, metadata={"description": "only notices not yet read"})


class NoticePage(Schema):
    items = fields.List(fields.Nested(NoticeSchema))
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()
    unread = fields.Integer(metadata={"description": "all my unread notices (not only this page's)"})


class MarkedSchema(Schema):
    marked = fields.Integer()


def notice_view(n: Notice) -> dict:
    return {"id": n.id, "subject_id": n.subject_id, "kind": n.kind, "title": n.title, "body": n.body,
            "page": n.page, "created_at": n.created_at, "read_at": n.read_at}


@blp.route("", methods=["GET"])
@blp.arguments(NoticeListArgs, location="query")
@blp.response(200, NoticePage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def my_notices(args):
    """My notices, newest first, and how many are unread."""
    a = auth.account()
    s = db.session()
    page = paging.page(s, outbox.notices_query(a, unread_only=args["unread"]), limit=args["limit"],
                       offset=args["offset"])
    return {"items": [notice_view(n) for n in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset, "unread": outbox.unread_count(s, a)}


@blp.route("/<int:notice_id>/read", methods=["POST"])
@write_limit()
@blp.response(200, NoticeSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def read(notice_id: int):
    """Mark one notice read (again: no change). Another subject's notice is not found."""
    return notice_view(outbox.mark_read(db.session(), auth.account(), notice_id))


@blp.route("/read", methods=["POST"])
@write_limit()
@blp.response(200, MarkedSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403)
def read_all():
    """Mark all my notices read."""
    return {"marked": outbox.mark_all_read(db.session(), auth.account())}
