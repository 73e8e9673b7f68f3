"""Dynamic credit codes over HTTP: tokens (one or an offline batch), QR images, the public keys, revocation."""
from __future__ import annotations

import math
from datetime import datetime

from flask import Response, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import codes, render, signing, subjects, timeutil
from handlers.models import Subject
from handlers.signing import IssuedCode, KeyRing

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, errors_doc

# Three roots (/codes, /keys, /me/code), so the blueprint sits at /api/v1 itself.
PREFIX = ""
blp = Blueprint("codes", __name__, description="Dynamic credit codes and the keys that verify them")

KEYS_MAX_AGE = 60  # seconds a verifier may cache the key set; a new key is published before it signs


def keyring() -> KeyRing:
    return current_app.extensions["xinma.keyring"]


class CodeArgs(Schema):
    subject_id = fields.Integer(load_default=None, metadata={
        "description": "an enterprise the account is agent of; default: the account's own subject"})


class BatchArgs(CodeArgs):
    batch = fields.Integer(load_default=1, metadata={
        "description": "consecutive windows to issue, for a phone that goes offline; at most 10 minutes' worth "
                       "(20 at the default 30 s window), else bad_batch"})


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "what the QR code carries (docs/code-format.md)"})
    valid_from = fields.DateTime()
    valid_until = fields.DateTime()


class CodesSchema(Schema):
    tokens = fields.List(fields.Nested(TokenSchema), metadata={"description": "the current window first"})
    refresh_after = fields.Integer(metadata={"description": "seconds until the current window ends"})
    window = fields.Integer(metadata={"description": "seconds each token is valid"})
    colour = fields.String(metadata={"enum": ["green", "blue", "red"], "description": "as of issue"})
    kind = fields.String()
    grade = fields.String(allow_none=True)
    name = fields.String(metadata={"description": "masked display name"})


class JwkSchema(Schema):
    kty = fields.String()
    crv = fields.String()
    alg = fields.String()
    use = fields.String()
    kid = fields.String(metadata={"description": "the token's key id, in decimal"})
    x = fields.String(metadata={"description": "the 32-byte public key, base64url without padding"})
    status = fields.String(metadata={"enum": ["active", "retired"]})
    created_at = fields.String()
    verify_until = fields.String(allow_none=True, metadata={"description": "retired keys: last instant they "
                                                                           "verify; null: active"})


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema))


class RotatedSchema(Schema):
    rotated_at = fields.DateTime()


def _issue(subject_id: int | None, count: int) -> tuple[Subject, list[IssuedCode], datetime]:
    s = db.session()
    subject = subjects.get(s, auth.holder_subject(subject_id))
    at = timeutil.now()
    issued = signing.issue_codes(s, keyring(), subject, count=count, window=current_app.config["CODE_WINDOW"],
                                 at=at)
    return subject, issued, at


@blp.route("/codes", methods=["POST"])
@write_limit()
@blp.arguments(BatchArgs, location="query")
@blp.response(200, CodesSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 422)
def issue(args):
    """My current code (or my enterprise's), with ``?batch=N`` the next N windows for offline display."""
    subject, issued, at = _issue(args["subject_id"], args["batch"])
    claims, _, _ = codes.parse(issued[0].token)  # what the token says is what the holder is shown
    return {
        "tokens": [{"token": c.token, "valid_from": c.valid_from, "valid_until": c.valid_until} for c in issued],
        "refresh_after": max(1, math.ceil((issued[0].valid_until - at).total_seconds())),
        "window": claims.lifetime, "colour": claims.colour, "kind": claims.kind, "grade": claims.grade,
        "name": subject.name_masked,
    }


def _image(args, kind: str) -> Response:
    subject, (code,), at = _issue(args["subject_id"], 1)
    colour = codes.parse(code.token)[0].colour
    caption = f"{subject.name_masked} · {at.astimezone(timeutil.LOCAL):%Y-%m-%d %H:%M:%S}"
    if kind == "png":
        response = Response(render.png(code.token, colour=colour, caption=caption), mimetype="image/png")
    else:
        response = Response(render.svg(code.token, colour=colour, caption=caption), mimetype="image/svg+xml")
    # A code is a credential for 30 seconds: no cache, proxy or browser history may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/codes/current.png", methods=["GET"])
@blp.arguments(CodeArgs, location="query")
@blp.response(200, content_type="image/png", description="the QR code framed in its colour, named in words")
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def current_png(args):
    """My current code as a PNG (chat replies, kiosks). The mini-program renders the token itself."""
    return _image(args, "png")


@blp.route("/codes/current.svg", methods=["GET"])
@blp.arguments(CodeArgs, location="query")
@blp.response(200, content_type="image/svg+xml", description="the QR code framed in its colour, named in words")
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def current_svg(args):
    """My current code as SVG."""
    return _image(args, "svg")


@blp.route("/keys", methods=["GET"])
@blp.response(200, JwksSchema)
def keys():
    """The public keys that verify codes (JWK, OKP/Ed25519), retired ones until their last token expired.

    Public and cacheable for a minute. A verifier that meets an unknown ``kid`` should fetch again.
    """
    s = db.session()
    keyring().signer(s)  # never publish an empty set: the first key is made before anyone asks for a code
    return {"keys": signing.jwks(s)}, 200, {"Cache-Control": f"public, max-age={KEYS_MAX_AGE}"}


@blp.route("/me/code/rotate", methods=["POST"])
@write_limit()
@blp.arguments(CodeArgs, location="query")
@blp.response(200, RotatedSchema)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def rotate(args):
    """Revoke every outstanding code of my subject (lost phone): tokens already issued are refused as revoked."""
    s = db.session()
    subject = subjects.get(s, auth.holder_subject(args["subject_id"]))
    handle = signing.rotate_handle(s, subject)
    return {"rotated_at": handle.created_at}
