"""The outbox for platform admins: messages by state (dead letters first of all), their attempts, retry, numbers."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from handlers import outbox, paging
from handlers.models import Channel, OutboxAttempt, OutboxMessage, OutboxState

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, PageArgs, errors_doc, page_schema, page_view

PREFIX = "/admin/outbox"
blp = Blueprint("admin_outbox", __name__, description="The outbox: dead letters, attempts, retry (platform admins)")


class AttemptSchema(Schema):
    number = fields.Integer()
    channel = fields.String()
    outcome = fields.String(metadata={"enum": ["sent", "retry", "next_channel", "dead"]})
    errcode = fields.Integer(allow_none=True, metadata={
        "description": "WeChat's errcode, SMTP's reply code or the SMS gateway's HTTP status"})
    reply = fields.String(allow_none=True, metadata={"description": "the channel's answer (no address in it)"})
    worker = fields.String(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime()


class MessageSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    notice_id = fields.Integer(allow_none=True)
    account_id = fields.Integer(allow_none=True)
    title = fields.String()
    channels = fields.List(fields.String(), metadata={"description": "the order tried"})
    channel = fields.String(metadata={"description": "the current (or last) channel"})
    address = fields.String(allow_none=True, metadata={"description": "masked, for direct e-mail/SMS"})
    state = fields.String(metadata={"enum": [s.value for s in OutboxState]})
    attempts = fields.Integer(metadata={"description": "in the current round"})
    next_attempt_at = fields.DateTime()
    last_error = fields.String(allow_none=True)
    external_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    dead_at = fields.DateTime(allow_none=True)


class MessageDetail(MessageSchema):
    attempt_log = fields.List(fields.Nested(AttemptSchema))


MessagePage = page_schema("OutboxMessagePage", MessageSchema)


class MessageListArgs(PageArgs):
    state = fields.String(validate=validate.OneOf([s.value for s in OutboxState]))
    channel = fields.String(validate=validate.OneOf([c.value for c in Channel]))
    kind = fields.String(validate=validate.Length(1, 32))


class StatsSchema(Schema):
    states = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_channel = fields.Dict(keys=fields.String(), values=fields.Integer())
    due = fields.Integer()
    oldest_pending_seconds = fields.Float(allow_none=True)
    notices_waiting_fanout = fields.Integer()


def message_view(m: OutboxMessage) -> dict:
    return {"id": m.id, "kind": m.kind, "notice_id": m.notice_id, "account_id": m.account_id,
            "title": (m.payload or {}).get("title", ""), "channels": list(m.channels), "channel": m.channel.value,
            "address": m.address_masked, "state": m.state.value, "attempts": m.attempts,
            "next_attempt_at": m.next_attempt_at, "last_error": m.last_error, "external_id": m.external_id,
            "created_at": m.created_at, "sent_at": m.sent_at, "dead_at": m.dead_at}


def attempt_view(a: OutboxAttempt) -> dict:
    return {"number": a.number, "channel": a.channel.value, "outcome": a.outcome, "errcode": a.errcode,
            "reply": a.reply, "worker": a.worker, "started_at": a.started_at, "finished_at": a.finished_at}


def _detail(m: OutboxMessage) -> dict:
    return {**message_view(m), "attempt_log": [attempt_view(a) for a in outbox.attempts_of(db.session(), m.id)]}


@blp.route("", methods=["GET"])
@blp.arguments(MessageListArgs, location="query")
@blp.response(200, MessagePage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def list_messages(args):
    """Outbox messages, newest first; ?state=dead for the dead letters."""
    auth.require_platform_admin()
    q = outbox.messages_query(state=args.get("state"), channel=args.get("channel"), kind=args.get("kind"))
    return page_view(paging.page(db.session(), q, limit=args["limit"], offset=args["offset"]), message_view)


@blp.route("/stats", methods=["GET"])
@blp.response(200, StatsSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403)
def outbox_stats():
    """Counts by state and channel, what is due now, the oldest pending message's age."""
    auth.require_platform_admin()
    return outbox.stats(db.session())


@blp.route("/<int:message_id>", methods=["GET"])
@blp.response(200, MessageDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def get_message(message_id: int):
    """One message with every attempt: when, which channel, what the channel answered."""
    auth.require_platform_admin()
    return _detail(outbox.get_message(db.session(), message_id))


@blp.route("/<int:message_id>/retry", methods=["POST"])
@write_limit()
@blp.response(200, MessageDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def retry(message_id: int):
    """Give a dead message a new round, from its first channel (409 outbox_not_retryable otherwise)."""
    auth.require_platform_admin()
    return _detail(outbox.retry(db.session(), message_id))
