"""Pieces every API module uses: keys, schemas of the error and the pagination, the security marker."""
from __future__ import annotations

from flask import current_app
from marshmallow import Schema, fields

from handlers.privacy import Keys

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
