"""Organisations (入驻申请) and the members their admins manage."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import organisations, subjects, wechat_users
from handlers.wechat import WeChatError
from handlers.errors import DomainError
from handlers.models import Account, Organisation, OrganisationKind

from .. import auth, db, errors
from .. import wechat as wechat_edge
from ..limits import write_limit
from .common import BEARER, PageArgs, SubjectSummary, errors_doc, keys, page_schema, page_view

PREFIX = "/organisations"
blp = Blueprint("organisations", __name__, description="Organisations and their members")


class OrganisationApplySchema(Schema):
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": [k.value for k in OrganisationKind]})
    contact = fields.String(required=True)
    credit_code = fields.String(allow_none=True, load_default=None,
                                metadata={"description": "unified social credit code, if it has one"})


class OrganisationEditSchema(Schema):
    name = fields.String()
    contact = fields.String()


class OrganisationSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    status = fields.String(metadata={"enum": ["pending", "approved", "rejected", "suspended"]})
    status_reason = fields.String(allow_none=True)
    contact = fields.String(allow_none=True)
    subject = fields.Nested(SubjectSummary, allow_none=True)
    created_at = fields.DateTime()
    reviewed_at = fields.DateTime(allow_none=True)


class AddMemberSchema(Schema):
    login = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ["clerk", "org_admin"]})


class MemberSchema(Schema):
    account_id = fields.Integer()
    login = fields.String()
    role = fields.String()
    status = fields.String()


MemberPage = page_schema("MemberPage", MemberSchema)


def organisation_view(organisation: Organisation) -> dict:
    s = db.session()
    subject = subjects.get(s, organisation.subject_id) if organisation.subject_id else None
    return {
        "id": organisation.id, "name": organisation.name, "kind": organisation.kind.value,
        "status": organisation.status.value, "status_reason": organisation.status_reason,
        "contact": organisation.contact, "subject": subjects.summary(s, subject) if subject else None,
        "created_at": organisation.created_at, "reviewed_at": organisation.reviewed_at,
    }


def _member_view(organisation_id: int):
    def view(a: Account) -> dict:
        role = organisations.member_role(a, organisation_id)
        return {"account_id": a.id, "login": a.login, "role": role.value if role else None, "status": a.status.value}
    return view


@blp.route("", methods=["POST"])
@write_limit()
@blp.arguments(OrganisationApplySchema)
@blp.response(201, OrganisationSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def apply(body):
    """Apply for onboarding (入驻); the applicant becomes the organisation's admin. Starts pending."""
    actor = auth.account()
    return organisation_view(organisations.apply_organisation(db.session(), actor, keys=keys(), **body))


@blp.route("/<int:organisation_id>", methods=["GET"])
@blp.response(200, OrganisationSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def show(organisation_id):
    """An organisation, for its admins and clerks (whatever its state) and platform admins."""
    if not organisations.can_see(auth.account(), organisation_id):
        raise DomainError("forbidden")
    return organisation_view(organisations.get(db.session(), organisation_id))


@blp.route("/<int:organisation_id>", methods=["PATCH"])
@write_limit()
@blp.arguments(OrganisationEditSchema)
@blp.response(200, OrganisationSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def edit(body, organisation_id):
    """Change the name or contact (approved organisations only)."""
    actor = auth.require_org_admin(organisation_id)
    return organisation_view(organisations.edit_organisation(db.session(), actor, organisation_id, **body))


@blp.route("/<int:organisation_id>/members", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, MemberPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def members(args, organisation_id):
    """The clerks and admins, by account id."""
    actor = auth.require_org_admin(organisation_id)
    page = organisations.list_members(db.session(), actor, organisation_id, **args)
    return page_view(page, _member_view(organisation_id))


@blp.route("/<int:organisation_id>/members", methods=["POST"])
@write_limit()
@blp.arguments(AddMemberSchema)
@blp.response(201, MemberSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def add_member(body, organisation_id):
    """Make an approved account a clerk or admin here (or change its role here)."""
    actor = auth.require_org_admin(organisation_id)
    member = organisations.add_member(db.session(), actor, organisation_id, **body)
    return _member_view(organisation_id)(member)


@blp.route("/<int:organisation_id>/members/<int:account_id>", methods=["DELETE"])
@write_limit()
@blp.response(204)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def remove_member(organisation_id, account_id):
    """Remove a member; the last admin stays."""
    actor = auth.require_org_admin(organisation_id)
    organisations.remove_member(db.session(), actor, organisation_id, account_id)


class QRCodeSchema(Schema):
    ticket = fields.String()
    url = fields.String(metadata={"description": "what the QR code encodes (render it yourself, or use image_url)"})
    image_url = fields.String(metadata={"description": "WeChat's picture of the code (showqrcode)"})
    expire_seconds = fields.Integer()


class ClerkInviteSchema(Schema):
    id = fields.Integer()
    organisation_id = fields.Integer()
    expires_at = fields.DateTime()
    qrcode = fields.Nested(QRCodeSchema)


@blp.route("/<int:organisation_id>/clerk-invites", methods=["POST"])
@write_limit()
@blp.response(201, ClerkInviteSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 503)
def clerk_invite(organisation_id):
    """A clerk invite: a WeChat parametric QR code; whoever scans it with WeChat becomes a clerk here.

    Single use, valid for 30 minutes. Show it to the clerk only (503 wechat_unavailable when WeChat is down).
    """
    try:
        oa = wechat_edge.official_account(warm=True)  # before the first query: see warm_token
        actor = auth.require_org_admin(organisation_id)
        invite, qr = wechat_users.create_clerk_invite(db.session(), oa, actor, organisation_id)
    except WeChatError:
        return errors.error_response(503, "wechat_unavailable", "微信服务暂时不可用，请稍后再试")
    return {"id": invite.id, "organisation_id": invite.organisation_id, "expires_at": invite.expires_at,
            "qrcode": {"ticket": qr.ticket, "url": qr.url, "image_url": qr.image_url,
                       "expire_seconds": qr.expire_seconds}}
