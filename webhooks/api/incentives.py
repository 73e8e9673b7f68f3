"""Incentive measures: publishing them (org admins), the public catalogue, and the measures I can use now."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import incentives
from handlers.models import (
    Account, Colour, Grade, Incentive, IncentiveStatus, Period, Redemption, Scenario, SubjectKind,
)

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, PageArgs, errors_doc, page_schema, page_view

# Three roots (/organisations/{id}/incentives, /incentives and /me/incentives), so it sits at /api/v1 itself.
PREFIX = ""
blp = Blueprint("incentives", __name__, description="Incentive measures (激励措施)")


def _enum(cls) -> dict:
    return {"enum": [m.value for m in cls]}


# Enumerations are checked by the domain, so that a wrong value gets its own code (bad_scenario …),
# not the generic validation_failed.
_TITLE = {"description": f"at most {incentives.TITLE_MAX} characters"}
_NOT_EMPTY = {"description": "not empty"}


class IncentiveEditSchema(Schema):
    title = fields.String(metadata=_TITLE)
    description = fields.String(allow_none=True,
                                metadata={"description": f"at most {incentives.DESCRIPTION_MAX} characters"})
    scenario = fields.String(metadata=_enum(Scenario))
    eligible_colours = fields.List(fields.String(metadata=_enum(Colour)), metadata=_NOT_EMPTY)
    eligible_kinds = fields.List(fields.String(metadata=_enum(SubjectKind)), metadata=_NOT_EMPTY)
    min_grade = fields.String(allow_none=True, metadata={
        **_enum(Grade), "description": "lowest grade admitted; only when enterprises or institutions are eligible"})
    limit_count = fields.Integer(strict=True, allow_none=True, metadata={
        "description": "uses per subject per limit_period (at least 1); give both or neither"})
    limit_period = fields.String(allow_none=True, metadata={
        **_enum(Period), "description": "calendar periods in Asia/Shanghai time"})
    stock_total = fields.Integer(strict=True, allow_none=True, metadata={
        "description": "total uses over all subjects; null: unlimited; not below what is used"})
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True, metadata={"description": "last day it can be used"})
    venues = fields.List(fields.String(), allow_none=True, metadata={
        "description": f"at most {incentives.VENUES_MAX}, each at most {incentives.VENUE_MAX} characters"})
    clerk_ids = fields.List(fields.Integer(strict=True), allow_none=True, metadata={
        "description": "accounts (clerks or admins of the organisation) allowed to redeem it; empty: all its clerks"})


class IncentiveCreateSchema(IncentiveEditSchema):
    """The same fields; these four have no default."""

    title = fields.String(required=True, metadata=_TITLE)
    scenario = fields.String(required=True, metadata=_enum(Scenario))
    eligible_colours = fields.List(fields.String(metadata=_enum(Colour)), required=True, metadata=_NOT_EMPTY)
    eligible_kinds = fields.List(fields.String(metadata=_enum(SubjectKind)), required=True, metadata=_NOT_EMPTY)


class OrganisationRef(Schema):
    id = fields.Integer()
    name = fields.String()


class IncentiveSchema(Schema):
    id = fields.Integer()
    organisation = fields.Nested(OrganisationRef)
    title = fields.String()
    description = fields.String(allow_none=True)
    scenario = fields.String(metadata=_enum(Scenario))
    scenario_name = fields.String(metadata={"description": "行政审批、交通出行 …"})
    eligible_colours = fields.List(fields.String(metadata=_enum(Colour)))
    eligible_kinds = fields.List(fields.String(metadata=_enum(SubjectKind)))
    min_grade = fields.String(allow_none=True)
    limit_count = fields.Integer(allow_none=True)
    limit_period = fields.String(allow_none=True)
    stock_total = fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})
    stock_remaining = fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    venues = fields.List(fields.String())
    status = fields.String(metadata=_enum(IncentiveStatus))
    open_now = fields.Boolean(metadata={"description": "open and within its dates today"})
    # For the organisation's admins and platform admins only:
    stock_used = fields.Integer(metadata={"description": "admins only"})
    clerk_ids = fields.List(fields.Integer(), metadata={"description": "admins only; empty: all its clerks"})
    created_at = fields.DateTime(metadata={"description": "admins only"})
    updated_at = fields.DateTime(metadata={"description": "admins only"})
    # In an organisation's list, for the member asking:
    can_redeem = fields.Boolean(metadata={"description": "in an organisation's list: may I redeem it"})


IncentivePage = page_schema("IncentivePage", IncentiveSchema)


class OrganisationIncentiveArgs(PageArgs):
    status = fields.String(metadata=_enum(IncentiveStatus))
    scenario = fields.String(metadata=_enum(Scenario))


class PublishedArgs(PageArgs):
    scenario = fields.String(metadata=_enum(Scenario))


class ForMeArgs(Schema):
    subject_id = fields.Integer(metadata={"description": "an enterprise I am the agent of; default: my own subject"})
    scenario = fields.String(metadata=_enum(Scenario))


class ForMeRemainingSchema(Schema):
    quota = fields.Integer(allow_none=True, metadata={"description": "my uses left this period; null: no limit"})
    period = fields.String(allow_none=True)
    stock = fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})


class RecentRedemptionSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": ["redeemed", "voided"]})
    venue = fields.String(allow_none=True)
    created_at = fields.DateTime()
    voided_at = fields.DateTime(allow_none=True)


class ForMeEntrySchema(Schema):
    incentive = fields.Nested(IncentiveSchema)
    usable = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={
        "description": "why not: incentive_closed, colour_not_eligible, kind_not_eligible, grade_not_eligible, "
                       "limit_reached, out_of_stock"})
    message = fields.String(allow_none=True)
    remaining = fields.Nested(ForMeRemainingSchema)
    recent_redemptions = fields.List(fields.Nested(RecentRedemptionSchema),
                                     metadata={"description": f"my last {incentives.RECENT}, newest first"})


class ForMeSubjectSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String()
    colour = fields.String(metadata=_enum(Colour))
    grade = fields.String(allow_none=True)


class ForMeSchema(Schema):
    subject = fields.Nested(ForMeSubjectSchema)
    usable = fields.List(fields.Nested(ForMeEntrySchema))
    not_usable = fields.List(fields.Nested(ForMeEntrySchema))


def incentive_view(i: Incentive, actor: Account | None = None) -> dict:
    out = {
        "id": i.id, "organisation": {"id": i.organisation_id, "name": i.organisation.name},
        "title": i.title, "description": i.description,
        "scenario": i.scenario.value, "scenario_name": incentives.SCENARIO_NAMES[i.scenario],
        "eligible_colours": list(i.eligible_colours), "eligible_kinds": list(i.eligible_kinds),
        "min_grade": i.min_grade.value if i.min_grade else None,
        "limit_count": i.limit_count, "limit_period": i.limit_period.value if i.limit_period else None,
        "stock_total": i.stock_total, "stock_remaining": incentives.stock_remaining(i),
        "valid_from": i.valid_from, "valid_until": i.valid_until, "venues": list(i.venues or []),
        "status": i.status.value, "open_now": incentives.is_open(i),
    }
    if incentives.can_manage(actor, i):
        out.update(stock_used=i.stock_used, clerk_ids=[c.account_id for c in i.clerks],
                   created_at=i.created_at, updated_at=i.updated_at)
    return out


def _redemption_view(r: Redemption) -> dict:
    return {"id": r.id, "status": r.status.value, "venue": r.venue, "created_at": r.created_at,
            "voided_at": r.voided_at}


def _entry_view(e: incentives.Entry) -> dict:
    return {"incentive": incentive_view(e.incentive), "usable": e.usable, "reason": e.reason, "message": e.message,
            "remaining": e.remaining, "recent_redemptions": [_redemption_view(r) for r in e.recent]}


@blp.route("/organisations/<int:organisation_id>/incentives", methods=["POST"])
@write_limit()
@blp.arguments(IncentiveCreateSchema)
@blp.response(201, IncentiveSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def create(body, organisation_id):
    """Publish a measure (org admins of an approved organisation, or platform admins); it is open at once."""
    actor = auth.account()
    return incentive_view(incentives.create_incentive(db.session(), actor, organisation_id, **body), actor)


@blp.route("/organisations/<int:organisation_id>/incentives", methods=["GET"])
@blp.arguments(OrganisationIncentiveArgs, location="query")
@blp.response(200, IncentivePage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def organisation_list(args, organisation_id):
    """All of an organisation's measures, open and closed, for its admins and clerks."""
    actor = auth.account()
    page = incentives.list_for_organisation(db.session(), actor, organisation_id, **args)
    return page_view(page, lambda i: {**incentive_view(i, actor), "can_redeem": incentives.can_redeem(actor, i)})


@blp.route("/incentives", methods=["GET"])
@blp.arguments(PublishedArgs, location="query")
@blp.response(200, IncentivePage)
@errors_doc(blp, 422)
def published(args):
    """The public catalogue: open measures of approved organisations that have not ended. No sign-in needed."""
    page = incentives.list_published(db.session(), **args)
    return page_view(page, incentive_view)


@blp.route("/incentives/<int:incentive_id>", methods=["GET"])
@blp.response(200, IncentiveSchema)
@errors_doc(blp, 401, 404)
def show(incentive_id):
    """One measure; its organisation's admins also see the stock used, the clerks and the timestamps."""
    actor = auth.optional_account()
    s = db.session()
    return incentive_view(incentives.visible(actor, incentives.get(s, incentive_id)), actor)


@blp.route("/incentives/<int:incentive_id>", methods=["PATCH"])
@write_limit()
@blp.arguments(IncentiveEditSchema)
@blp.response(200, IncentiveSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def edit(body, incentive_id):
    """Change some fields; null clears an optional one. The measure is checked as a whole after the change."""
    actor = auth.account()
    return incentive_view(incentives.update_incentive(db.session(), actor, incentive_id, **body), actor)


def _set_status(incentive_id: int, status: IncentiveStatus) -> dict:
    actor = auth.account()
    return incentive_view(incentives.set_status(db.session(), actor, incentive_id, status), actor)


@blp.route("/incentives/<int:incentive_id>/close", methods=["POST"])
@write_limit()
@blp.response(200, IncentiveSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def close(incentive_id):
    """Close: from now on every scan is refused with incentive_closed. Closing a closed one changes nothing."""
    return _set_status(incentive_id, IncentiveStatus.closed)


@blp.route("/incentives/<int:incentive_id>/reopen", methods=["POST"])
@write_limit()
@blp.response(200, IncentiveSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def reopen(incentive_id):
    """Reopen a closed measure (its dates, limits and stock still apply)."""
    return _set_status(incentive_id, IncentiveStatus.open)


@blp.route("/me/incentives", methods=["GET"])
@blp.arguments(ForMeArgs, location="query")
@blp.response(200, ForMeSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def for_me(args):
    """Measures for me (or my enterprise): usable now, and not usable with the reason, each with my last uses."""
    actor = auth.account()
    result = incentives.for_subject(db.session(), actor, args.get("subject_id"), scenario=args.get("scenario"))
    subject = result.subject
    return {
        "subject": {"id": subject.id, "kind": subject.kind.value, "name": subject.name_masked,
                    "colour": result.colour.value, "grade": subject.grade.value if subject.grade else None},
        "usable": [_entry_view(e) for e in result.usable],
        "not_usable": [_entry_view(e) for e in result.not_usable],
    }

