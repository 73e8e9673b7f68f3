"""Pieces every API module uses: keys, schemas of the error and the pagination, the security marker,
and the views of subjects and records that several endpoints show."""
from __future__ import annotations

from flask import current_app
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from handlers import paging, subjects
from handlers.models import MAX_ID, CreditRecord
from handlers.privacy import Keys

from .. import db

BEARER = [{"bearer": []}]


def keys() -> Keys:
    return current_app.extensions["xinma.keys"]


class ApiErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class ApiError(Schema):
    """Every error: {\"error\": {\"code\", \"message\"}}."""

    error = fields.Nested(ApiErrorBody, required=True)


class SubjectSummary(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String(metadata={"description": "masked display name (张*明)"})
    identifier = fields.String(metadata={"description": "masked identifier (4413**********123X)"})
    colour = fields.String(metadata={"enum": ["green", "blue", "red"]})
    grade = fields.String(allow_none=True)
    grade_evaluated_on = fields.String(allow_none=True)
    risk_level = fields.String(allow_none=True)


class RoleSchema(Schema):
    role = fields.String()
    organisation_id = fields.Integer(allow_none=True)
    subject_id = fields.Integer(allow_none=True)


class AccountSchema(Schema):
    id = fields.Integer()
    login = fields.String()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    roles = fields.List(fields.Nested(RoleSchema))
    subject = fields.Nested(SubjectSummary, allow_none=True)


def errors_doc(blp, *statuses: int):
    """Document the error responses an endpoint can give."""
    def deco(f):
        for status in statuses:
            f = blp.alt_response(status, schema=ApiError, description="error")(f)
        return f
    return deco


# --- pagination ----------------------------------------------------------------------------------

class PageArgs(Schema):
    limit = fields.Integer(load_default=paging.DEFAULT_LIMIT, validate=validate.Range(1, paging.MAX_LIMIT),
                           metadata={"description": f"at most {paging.MAX_LIMIT}"})
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_ID))


def page_schema(name: str, item: type[Schema]) -> type[Schema]:
    """The schema of a page of ``item``: {items, total, limit, offset}. ``name`` must be unique (OpenAPI)."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item)),
        "total": fields.Integer(),
        "limit": fields.Integer(),
        "offset": fields.Integer(),
    }, name=name)


def page_view(page: paging.Page, view) -> dict:
    return {"items": [view(x) for x in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


# --- subjects and their records ------------------------------------------------------------------

class RecordSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    category = fields.String()
    category_name = fields.String()
    source = fields.String()
    effective_on = fields.Date()
    published_until = fields.Date(allow_none=True)
    repaired_on = fields.Date(allow_none=True)
    repair_reason = fields.String(allow_none=True)
    suspended_on = fields.Date(allow_none=True)
    suspended_until = fields.Date(allow_none=True)


class SubjectDetail(SubjectSummary):
    records = fields.List(fields.Nested(RecordSchema))


def record_view(r: CreditRecord) -> dict:
    return {
        "id": r.id, "kind": r.kind.value, "category": r.category_code, "category_name": r.category.name,
        "source": r.source, "effective_on": r.effective_on, "published_until": r.published_until,
        "repaired_on": r.repaired_on, "repair_reason": r.repair_reason,
        "suspended_on": r.suspended_on, "suspended_until": r.suspended_until,
    }


def subject_detail(subject_id: int) -> dict:
    """Masked summary, colour now and every record: what the subject itself and its agents see."""
    s = db.session()
    subject = subjects.get(s, subject_id)
    records = s.scalars(select(CreditRecord).where(CreditRecord.subject_id == subject.id)
                        .order_by(CreditRecord.effective_on.desc(), CreditRecord.id))
    return {**subjects.summary(s, subject), "records": [record_view(r) for r in records]}
