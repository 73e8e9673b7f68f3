"""An enterprise's electronic service address (送达地址承诺): read, commit or change, revoke, history. Agents only."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import service_address
from handlers.models import ServiceCommitment

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, errors_doc, keys

PREFIX = "/enterprises"
blp = Blueprint("service_address", __name__, description="Electronic service addresses of enterprises (送达地址承诺)")


class ConsentSchema(Schema):
    version = fields.String()
    text = fields.String(metadata={"description": "the exact text the agent agrees to"})
    sha256 = fields.String(metadata={"description": "send it back as consent_sha256 to agree"})


class AddressSchema(Schema):
    position = fields.Integer()
    channel = fields.String(metadata={"enum": ["wechat", "email", "sms"]})
    account_id = fields.Integer(allow_none=True, metadata={"description": "the agent, for wechat"})
    address = fields.String(metadata={"description": "masked (z***@example.com, 138****5678, 微信：<login>)"})


class CommitmentSchema(Schema):
    id = fields.Integer()
    version = fields.Integer()
    status = fields.String(metadata={"enum": ["active", "superseded", "revoked"]})
    committed_by = fields.Integer(metadata={"description": "account id of the agent who committed"})
    consent_version = fields.String()
    consent_sha256 = fields.String()
    consented_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    evidence_seq = fields.Integer(allow_none=True, metadata={"description": "its entry in the evidence log"})
    addresses = fields.List(fields.Nested(AddressSchema))


class ServiceAddressSchema(Schema):
    subject_id = fields.Integer()
    commitment = fields.Nested(CommitmentSchema, allow_none=True, metadata={"description": "in force, if any"})
    consent = fields.Nested(ConsentSchema, metadata={"description": "the current text to agree to"})


class CommitSchema(Schema):
    wechat_account_ids = fields.List(fields.Integer(), load_default=list, metadata={
        "description": "agents of this enterprise whose WeChat receives documents"})
    emails = fields.List(fields.String(), load_default=list)
    mobiles = fields.List(fields.String(), load_default=list)
    consent_version = fields.String(required=True)
    consent_sha256 = fields.String(required=True, metadata={"description": "SHA-256 of the consent text shown"})


class HistorySchema(Schema):
    subject_id = fields.Integer()
    items = fields.List(fields.Nested(CommitmentSchema), metadata={"description": "newest version first"})


def commitment_view(c: ServiceCommitment) -> dict:
    return {
        "id": c.id, "version": c.version, "status": c.status.value, "committed_by": c.committed_by_id,
        "consent_version": c.consent_version, "consent_sha256": c.consent_sha256, "consented_at": c.consented_at,
        "ended_at": c.ended_at, "evidence_seq": c.evidence_seq,
        "addresses": [{"position": a.position, "channel": a.channel.value, "account_id": a.account_id,
                       "address": a.address_masked} for a in service_address.addresses(db.session(), c.id)],
    }


def _current(subject_id: int) -> dict:
    c = service_address.active(db.session(), subject_id)
    return {"subject_id": subject_id, "commitment": commitment_view(c) if c else None,
            "consent": service_address.consent()}


@blp.route("/<int:subject_id>/service-address", methods=["GET"])
@blp.response(200, ServiceAddressSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def show(subject_id):
    """The address in force (masked), and the consent text to agree to when committing."""
    service_address.require_agent(auth.account(), subject_id)
    return _current(subject_id)


@blp.route("/<int:subject_id>/service-address", methods=["PUT"])
@write_limit()
@blp.arguments(CommitSchema)
@blp.response(200, ServiceAddressSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def commit(body, subject_id):
    """Commit to these addresses: a new version, superseding the one in force (which stays in the history)."""
    service_address.commit(db.session(), keys(), auth.account(), subject_id, **body)
    return _current(subject_id)


@blp.route("/<int:subject_id>/service-address", methods=["DELETE"])
@write_limit()
@blp.response(200, CommitmentSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def revoke(subject_id):
    """Revoke the commitment in force; documents served before stay served. 409 no_service_address if none."""
    return commitment_view(service_address.revoke(db.session(), auth.account(), subject_id))


@blp.route("/<int:subject_id>/service-address/history", methods=["GET"])
@blp.response(200, HistorySchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def history(subject_id):
    """Every version, newest first, with when it ended and why (superseded or revoked)."""
    service_address.require_agent(auth.account(), subject_id)
    return {"subject_id": subject_id,
            "items": [commitment_view(c) for c in service_address.history(db.session(), subject_id)]}
