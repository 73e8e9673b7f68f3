"""The signed-in account and its own subject."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from handlers import accounts, subjects
from handlers.errors import DomainError
from handlers.models import CreditRecord

from .. import auth, db
from .common import BEARER, AccountSchema, SubjectSummary, errors_doc

PREFIX = "/me"
blp = Blueprint("me", __name__, description="The signed-in account")


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
    s = db.session()
    subject = subjects.get(s, subject_id)
    records = s.scalars(select(CreditRecord).where(CreditRecord.subject_id == subject.id)
                        .order_by(CreditRecord.effective_on.desc(), CreditRecord.id))
    return {**subjects.summary(s, subject), "records": [record_view(r) for r in records]}


@blp.route("", methods=["GET"])
@blp.response(200, AccountSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401)
def me():
    """The signed-in account, its roles and its subject (works for accounts still under review)."""
    return accounts.describe(db.session(), auth.account(active=False))


@blp.route("/subject", methods=["GET"])
@blp.response(200, SubjectDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 409)
def my_subject():
    """My own subject: colour now and every record."""
    a = auth.account()
    if a.subject_id is None:
        raise DomainError("no_subject")
    return subject_detail(a.subject_id)
