"""Codes over HTTP: issuing and offline batches, QR images a real decoder reads, the public keys, revocation."""
from __future__ import annotations

import base64
import io
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime

import base45
import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from PIL import Image

from handlers.models import Role

# Accounts sign in with bearer tokens here: no password, no slow hashing.
from ..conftest import (
    add_record, auth_headers, create_account, create_incentive, create_organisation, create_subject,
)

COLOUR_WORDS = {"green": "绿码", "blue": "蓝码", "red": "红码"}


def holder(db, colour="blue", **kw):
    """A citizen whose subject has ``colour``, and the headers to act as them."""
    subject = create_subject(db, **kw)
    if colour != "blue":
        add_record(db, subject, kind="honour" if colour == "green" else "bad")
    account = create_account(db, password=None, subject=subject)
    return subject, auth_headers(db, account)


def published_keys(client) -> dict[int, Ed25519PublicKey]:
    r = client.get("/api/v1/keys")
    assert r.status_code == 200
    return {int(k["kid"]): Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(k["x"] + "=="))
            for k in r.json["keys"]}


def verify_like_a_third_party(token: str, keys: dict[int, Ed25519PublicKey]) -> dict:
    """docs/code-format.md, with nothing from our code: prefix, Base45, 88 bytes, kid, signature."""
    assert token.startswith("XM:") and len(token) == 135
    raw = base45.b45decode(token[3:])
    assert len(raw) == 88 and raw[0] == 1
    kid = int.from_bytes(raw[1:3], "big")
    keys[kid].verify(raw[24:], raw[:24])  # raises InvalidSignature
    flags = raw[11]
    return {"kid": kid, "colour": ("blue", "green", "red")[flags & 3], "kind": flags >> 2 & 3,
            "not_before": int.from_bytes(raw[12:16], "big"), "lifetime": int.from_bytes(raw[16:18], "big")}


def test_my_current_code(client, db):
    subject, headers = holder(db, "green")
    r = client.post("/api/v1/codes", headers=headers)
    assert r.status_code == 200, r.json
    body = r.json
    assert (body["colour"], body["kind"], body["grade"], body["name"], body["window"]) == (
        "green", "person", None, subject.name_masked, 30)
    assert len(body["tokens"]) == 1 and 1 <= body["refresh_after"] <= 30
    token = body["tokens"][0]
    claims = verify_like_a_third_party(token["token"], published_keys(client))
    assert claims["colour"] == "green" and claims["lifetime"] == 30
    assert datetime.fromisoformat(token["valid_from"]).timestamp() == claims["not_before"]


def test_a_batch_of_twenty_windows_all_verify_and_twenty_one_is_refused(client, db):
    _, headers = holder(db)
    r = client.post("/api/v1/codes?batch=20", headers=headers)
    assert r.status_code == 200, r.json
    tokens = r.json["tokens"]
    assert len(tokens) == 20 and len({t["token"] for t in tokens}) == 20
    keys = published_keys(client)
    starts = [verify_like_a_third_party(t["token"], keys)["not_before"] for t in tokens]
    assert starts == [starts[0] + 30 * i for i in range(20)]
    assert all(a["valid_until"] == b["valid_from"] for a, b in zip(tokens, tokens[1:]))

    for batch in (21, 0, -1, 10**12):
        r = client.post(f"/api/v1/codes?batch={batch}", headers=headers)
        assert (r.status_code, r.json["error"]["code"]) == (422, "bad_batch")
    assert client.post("/api/v1/codes?batch=x", headers=headers).json["error"]["code"] == "validation_failed"


def test_the_window_is_a_setting(make_app, db):
    _, headers = holder(db)
    client = make_app(CODE_WINDOW=60).test_client()
    r = client.post("/api/v1/codes?batch=10", headers=headers)
    assert r.status_code == 200 and r.json["window"] == 60 and len(r.json["tokens"]) == 10
    assert client.post("/api/v1/codes?batch=11", headers=headers).json["error"]["code"] == "bad_batch"


def test_an_enterprise_agent_gets_the_enterprise_code_and_nobody_else_does(client, db):
    enterprise = create_subject(db, kind="enterprise", grade="A")
    agent = create_account(db, password=None, role=Role.enterprise_agent, subject=enterprise)
    r = client.post(f"/api/v1/codes?subject_id={enterprise.id}", headers=auth_headers(db, agent))
    assert r.status_code == 200, r.json
    assert (r.json["kind"], r.json["grade"], r.json["name"]) == ("enterprise", "A", enterprise.name_masked)

    _, stranger = holder(db)
    r = client.post(f"/api/v1/codes?subject_id={enterprise.id}", headers=stranger)
    assert (r.status_code, r.json["error"]["code"]) == (404, "subject_not_found")
    r = client.get(f"/api/v1/codes/current.png?subject_id={enterprise.id}", headers=stranger)
    assert r.status_code == 404


def test_who_may_not_have_a_code(client, db):
    assert client.post("/api/v1/codes").status_code == 401
    clerk = create_account(db, password=None, role=Role.clerk, organisation_id=create_organisation(db).id)
    r = client.post("/api/v1/codes", headers=auth_headers(db, clerk))
    assert (r.status_code, r.json["error"]["code"]) == (409, "no_subject")
    from handlers.models import Status
    pending = create_account(db, password=None, subject=create_subject(db), status=Status.pending)
    r = client.post("/api/v1/codes", headers=auth_headers(db, pending))
    assert (r.status_code, r.json["error"]["code"]) == (403, "account_not_active")


@pytest.mark.parametrize("colour", ["green", "blue", "red"])
def test_every_png_decodes_back_to_a_valid_token_of_its_colour(client, db, colour):
    subject, headers = holder(db, colour)
    r = client.get("/api/v1/codes/current.png", headers=headers)
    assert r.status_code == 200
    assert r.mimetype == "image/png" and r.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(r.data))
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1 and found[0].format == zxingcpp.BarcodeFormat.QRCode
    token = found[0].text
    assert verify_like_a_third_party(token, published_keys(client))["colour"] == colour
    # The frame is the colour (top-left pixel), not only the words.
    from handlers.render import COLOUR_RGB
    assert image.convert("RGB").getpixel((2, 2)) == COLOUR_RGB[colour]


@pytest.mark.parametrize("colour", ["green", "blue", "red"])
def test_svg_is_well_formed_and_names_the_colour(client, db, colour):
    subject, headers = holder(db, colour)
    r = client.get("/api/v1/codes/current.svg", headers=headers)
    assert r.status_code == 200
    assert r.mimetype == "image/svg+xml" and r.headers["Cache-Control"] == "no-store"
    root = ET.fromstring(r.data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert COLOUR_WORDS[colour] in texts
    assert any(t.startswith(subject.name_masked + " · 20") for t in texts)  # masked name · local time


def test_keys_are_public_cacheable_jwks(client, db):
    r = client.get("/api/v1/keys")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=60"
    (key,) = r.json["keys"]  # the first key exists before anyone asked for a code
    assert {k: key[k] for k in ("kty", "crv", "alg", "status")} == {
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "status": "active"}
    assert len(base64.urlsafe_b64decode(key["x"] + "=")) == 32


def test_rotating_my_code_revokes_every_outstanding_token(client, db):
    org = create_organisation(db)
    clerk = auth_headers(db, create_account(db, password=None, role=Role.clerk, organisation_id=org.id))
    incentive = create_incentive(db, org, limit_count=None)
    subject, headers = holder(db, "green")
    old = client.post("/api/v1/codes?batch=3", headers=headers).json["tokens"]

    r = client.post("/api/v1/me/code/rotate", headers=headers)
    assert r.status_code == 200 and r.json["rotated_at"]

    def redeem(token):
        return client.post("/api/v1/redemptions", headers=clerk, json={
            "token": token, "incentive_id": incentive.id, "idempotency_key": uuid.uuid4().hex}).json

    assert redeem(old[0]["token"])["reason"] == "revoked"  # later windows are not yet valid anyway
    new = client.post("/api/v1/codes", headers=headers).json["tokens"][0]["token"]
    assert redeem(new)["status"] == "redeemed"
