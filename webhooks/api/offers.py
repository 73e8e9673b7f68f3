"""Offers over HTTP: an enterprise's agents list theirs and act with one click (confirm, decline, receipt); the
issuing department's admins release a held offer or cancel one."""
from __future__ import annotations

from collections.abc import Sequence

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from handlers import offers, timeutil
from handlers.models import Account, Disbursement, Offer, OfferState, Subject

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, PageArgs, errors_doc, page_schema

# Three roots (/offers, /me/offers, /admin/offers), so the blueprint sits at /api/v1 itself.
PREFIX = ""
blp = Blueprint("offers", __name__, description="Offers (免申即享): one click to confirm, one to confirm receipt")

_STATES = {"enum": [s.value for s in OfferState]}


class OfferPolicyRef(Schema):
    id = fields.Integer()
    title = fields.String()
    organisation = fields.String(metadata={"description": "the issuing department's name"})
    confirm_until = fields.Date(allow_none=True)
    notice_from = fields.Date()
    notice_until = fields.Date()


class OfferSubjectRef(Schema):
    id = fields.Integer()
    name = fields.String(metadata={"description": "masked"})
    identifier = fields.String(metadata={"description": "masked credit code"})


class OfferSchema(Schema):
    id = fields.Integer()
    policy = fields.Nested(OfferPolicyRef)
    subject = fields.Nested(OfferSubjectRef)
    state = fields.String(metadata=_STATES)
    amount_fen = fields.Integer(metadata={"description": "in fen (分)"})
    amount = fields.String(metadata={"description": "yuan, two decimals"})
    grade = fields.String(allow_none=True, metadata={"description": "the grade when matched"})
    reason = fields.String(allow_none=True, metadata={
        "description": "held: credit_red or grade_d; cancelled: cancelled"})
    reason_text = fields.String(allow_none=True)
    note = fields.String(allow_none=True, metadata={"description": "the words given when declining or cancelling"})
    held_from = fields.String(allow_none=True, metadata={"description": "held: where releasing it leads"})
    payment_reference = fields.String(allow_none=True)
    deadline_passed = fields.Boolean(metadata={"description": "confirm_until is over"})
    actions = fields.List(fields.String(), metadata={
        "description": "what the asking account may do now: confirm, decline, receipt (agents); release, cancel "
                       "(admins)"})
    repeated = fields.Boolean(metadata={"description": "in answers to an action: this only repeated an earlier "
                                                       "click (nothing changed, nobody told twice)"})
    matched_at = fields.DateTime()
    notified_at = fields.DateTime(allow_none=True)
    confirmed_at = fields.DateTime(allow_none=True)
    declined_at = fields.DateTime(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    disbursed_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    held_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()


OfferPage = page_schema("OfferPage", OfferSchema)


class MyOffersArgs(PageArgs):
    state = fields.String(metadata=_STATES)


class OfferDeclineSchema(Schema):
    note = fields.String(allow_none=True, load_default=None, metadata={
        "description": f"why, optional (at most {offers.NOTE_MAX} characters)"})


class OfferCancelSchema(Schema):
    note = fields.String(required=True, metadata={"description": "why; told to the enterprise"})


def _actions(o: Offer, actor: Account | None, expired: bool) -> list[str]:
    out = []
    if actor is not None and offers.is_agent(actor, o):
        if o.state == OfferState.notified and not expired:
            out.append("confirm")
        if o.state in (OfferState.notified, OfferState.confirmed):
            out.append("decline")
        if o.state == OfferState.disbursed:
            out.append("receipt")
    if offers.can_manage(actor, o.policy):
        if o.state == OfferState.held:
            out.append("release")
        if o.state in offers.CANCELLABLE:
            out.append("cancel")
    return out


def offer_views(items: Sequence[Offer], actor: Account | None) -> list[dict]:
    """Views of offers, with their enterprises and payment references read in one query each."""
    s = db.session()
    subject_ids = {o.subject_id for o in items}
    names = {r.id: r for r in s.execute(select(Subject.id, Subject.name_masked, Subject.id_masked)
                                        .where(Subject.id.in_(subject_ids)))} if subject_ids else {}
    batch_ids = {o.disbursement_id for o in items if o.disbursement_id}
    refs = dict(s.execute(select(Disbursement.id, Disbursement.payment_reference)
                          .where(Disbursement.id.in_(batch_ids))).all()) if batch_ids else {}
    today = timeutil.local_date(timeutil.now())
    out = []
    for o in items:
        p = o.policy
        expired = p.confirm_until is not None and today > p.confirm_until
        who = names.get(o.subject_id)
        out.append({
            "id": o.id,
            "policy": {"id": p.id, "title": p.title, "organisation": p.organisation.name,
                       "confirm_until": p.confirm_until, "notice_from": p.notice_from, "notice_until": p.notice_until},
            "subject": {"id": o.subject_id, "name": who.name_masked if who else None,
                        "identifier": who.id_masked if who else None},
            "state": o.state.value, "amount_fen": o.amount_fen, "amount": offers.yuan(o.amount_fen),
            "grade": o.grade, "reason": o.reason, "reason_text": offers.HOLD_REASONS.get(o.reason or ""),
            "note": o.note, "held_from": o.held_from.value if o.held_from else None,
            "payment_reference": refs.get(o.disbursement_id), "deadline_passed": expired,
            "actions": _actions(o, actor, expired),
            "matched_at": o.matched_at, "notified_at": o.notified_at, "confirmed_at": o.confirmed_at,
            "declined_at": o.declined_at, "approved_at": o.approved_at, "disbursed_at": o.disbursed_at,
            "received_at": o.received_at, "held_at": o.held_at, "updated_at": o.updated_at,
        })
    return out


def _outcome(out: offers.Outcome, actor: Account) -> dict:
    return {**offer_views([out.offer], actor)[0], "repeated": out.repeated}


@blp.route("/me/offers", methods=["GET"])
@blp.arguments(MyOffersArgs, location="query")
@blp.response(200, OfferPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def mine(args):
    """The offers of the enterprises I am an agent of, newest first."""
    actor = auth.account()
    page = offers.list_mine(db.session(), actor, **args)
    return {"items": offer_views(page.items, actor), "total": page.total, "limit": page.limit,
            "offset": page.offset}


@blp.route("/offers/<int:offer_id>", methods=["GET"])
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def show(offer_id):
    """One offer: for its enterprise's agents and the issuing department's admins (others: 403 not_your_offer)."""
    actor = auth.account()
    return offer_views([offers.get_for(db.session(), actor, offer_id)], actor)[0]


@blp.route("/offers/<int:offer_id>/confirm", methods=["POST"])
@write_limit()
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def confirm(offer_id):
    """One click: yes, we want it (意愿确认). The enterprise's credit is checked now: red or D-grade → held (with
    the reason, and a notice). A second click answers the same with repeated=true."""
    actor = auth.account()
    return _outcome(offers.confirm(db.session(), actor, offer_id), actor)


@blp.route("/offers/<int:offer_id>/decline", methods=["POST"])
@write_limit()
@blp.arguments(OfferDeclineSchema)
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def decline(body, offer_id):
    """No, thank you (before approval); the money goes back to the budget."""
    actor = auth.account()
    return _outcome(offers.decline(db.session(), actor, offer_id, note=body.get("note")), actor)


@blp.route("/offers/<int:offer_id>/receipt", methods=["POST"])
@write_limit()
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def receipt(offer_id):
    """One click: the money arrived (到账确认)."""
    actor = auth.account()
    return _outcome(offers.confirm_receipt(db.session(), actor, offer_id), actor)


@blp.route("/admin/offers/<int:offer_id>/release", methods=["POST"])
@write_limit()
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def release(offer_id):
    """Release a held offer once the enterprise's credit allows it again (else 409 still_ineligible)."""
    actor = auth.account()
    return _outcome(offers.release(db.session(), actor, offer_id), actor)


@blp.route("/admin/offers/<int:offer_id>/cancel", methods=["POST"])
@write_limit()
@blp.arguments(OfferCancelSchema)
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def cancel(body, offer_id):
    """Withdraw an offer not yet paid, with the reason (told to the enterprise)."""
    actor = auth.account()
    return _outcome(offers.cancel(db.session(), actor, offer_id, note=body["note"]), actor)
