"""My contact points: the e-mail address and mobile number notices may also go to, given with consent."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import contacts
from handlers.models import ContactKind, ContactPoint

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, errors_doc, keys

PREFIX = "/me/contacts"
blp = Blueprint("contacts", __name__, description="My e-mail and mobile for notices (with consent)")


class ContactSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": [k.value for k in ContactKind]})
    address = fields.String(metadata={"description": "masked (c***@example.com, 138****8000); never shown in clear"})
    consent_text = fields.String(metadata={"description": "what I agreed to, word for word"})
    consent_at = fields.DateTime()


class ContactList(Schema):
    items = fields.List(fields.Nested(ContactSchema))
    consent = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "per kind, the text to show and have agreed to before adding an address"})


class NewContactSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": [k.value for k in ContactKind]})
    address = fields.String(required=True, metadata={"description": "e-mail address, or 11-digit mainland mobile"})
    consent = fields.Boolean(required=True, metadata={"description": "true: I agree to the consent text of this kind"})


def contact_view(p: ContactPoint) -> dict:
    return {"id": p.id, "kind": p.kind.value, "address": p.address_masked, "consent_text": p.consent_text,
            "consent_at": p.consent_at}


@blp.route("", methods=["GET"])
@blp.response(200, ContactList)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403)
def my_contacts():
    """My contact points (masked), and the consent texts."""
    a = auth.account()
    return {"items": [contact_view(p) for p in contacts.contacts_of(db.session(), a.id)],
            "consent": {k.value: text for k, text in contacts.CONSENT_TEXT.items()}}


@blp.route("", methods=["POST"])
@write_limit()
@blp.arguments(NewContactSchema)
@blp.response(201, ContactSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def add_contact(body):
    """Give (or replace) my e-mail or mobile, agreeing to the consent text; stored sealed, shown masked."""
    a = auth.account()
    return contact_view(contacts.set_contact(db.session(), keys(), a, body["kind"], body["address"],
                                             consent=body["consent"]))


@blp.route("/<int:contact_id>", methods=["DELETE"])
@write_limit()
@blp.response(204)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def remove(contact_id: int):
    """Remove one of my contact points: the address is forgotten and its consent withdrawn."""
    contacts.remove_contact(db.session(), auth.account(), contact_id)
