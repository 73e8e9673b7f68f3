"""Honour declarations (申报荣誉信息) by citizens and enterprise agents, and their own list of them."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import declarations, subjects
from handlers.models import DeclarationStatus, HonourDeclaration

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, PageArgs, SubjectSummary, errors_doc, page_schema, page_view

# Two roots (/declarations and /me/declarations), so the blueprint sits at /api/v1 itself.
PREFIX = ""
blp = Blueprint("declarations", __name__, description="Honour declarations")


class DeclareSchema(Schema):
    category = fields.String(required=True, metadata={"description": "an honour category's code"})
    title = fields.String(required=True)
    issued_by = fields.String(required=True)
    awarded_on = fields.Date(required=True)
    valid_until = fields.Date(allow_none=True, load_default=None)
    evidence = fields.String(required=True, metadata={"description": "at most 2000 characters"})
    subject_id = fields.Integer(allow_none=True, load_default=None, metadata={
        "description": "an enterprise the account is agent of; default: the account's own subject"})


class DeclarationSchema(Schema):
    id = fields.Integer()
    subject = fields.Nested(SubjectSummary)
    category = fields.String()
    title = fields.String()
    issued_by = fields.String()
    awarded_on = fields.Date()
    valid_until = fields.Date(allow_none=True)
    evidence = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in DeclarationStatus]})
    review_reason = fields.String(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    record_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


DeclarationPage = page_schema("DeclarationPage", DeclarationSchema)


class DeclarationListArgs(PageArgs):
    status = fields.String(metadata={"enum": [s.value for s in DeclarationStatus]})


def declaration_view(d: HonourDeclaration) -> dict:
    s = db.session()
    return {
        "id": d.id, "subject": subjects.summary(s, subjects.get(s, d.subject_id)), "category": d.category_code,
        "title": d.title, "issued_by": d.issued_by, "awarded_on": d.awarded_on, "valid_until": d.valid_until,
        "evidence": d.evidence, "status": d.status.value, "review_reason": d.review_reason,
        "reviewed_at": d.reviewed_at, "record_id": d.record_id, "created_at": d.created_at,
    }


@blp.route("/declarations", methods=["POST"])
@write_limit()
@blp.arguments(DeclareSchema)
@blp.response(201, DeclarationSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def declare(body):
    """Declare an honour for my own subject or my enterprise; a platform admin reviews it."""
    actor = auth.account()
    return declaration_view(declarations.declare(db.session(), actor, **body))


@blp.route("/me/declarations", methods=["GET"])
@blp.arguments(DeclarationListArgs, location="query")
@blp.response(200, DeclarationPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def mine(args):
    """Declarations for my subject and my enterprises, oldest first."""
    actor = auth.account()
    page = declarations.list_declarations(db.session(), subject_ids=declarations.subject_ids_of(actor), **args)
    return page_view(page, declaration_view)
