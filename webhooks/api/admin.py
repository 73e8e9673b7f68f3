"""The platform admin's desk (管理端): onboarding reviews, declaration reviews, records, categories, look-up."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from handlers import accounts, colours, declarations, organisations, records, subjects
from handlers.models import MAX_ID, AppliesTo, CreditRecord, RecordKind, Status

from .. import auth, db
from ..limits import write_limit
from .categories import CategorySchema, category_view
from .common import (
    BEARER, AccountSchema, PageArgs, RecordSchema, SubjectDetail, errors_doc, keys, page_schema, page_view,
    record_view, subject_detail,
)
from .declarations import DeclarationListArgs, DeclarationPage, DeclarationSchema, declaration_view
from .organisations import OrganisationSchema, organisation_view

PREFIX = "/admin"
blp = Blueprint("admin", __name__, description="Platform administration (platform admins only)")

OrganisationPage = page_schema("OrganisationPage", OrganisationSchema)
AccountPage = page_schema("AccountPage", AccountSchema)


class StatusListArgs(PageArgs):
    status = fields.String(metadata={"enum": [s.value for s in Status]})


class ReviewSchema(Schema):
    decision = fields.String(required=True, metadata={"enum": ["approve", "reject", "suspend"], "description":
                             "pending→approve|reject; approved→suspend; suspended|rejected→approve. "
                             "Declarations: approve|reject, pending only."})
    reason = fields.String(allow_none=True, load_default=None,
                           metadata={"description": "required to reject or suspend"})


class LookupSchema(Schema):
    identifier = fields.String(required=True, metadata={
        "description": "resident ID number or unified social credit code; in the body, never in a URL"})


class SubjectFile(SubjectDetail):
    full_name = fields.String(metadata={"description": "the clear name, shown to platform admins only; "
                                                       "'name' stays masked as everywhere else"})


class AddRecordSchema(Schema):
    subject_id = fields.Integer(required=True, validate=validate.Range(1, MAX_ID))
    category = fields.String(required=True)
    source = fields.String(required=True, metadata={"description": "the issuing organisation's source key"})
    external_id = fields.String(required=True, metadata={"description": "unique per source"})
    effective_on = fields.Date(required=True)
    published_until = fields.Date(allow_none=True, load_default=None,
                                  metadata={"description": "last day it counts; empty: no end"})


class RepairSchema(Schema):
    repaired_on = fields.Date(required=True)
    reason = fields.String(required=True)


class SuspendSchema(Schema):
    suspended_on = fields.Date(required=True)
    suspended_until = fields.Date(allow_none=True, load_default=None,
                                  metadata={"description": "last day of the suspension; empty: until lifted"})
    reason = fields.String(required=True)


class AdminRecordSchema(RecordSchema):
    subject_id = fields.Integer()
    external_id = fields.String()
    suspension_reason = fields.String(allow_none=True)
    subject_colour = fields.String(metadata={"description": "the subject's colour after the change"})


class NewCategorySchema(Schema):
    code = fields.String(required=True, metadata={"description": "[a-z0-9_]{2,48}"})
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": [k.value for k in RecordKind]})
    applies_to = fields.String(required=True, metadata={"enum": [a.value for a in AppliesTo]})


def admin_record_view(r: CreditRecord) -> dict:
    s = db.session()
    return {**record_view(r), "subject_id": r.subject_id, "external_id": r.external_id,
            "suspension_reason": r.suspension_reason,
            "subject_colour": colours.colour(s, subjects.get(s, r.subject_id)).value}


def _account_view(a):
    return accounts.describe(db.session(), a)


# --- onboarding and declaration reviews ----------------------------------------------------------

@blp.route("/organisations", methods=["GET"])
@blp.arguments(StatusListArgs, location="query")
@blp.response(200, OrganisationPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def list_organisations(args):
    """Organisations, oldest first, optionally of one status (the review queue: status=pending)."""
    auth.require_platform_admin()
    return page_view(organisations.list_organisations(db.session(), **args), organisation_view)


@blp.route("/organisations/<int:organisation_id>/review", methods=["POST"])
@write_limit()
@blp.arguments(ReviewSchema)
@blp.response(200, OrganisationSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def review_organisation(body, organisation_id):
    """Approve, reject or suspend an organisation."""
    actor = auth.require_platform_admin()
    return organisation_view(organisations.review_organisation(db.session(), actor, organisation_id, **body))


@blp.route("/accounts", methods=["GET"])
@blp.arguments(StatusListArgs, location="query")
@blp.response(200, AccountPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def list_accounts(args):
    """Accounts, oldest first, optionally of one status; subjects masked."""
    auth.require_platform_admin()
    return page_view(accounts.list_accounts(db.session(), **args), _account_view)


@blp.route("/accounts/<int:account_id>/review", methods=["POST"])
@write_limit()
@blp.arguments(ReviewSchema)
@blp.response(200, AccountSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def review_account(body, account_id):
    """Approve, reject or suspend a registration."""
    actor = auth.require_platform_admin()
    return _account_view(accounts.review_account(db.session(), actor, account_id, **body))


@blp.route("/declarations", methods=["GET"])
@blp.arguments(DeclarationListArgs, location="query")
@blp.response(200, DeclarationPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def list_declarations(args):
    """Honour declarations, oldest first, optionally of one status."""
    auth.require_platform_admin()
    return page_view(declarations.list_declarations(db.session(), **args), declaration_view)


@blp.route("/declarations/<int:declaration_id>/review", methods=["POST"])
@write_limit()
@blp.arguments(ReviewSchema)
@blp.response(200, DeclarationSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def review_declaration(body, declaration_id):
    """Approve (a record is made and the colour refreshed) or reject with a reason; pending only."""
    actor = auth.require_platform_admin()
    return declaration_view(declarations.review_declaration(db.session(), actor, declaration_id, **body))


# --- subjects, records, categories ---------------------------------------------------------------

@blp.route("/subjects/lookup", methods=["POST"])
@write_limit()
@blp.arguments(LookupSchema)
@blp.response(200, SubjectFile)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def lookup(body):
    """Find a subject by ID number or credit code (hashed look-up); includes the clear name."""
    auth.require_platform_admin()
    subject = records.lookup_subject(db.session(), keys(), body["identifier"])
    return {**subject_detail(subject.id), "full_name": subjects.full_name(keys(), subject)}


@blp.route("/records", methods=["POST"])
@write_limit()
@blp.arguments(AddRecordSchema)
@blp.response(201, AdminRecordSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def add_record(body):
    """Add an honour or bad record to a subject."""
    actor = auth.require_platform_admin()
    return admin_record_view(records.add_record(db.session(), actor, **body))


@blp.route("/records/<int:record_id>/repair", methods=["POST"])
@write_limit()
@blp.arguments(RepairSchema)
@blp.response(200, AdminRecordSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def repair(body, record_id):
    """信用修复: the bad record stops counting from repaired_on."""
    actor = auth.require_platform_admin()
    return admin_record_view(records.repair(db.session(), actor, record_id, **body))


@blp.route("/records/<int:record_id>/suspend", methods=["POST"])
@write_limit()
@blp.arguments(SuspendSchema)
@blp.response(200, AdminRecordSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def suspend(body, record_id):
    """暂缓: the bad record does not count from suspended_on through suspended_until."""
    actor = auth.require_platform_admin()
    return admin_record_view(records.suspend(db.session(), actor, record_id, **body))


@blp.route("/records/<int:record_id>/lift-suspension", methods=["POST"])
@write_limit()
@blp.response(200, AdminRecordSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def lift_suspension(record_id):
    """End the suspension: the record counts again from today."""
    actor = auth.require_platform_admin()
    return admin_record_view(records.lift_suspension(db.session(), actor, record_id))


@blp.route("/categories", methods=["POST"])
@write_limit()
@blp.arguments(NewCategorySchema)
@blp.response(201, CategorySchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 409, 422)
def create_category(body):
    """Add a category of honour or bad record."""
    actor = auth.require_platform_admin()
    return category_view(records.create_category(db.session(), actor, **body))
