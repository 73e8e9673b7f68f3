"""Policies (免申即享) over HTTP: the issuing department's desk (write, publish, match, approve, pay, read the
objections), the public list and notice (公示), objections, and the enterprise data the conditions read."""
from __future__ import annotations

from datetime import date

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from handlers import offers, policies, subjects
from handlers.errors import DomainError
from handlers.models import Objection, OfferState, Policy, PolicyState

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, PageArgs, errors_doc, page_schema, page_view
from .offers import OfferPage, offer_views

# Two roots (/policies and /admin/…), so the blueprint sits at /api/v1 itself.
PREFIX = ""
blp = Blueprint("policies", __name__, description="Policy offers (免申即享): policies, matching, payment, 公示")

_FEN = {"description": "in fen (分): 100 = 1 yuan"}


# --- schemas ---------------------------------------------------------------------------------------------

class PolicyAmountRuleSchema(Schema):
    fixed_fen = fields.Integer(strict=True, metadata={"description": "a fixed amount, in fen; alone"})
    base = fields.String(metadata={"enum": sorted(policies.BASES), "description": "the enterprise figure"})
    rate_bp = fields.Integer(strict=True, metadata={"description": "ten-thousandths of the base (500 = 5%), 1..10000"})
    cap_fen = fields.Integer(strict=True, metadata={"description": "the most one enterprise gets, in fen"})


class PolicyConditionsSchema(Schema):
    kinds = fields.List(fields.String(), metadata={"description": "enterprise and/or institution; default enterprise"})
    min_grade = fields.String(allow_none=True, metadata={
        "enum": ["A", "B", "C"], "description": "lowest grade; then ungraded ones do not qualify. D never does"})
    colours = fields.List(fields.String(), metadata={"description": "green and/or blue (default both); red never"})
    industry_prefixes = fields.List(fields.String(), metadata={
        "description": "GB/T 4754 codes or prefixes (C, C39, 3971 …); any of them"})
    region_prefixes = fields.List(fields.String(), metadata={
        "description": "administrative division prefixes (44, 4413, 441302; 441300 means all of 4413); any of them"})
    registered_before = fields.Date(allow_none=True, metadata={"description": "established before this day"})
    tags_all = fields.List(fields.String(), metadata={"description": "the enterprise has every one of these tags"})
    tags_any = fields.List(fields.String(), metadata={"description": "the enterprise has at least one of these"})


class PolicyEditSchema(Schema):
    title = fields.String(metadata={"description": f"at most {policies.TITLE_MAX} characters"})
    description = fields.String(allow_none=True)
    amount_rule = fields.Nested(PolicyAmountRuleSchema, metadata={
        "description": "{fixed_fen} or {base, rate_bp, cap_fen}: a share of the base rounded down, capped"})
    conditions = fields.Nested(PolicyConditionsSchema, allow_none=True)
    budget_fen = fields.Integer(strict=True, allow_none=True, metadata={
        **_FEN, "description": "null: no limit; when it cannot cover everyone, A-grade first (docs/policies.md)"})
    notice_from = fields.Date(metadata={"description": "first day of the public notice (公示)"})
    notice_until = fields.Date(metadata={"description": "last day of the public notice"})
    confirm_until = fields.Date(allow_none=True, metadata={"description": "last day an enterprise may confirm"})


class PolicyCreateSchema(PolicyEditSchema):
    organisation_id = fields.Integer(required=True, metadata={"description": "the issuing department or institution"})
    title = fields.String(required=True)
    amount_rule = fields.Nested(PolicyAmountRuleSchema, required=True)
    notice_from = fields.Date(required=True)
    notice_until = fields.Date(required=True)


class PolicyIssuerSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class PolicySchema(Schema):
    id = fields.Integer()
    organisation = fields.Nested(PolicyIssuerSchema)
    title = fields.String()
    description = fields.String(allow_none=True)
    state = fields.String(metadata={"enum": [s.value for s in PolicyState]})
    amount_rule = fields.Nested(PolicyAmountRuleSchema)
    conditions = fields.Nested(PolicyConditionsSchema)
    budget_fen = fields.Integer(allow_none=True)
    notice_from = fields.Date()
    notice_until = fields.Date()
    confirm_until = fields.Date(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    # For those who manage it:
    match_runs = fields.Integer(metadata={"description": "managers only"})
    matched_at = fields.DateTime(allow_none=True, metadata={"description": "managers only"})
    created_at = fields.DateTime(metadata={"description": "managers only"})
    updated_at = fields.DateTime(metadata={"description": "managers only"})


PolicyPage = page_schema("PolicyPage", PolicySchema)


class PolicyMatchSchema(Schema):
    policy_id = fields.Integer()
    run = fields.Integer(metadata={"description": "the how-manieth matching of this policy"})
    state = fields.String(metadata={"description": "the policy's: draft (a silent preview) or published"})
    eligible = fields.Integer(metadata={"description": "qualifying enterprises that had no offer yet"})
    offered = fields.Integer(metadata={"description": "offers made by this run"})
    offered_fen = fields.Integer()
    over_budget = fields.Integer(metadata={"description": "eligible, but the budget did not reach them"})
    notified = fields.Integer(metadata={"description": "notices (pushes) written"})
    previews_dropped = fields.Integer()
    colours_refreshed = fields.Integer()
    committed_fen = fields.Integer()
    budget_fen = fields.Integer(allow_none=True)
    remaining_fen = fields.Integer(allow_none=True)
    seconds = fields.Float()
    phases = fields.Dict(keys=fields.String(), values=fields.Float())


class PolicyPublishedSchema(Schema):
    policy = fields.Nested(PolicySchema)
    match = fields.Nested(PolicyMatchSchema)


class PolicyStatsSchema(Schema):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "offers per state: " + ", ".join(s.value for s in OfferState)})
    offers = fields.Integer()
    budget_fen = fields.Integer(allow_none=True)
    committed_fen = fields.Integer(metadata={"description": "held by live offers (not declined, expired, cancelled)"})
    confirmed_fen = fields.Integer(metadata={"description": "the enterprises said yes (confirmed … received)"})
    disbursed_fen = fields.Integer(metadata={"description": "paid (disbursed and received)"})
    received_fen = fields.Integer(metadata={"description": "receipt confirmed by the enterprise"})
    held_fen = fields.Integer()
    remaining_fen = fields.Integer(allow_none=True)
    match_runs = fields.Integer()
    matched_at = fields.DateTime(allow_none=True)


class PolicyOfferListArgs(PageArgs):
    state = fields.String(metadata={"enum": [s.value for s in OfferState]})


_ID = validate.Range(min=1, max=offers.MAX_ID)


class PolicyListArgs(PageArgs):
    state = fields.String(metadata={"enum": [s.value for s in PolicyState]})
    organisation_id = fields.Integer(validate=_ID)


class OfferApproveSchema(Schema):
    offer_ids = fields.List(fields.Integer(strict=True), metadata={
        "description": f"these confirmed offers (at most {offers.MAX_BATCH_IDS}); or all_confirmed"})
    all_confirmed = fields.Boolean(load_default=False)


class OfferDisburseSchema(Schema):
    payment_reference = fields.String(required=True, metadata={
        "description": "the payment's reference at the bank or treasury; once per batch, never twice"})
    offer_ids = fields.List(fields.Integer(strict=True), metadata={
        "description": f"these approved offers (at most {offers.MAX_BATCH_IDS}), all or none; or all_approved"})
    all_approved = fields.Boolean(load_default=False)


class OfferBatchSchema(Schema):
    moved = fields.Integer(metadata={"description": "offers approved (or paid) by this batch"})
    held = fields.Integer(metadata={"description": "offers the credit check held instead (red or D now)"})
    total_fen = fields.Integer()
    disbursement_id = fields.Integer(allow_none=True)
    payment_reference = fields.String(allow_none=True)


class PolicyNoticeEntrySchema(Schema):
    offer_id = fields.Integer()
    enterprise = fields.String(metadata={"description": "masked name"})
    identifier = fields.String(metadata={"description": "masked credit code"})
    amount_fen = fields.Integer()
    amount = fields.String(metadata={"description": "yuan, two decimals"})


class PolicyNoticeSchema(Schema):
    policy = fields.Nested(PolicySchema)
    items = fields.List(fields.Nested(PolicyNoticeEntrySchema))
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()


class PolicyObjectionCreateSchema(Schema):
    reason = fields.String(required=True, metadata={"description": f"at most {policies.REASON_MAX} characters"})
    offer_id = fields.Integer(allow_none=True, load_default=None, strict=True, metadata={
        "description": "the listed offer it is about (an offer_id of the notice); empty: the policy as a whole"})


class PolicyObjectionSchema(Schema):
    id = fields.Integer()
    policy_id = fields.Integer()
    offer_id = fields.Integer(allow_none=True)
    account_id = fields.Integer()
    reason = fields.String()
    created_at = fields.DateTime()


PolicyObjectionPage = page_schema("PolicyObjectionPage", PolicyObjectionSchema)


class EnterpriseProfileSchema(Schema):
    industry_code = fields.String(allow_none=True, metadata={"description": "GB/T 4754-2017, e.g. C3971 or 3971"})
    region_code = fields.String(allow_none=True, metadata={"description": "six digits, e.g. 441302"})
    registered_on = fields.Date(allow_none=True, metadata={"description": "date of establishment"})
    last_year_tax_fen = fields.Integer(strict=True, allow_none=True, metadata=_FEN)
    tax_year = fields.Integer(strict=True, allow_none=True)
    tags = fields.List(fields.String(), allow_none=True, validate=validate.Length(max=policies.TAGS_MAX))


class EnterpriseProfileOutSchema(EnterpriseProfileSchema):
    subject_id = fields.Integer()
    updated_at = fields.DateTime(allow_none=True)


# --- views -----------------------------------------------------------------------------------------------

def _conditions(stored: dict) -> dict:
    out = dict(stored)
    if out.get("registered_before"):
        out["registered_before"] = date.fromisoformat(out["registered_before"])  # ISO text in the JSON column
    return out


def policy_view(p: Policy, actor=None) -> dict:
    out = {
        "id": p.id, "organisation": {"id": p.organisation_id, "name": p.organisation.name}, "title": p.title,
        "description": p.description, "state": p.state.value, "amount_rule": p.amount_rule,
        "conditions": _conditions(p.conditions), "budget_fen": p.budget_fen, "notice_from": p.notice_from,
        "notice_until": p.notice_until, "confirm_until": p.confirm_until, "published_at": p.published_at,
        "closed_at": p.closed_at,
    }
    if policies.can_manage(actor, p):
        out.update(match_runs=p.match_runs, matched_at=p.matched_at, created_at=p.created_at,
                   updated_at=p.updated_at)
    return out


def _objection_view(o: Objection) -> dict:
    return {"id": o.id, "policy_id": o.policy_id, "offer_id": o.offer_id, "account_id": o.account_id,
            "reason": o.reason, "created_at": o.created_at}


def _batch_view(r: offers.BatchResult) -> dict:
    return {"moved": r.moved, "held": r.held, "total_fen": r.total_fen,
            "disbursement_id": r.disbursement.id if r.disbursement else None,
            "payment_reference": r.disbursement.payment_reference if r.disbursement else None}


def _profile_view(p: policies.Profile) -> dict:
    return {"subject_id": p.subject_id, "industry_code": p.industry_code, "region_code": p.region_code,
            "registered_on": p.registered_on, "last_year_tax_fen": p.last_year_tax_fen, "tax_year": p.tax_year,
            "tags": list(p.tags), "updated_at": p.updated_at}


def _managed(policy_id: int, *, lock: bool = False):
    actor = auth.account()
    return actor, policies.managed(db.session(), actor, policy_id, lock=lock)


# --- the public side -------------------------------------------------------------------------------------

@blp.route("/policies", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, PolicyPage)
@errors_doc(blp, 422)
def published(args):
    """Published and closed policies, newest first. No sign-in needed."""
    return page_view(policies.list_published(db.session(), **args), policy_view)


@blp.route("/policies/<int:policy_id>", methods=["GET"])
@blp.response(200, PolicySchema)
@errors_doc(blp, 401, 404)
def show(policy_id):
    """One policy; a draft only for those who manage it."""
    actor = auth.optional_account()
    return policy_view(policies.visible(db.session(), actor, policy_id), actor)


@blp.route("/policies/<int:policy_id>/notice", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, PolicyNoticeSchema)
@errors_doc(blp, 404, 409, 422)
def notice(args, policy_id):
    """The public notice (公示), during its period only: enterprises to be paid, masked, with their amounts.
    No sign-in needed."""
    policy, page = policies.public_notice(db.session(), policy_id, **args)
    items = [{"offer_id": r.id, "enterprise": r.name_masked, "identifier": r.id_masked, "amount_fen": r.amount_fen,
              "amount": offers.yuan(r.amount_fen)} for r in page.items]
    return {"policy": policy_view(policy), "items": items, "total": page.total, "limit": page.limit,
            "offset": page.offset}


@blp.route("/policies/<int:policy_id>/objections", methods=["POST"])
@write_limit()
@blp.arguments(PolicyObjectionCreateSchema)
@blp.response(201, PolicyObjectionSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def object_to(body, policy_id):
    """File an objection to the public notice, during its period (any signed-in account)."""
    actor = auth.account()
    return _objection_view(policies.file_objection(db.session(), actor, policy_id, **body))


# --- the issuing department's desk ------------------------------------------------------------------------

@blp.route("/admin/policies", methods=["POST"])
@write_limit()
@blp.arguments(PolicyCreateSchema)
@blp.response(201, PolicySchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def create(body):
    """Write a draft policy (platform admins, or admins of the issuing department or institution)."""
    actor = auth.account()
    organisation_id = body.pop("organisation_id")
    return policy_view(policies.create_policy(db.session(), actor, organisation_id, **body), actor)


@blp.route("/admin/policies", methods=["GET"])
@blp.arguments(PolicyListArgs, location="query")
@blp.response(200, PolicyPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def managed_list(args):
    """The policies I manage (platform admins: all), newest first."""
    actor = auth.account()
    return page_view(policies.list_managed(db.session(), actor, **args), lambda p: policy_view(p, actor))


@blp.route("/admin/policies/<int:policy_id>", methods=["GET"])
@blp.response(200, PolicySchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def managed_show(policy_id):
    actor, policy = _managed(policy_id)
    return policy_view(policy, actor)


@blp.route("/admin/policies/<int:policy_id>", methods=["PATCH"])
@write_limit()
@blp.arguments(PolicyEditSchema)
@blp.response(200, PolicySchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def edit(body, policy_id):
    """Change a draft; once published only description, notice period, confirm_until and budget (policy_locked)."""
    actor = auth.account()
    return policy_view(policies.update_policy(db.session(), actor, policy_id, **body), actor)


@blp.route("/admin/policies/<int:policy_id>/publish", methods=["POST"])
@write_limit()
@blp.response(200, PolicyPublishedSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def publish(policy_id):
    """Publish a draft and match it at once: each qualifying enterprise (within the budget, A-grade first) gets
    its offer and a push."""
    actor = auth.account()
    result = policies.publish_policy(db.session(), actor, policy_id)
    return {"policy": policy_view(policies.get(db.session(), policy_id), actor), "match": result.as_dict()}


@blp.route("/admin/policies/<int:policy_id>/close", methods=["POST"])
@write_limit()
@blp.response(200, PolicySchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def close(policy_id):
    """Close: unconfirmed offers expire (and are told); confirmed ones can still be approved and paid."""
    actor = auth.account()
    return policy_view(policies.close_policy(db.session(), actor, policy_id), actor)


@blp.route("/admin/policies/<int:policy_id>/match", methods=["POST"])
@write_limit()
@blp.response(200, PolicyMatchSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def match(policy_id):
    """Match again (idempotent): a draft gets a fresh silent preview; a published policy offers (and pushes to)
    enterprises that qualify now and had no offer, within what is left of the budget."""
    actor = auth.account()
    return policies.match(db.session(), actor, policy_id).as_dict()


@blp.route("/admin/policies/<int:policy_id>/stats", methods=["GET"])
@blp.response(200, PolicyStatsSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def stats(policy_id):
    """Offers per state, and the money committed, confirmed, disbursed and received."""
    _, policy = _managed(policy_id)
    return offers.stats(db.session(), policy)


@blp.route("/admin/policies/<int:policy_id>/offers", methods=["GET"])
@blp.arguments(PolicyOfferListArgs, location="query")
@blp.response(200, OfferPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def offer_list(args, policy_id):
    """The policy's offers in priority order (grade, then id), optionally of one state."""
    actor, policy = _managed(policy_id)
    page = offers.list_for_policy(db.session(), policy, **args)
    return {**page_view(page, lambda o: o), "items": offer_views(page.items, actor)}


@blp.route("/admin/policies/<int:policy_id>/approve", methods=["POST"])
@write_limit()
@blp.arguments(OfferApproveSchema)
@blp.response(200, OfferBatchSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def approve(body, policy_id):
    """Approve confirmed offers for payment: listed (all or none) or all_confirmed. Red or D ones are held."""
    actor, policy = _managed(policy_id, lock=True)
    return _batch_view(offers.approve(db.session(), actor, policy, offer_ids=body.get("offer_ids"),
                                      all_confirmed=body["all_confirmed"]))


@blp.route("/admin/policies/<int:policy_id>/disbursements", methods=["POST"])
@write_limit()
@blp.arguments(OfferDisburseSchema)
@blp.response(201, OfferBatchSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def disburse(body, policy_id):
    """Pay approved offers in one batch with its payment reference: listed (all or none) or all_approved. The
    enterprises are told; red or D ones are held instead."""
    actor, policy = _managed(policy_id, lock=True)
    return _batch_view(offers.disburse(db.session(), actor, policy, payment_reference=body["payment_reference"],
                                       offer_ids=body.get("offer_ids"), all_approved=body["all_approved"]))


@blp.route("/admin/policies/<int:policy_id>/objections", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, PolicyObjectionPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def objections(args, policy_id):
    """Objections to the public notice, oldest first."""
    _, policy = _managed(policy_id)
    return page_view(policies.list_objections(db.session(), policy, **args), _objection_view)


# --- enterprise data the conditions read -------------------------------------------------------------------

@blp.route("/admin/enterprises/<int:subject_id>/profile", methods=["GET"])
@blp.response(200, EnterpriseProfileOutSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def profile(subject_id):
    """What policy conditions read about an enterprise (platform admins)."""
    auth.require_platform_admin()
    s = db.session()
    if not offers.is_id(subject_id):
        raise DomainError("subject_not_found")
    subjects.get(s, subject_id)
    return _profile_view(policies.profile_of(s, subject_id))


@blp.route("/admin/enterprises/<int:subject_id>/profile", methods=["PUT"])
@write_limit()
@blp.arguments(EnterpriseProfileSchema)
@blp.response(200, EnterpriseProfileOutSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def set_profile(body, subject_id):
    """Replace it as a whole (fields left out become empty; tags are replaced)."""
    actor = auth.require_platform_admin()
    return _profile_view(policies.set_profile(db.session(), actor, subject_id, **body))
