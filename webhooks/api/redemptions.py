"""Scan-to-redeem over HTTP: redeem, check, void, and the lists of redemptions (holder's, organisation's).

A rejected verdict is a 200: the request did what was asked (judge the code), and its row — the audit
of the attempt — must be committed, which the edge does only for statuses below 400.
"""
from __future__ import annotations

import time

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from prometheus_client import Counter, Histogram

from handlers import organisations, redemption_lists, redemptions
from handlers.errors import DomainError
from handlers.models import MAX_ID, Incentive, RedemptionStatus
from handlers.signing import KeyRing

from .. import auth, db
from ..limits import scan_limit, write_limit
from .common import BEARER, PageArgs, errors_doc, page_schema, page_view

PREFIX = ""
blp = Blueprint("redemptions", __name__, description="Scanning codes and redeeming incentives")

# Verdicts given (an idempotent retry is not counted again) and how long redeem() took.
REDEMPTIONS = Counter("xinma_redemptions_total", "Redemption verdicts", ["status", "reason"])
REDEEM_SECONDS = Histogram("xinma_redeem_duration_seconds", "Time spent in redeem(), database included",
                           buckets=(.001, .002, .005, .01, .02, .05, .1, .25, .5, 1))
SCAN_CHECKS = Counter("xinma_scan_checks_total", "Code checks without redeeming", ["status", "reason"])

# A token is 135 characters (docs/code-format.md). Anything much longer is not a code at all: refuse it in
# the schema (validation_failed), before parsing, without writing an audit row for junk.
MAX_TOKEN_INPUT = 512
_ID = validate.Range(min=1, max=MAX_ID)


def keyring() -> KeyRing:
    return current_app.extensions["xinma.keyring"]


def measures() -> redemptions.MeasureCache:
    return current_app.extensions["xinma.measures"]


# --- schemas --------------------------------------------------------------------------------------

class Token(fields.String):
    def __init__(self, **kw):
        super().__init__(required=True, validate=validate.Length(min=1, max=MAX_TOKEN_INPUT), metadata={
            "description": "the text read from the QR code (XM:…); line ends are ignored"}, **kw)


class RedeemSchema(Schema):
    token = Token()
    incentive_id = fields.Integer(required=True, validate=_ID)
    idempotency_key = fields.String(required=True, metadata={
        "description": "chosen by the scanner per scan (1–64 of A–Z a–z 0–9 _ . : -); a retry with the same key "
                       "returns the first verdict and changes nothing"})
    venue = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class CheckSchema(Schema):
    token = Token()
    incentive_id = fields.Integer(load_default=None, allow_none=True, validate=_ID, metadata={
        "description": "also judge this measure's rules (colour, kind, grade, open); quotas are not looked at"})


class VerdictSubject(Schema):
    name = fields.String(metadata={"description": "masked"})
    colour = fields.String(metadata={"enum": ["green", "blue", "red"], "description": "colour now, from the ledger"})
    kind = fields.String()
    grade = fields.String(allow_none=True)


class IncentiveBrief(Schema):
    id = fields.Integer()
    title = fields.String()
    organisation_id = fields.Integer()
    organisation = fields.String()
    scenario = fields.String()


class Remaining(Schema):
    quota = fields.Integer(allow_none=True, metadata={"description": "uses left for this subject in this period"})
    period = fields.String(allow_none=True)
    stock = fields.Integer(allow_none=True)


class VerdictSchema(Schema):
    status = fields.String(metadata={"enum": ["redeemed", "rejected", "voided"]})
    reason = fields.String(allow_none=True, metadata={"description": "stable reason code (docs/errors.md)"})
    message = fields.String(metadata={"description": "what the clerk reads"})
    subject = fields.Nested(VerdictSubject, allow_none=True)
    incentive = fields.Nested(IncentiveBrief)
    remaining = fields.Nested(Remaining)
    redemption_id = fields.Integer()


class CheckResultSchema(Schema):
    status = fields.String(metadata={"enum": ["valid", "invalid"]})
    reason = fields.String(allow_none=True)
    message = fields.String()
    subject = fields.Nested(VerdictSubject, allow_none=True)
    valid_until = fields.DateTime(allow_none=True)


class VoidedSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    voided_at = fields.DateTime()


class MyRedemptionSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": [s.value for s in RedemptionStatus]})
    reason = fields.String(allow_none=True)
    incentive_id = fields.Integer()
    incentive = fields.String(metadata={"description": "the measure's title"})
    organisation = fields.String()
    venue = fields.String(allow_none=True)
    created_at = fields.DateTime()
    voided_at = fields.DateTime(allow_none=True)


class OrgRedemptionSchema(MyRedemptionSchema):
    subject = fields.Nested(VerdictSubject, allow_none=True, metadata={"description": "colour at the scan"})
    clerk_id = fields.Integer()
    clerk = fields.String(metadata={"description": "the clerk's login"})
    voided_by_id = fields.Integer(allow_none=True)


class TotalSchema(Schema):
    incentive_id = fields.Integer()
    title = fields.String()
    redeemed = fields.Integer()
    rejected = fields.Integer()
    voided = fields.Integer()


MyRedemptionPage = page_schema("MyRedemptionPage", MyRedemptionSchema)


class OrgRedemptionPage(page_schema("OrgRedemptionPageBase", OrgRedemptionSchema)):
    totals = fields.List(fields.Nested(TotalSchema), metadata={"description": "per measure, same filters, unpaged"})


_STATUS = validate.OneOf([s.value for s in RedemptionStatus])


class MyListArgs(PageArgs):
    subject_id = fields.Integer(load_default=None, metadata={"description": "an enterprise I am agent of"})
    status = fields.String(load_default=None, validate=_STATUS)


class OrgListArgs(PageArgs):
    status = fields.String(load_default=None, validate=_STATUS)
    incentive_id = fields.Integer(load_default=None, validate=_ID)
    date = fields.Date(load_default=None, metadata={"description": "one day (Asia/Shanghai)"})
    date_from = fields.Date(load_default=None, metadata={"description": "first day, inclusive"})
    date_to = fields.Date(load_default=None, metadata={"description": "last day, inclusive"})

    @validates_schema
    def _one_way(self, data, **kw):
        if data.get("date") and (data.get("date_from") or data.get("date_to")):
            raise ValidationError("date, or date_from/date_to, not both", "date")


# --- views ----------------------------------------------------------------------------------------

def _my_view(row: redemption_lists.Row) -> dict:
    r = row.redemption
    return {"id": r.id, "status": r.status.value, "reason": r.reason, "incentive_id": r.incentive_id,
            "incentive": row.incentive.title, "organisation": row.incentive.organisation.name, "venue": r.venue,
            "created_at": r.created_at, "voided_at": r.voided_at}


def _org_view(row: redemption_lists.Row) -> dict:
    r = row.redemption
    subject = (redemptions.subject_view(row.subject, r.colour.value) if row.subject is not None and r.colour
               else None)
    return {**_my_view(row), "subject": subject, "clerk_id": r.clerk_id,
            "clerk": row.clerk.login if row.clerk else None, "voided_by_id": r.voided_by_id}


# --- scanning -------------------------------------------------------------------------------------

@blp.route("/redemptions", methods=["POST"])
@scan_limit()
@blp.arguments(RedeemSchema())  # an instance: a class is instantiated by webargs on every request
@blp.response(200, VerdictSchema, description="a verdict: redeemed, or rejected with its reason")
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 415, 422)
def redeem(body):
    """Redeem a measure for the holder of a scanned code (clerks and org admins).

    A refusal (wrong colour, used code, quota …) is a 200 with ``status: rejected`` and a reason code;
    error statuses are for requests that could not be judged (not a clerk, unknown measure, bad body).
    """
    clerk = auth.require_clerk()
    started = time.perf_counter()
    verdict = redemptions.redeem(db.session(), keyring(), clerk, body["token"], body["incentive_id"],
                                 idempotency_key=body["idempotency_key"], venue=body["venue"], measures=measures())
    REDEEM_SECONDS.observe(time.perf_counter() - started)
    headers = {}
    if verdict.replay_of_request:
        headers["Idempotent-Replayed"] = "true"
    else:
        REDEMPTIONS.labels(verdict.status, verdict.reason or "none").inc()
    return verdict.as_dict(), 200, headers


@blp.route("/scans/check", methods=["POST"])
@scan_limit()
@blp.arguments(CheckSchema())
@blp.response(200, CheckResultSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 415, 422)
def check(body):
    """Judge a code without redeeming anything (gates that only check the colour). Clerks only."""
    clerk = auth.require_clerk()
    s = db.session()
    incentive = None
    if body["incentive_id"] is not None:
        incentive = s.get(Incentive, body["incentive_id"])
        if incentive is None:
            raise DomainError("incentive_not_found")
    result = redemptions.check(s, keyring(), body["token"], incentive=incentive, clerk=clerk)
    SCAN_CHECKS.labels(result["status"], result["reason"] or "none").inc()
    return result


@blp.route("/redemptions/<int:redemption_id>/void", methods=["POST"])
@write_limit()
@blp.response(200, VoidedSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def void(redemption_id):
    """Undo a redemption within 10 minutes (the wrong button); quota and stock come back, the holder is told."""
    clerk = auth.require_clerk()
    r = redemptions.void(db.session(), clerk, redemption_id)
    return {"id": r.id, "status": r.status.value, "voided_at": r.voided_at}


# --- lists ----------------------------------------------------------------------------------------

@blp.route("/me/redemptions", methods=["GET"])
@blp.arguments(MyListArgs, location="query")
@blp.response(200, MyRedemptionPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def mine(args):
    """Where my code was scanned (or my enterprise's), newest first: measure, organisation, verdict, time."""
    subject_id = auth.holder_subject(args.pop("subject_id"))
    return page_view(redemption_lists.for_subject(db.session(), subject_id, **args), _my_view)


@blp.route("/organisations/<int:organisation_id>/redemptions", methods=["GET"])
@blp.arguments(OrgListArgs, location="query")
@blp.response(200, OrgRedemptionPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def of_organisation(args, organisation_id):
    """The organisation's redemptions, newest first, with totals per measure (its admins and clerks)."""
    if not organisations.can_see(auth.account(), organisation_id):
        raise DomainError("forbidden")
    s = db.session()
    organisations.get(s, organisation_id)
    day, day_from, day_to = args.pop("date"), args.pop("date_from"), args.pop("date_to")
    filters = redemption_lists.Filters(status=args.pop("status"), incentive_id=args.pop("incentive_id"),
                                       day_from=day or day_from, day_to=day or day_to)
    page = redemption_lists.for_organisation(s, organisation_id, filters, **args)
    return {**page_view(page, _org_view), "totals": redemption_lists.totals(s, organisation_id, filters)}
