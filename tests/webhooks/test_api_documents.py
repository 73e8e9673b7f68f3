"""Legal service over HTTP: the service-address API, uploads good and bad, reads and 404s, acknowledgement, the
evidence export and receipt, and the one-time e-mail links."""
import io
import re

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from handlers import evidence, service_address
from handlers.models import (
    Channel, DocumentLink, EvidenceEntry, LegalDocument, OutboxMessage, Role, ServiceAddress, ServiceCommitment,
)

from ..conftest import auth_headers, count, create_account
from ..documents_support import PDF, commit, court, enterprise, png

CASE = "（2026）粤13民初1234号"


def _consent():
    c = service_address.consent()
    return {"consent_version": c["version"], "consent_sha256": c["sha256"]}


def _upload(client, headers, *, data=PDF, filename="judgment.pdf", **form):
    form.setdefault("case_number", CASE)
    form.setdefault("title", "民事起诉状副本及应诉通知书")
    body = {k: str(v) for k, v in form.items() if v is not None}
    if data is not None:
        body["file"] = FileStorage(io.BytesIO(data), filename=filename, content_type="application/octet-stream")
    # Encoded in memory: the test client would spool a large body to a temporary file it never closes.
    boundary, payload = encode_multipart(body)
    return client.post("/api/v1/documents", data=payload, headers=headers,
                       content_type=f"multipart/form-data; boundary={boundary}")


@pytest.fixture
def parties(db):
    org, member = court(db)
    subject, (agent,) = enterprise(db)
    return org, member, subject, agent


# --- the service address ---------------------------------------------------------------------------

def test_commit_change_revoke_over_http(client, db, parties):
    _org, _member, subject, agent = parties
    h = auth_headers(db, agent)
    url = f"/api/v1/enterprises/{subject.id}/service-address"
    r = client.get(url, headers=h)
    assert r.status_code == 200 and r.json["commitment"] is None
    assert r.json["consent"]["sha256"] == service_address.consent_hash(r.json["consent"]["version"])
    r = client.put(url, headers=h, json={"wechat_account_ids": [agent.id], "emails": ["legal@pengcheng.example"],
                                         "mobiles": ["13800138000"], **_consent()})
    assert r.status_code == 200, r.json
    c = r.json["commitment"]
    assert (c["version"], c["status"]) == (1, "active")
    assert [a["address"] for a in c["addresses"]] == [f"微信：{agent.login}", "l***@pengcheng.example",
                                                      "138****8000"]
    assert "13800138000" not in r.get_data(as_text=True)
    r = client.put(url, headers=h, json={"emails": ["court@pengcheng.example"], **_consent()})
    assert r.json["commitment"]["version"] == 2
    history = client.get(url + "/history", headers=h).json["items"]
    assert [(x["version"], x["status"]) for x in history] == [(2, "active"), (1, "superseded")]
    r = client.delete(url, headers=h)
    assert (r.status_code, r.json["status"], r.json["version"]) == (200, "revoked", 2)
    assert client.get(url, headers=h).json["commitment"] is None
    r = client.delete(url, headers=h)
    assert (r.status_code, r.json["error"]["code"]) == (409, "no_service_address")


@pytest.mark.parametrize("body, status, code", [
    ({"emails": ["x@y.example"]}, 422, "validation_failed"),                      # no consent at all
    ({"emails": ["x@y.example"], "consent_version": "2026-11", "consent_sha256": "0" * 64}, 422, "consent_mismatch"),
    ({"emails": [], **_consent()}, 422, "no_service_addresses"),
    ({"emails": ["nope"], **_consent()}, 422, "bad_email"),
    ({"mobiles": ["1380013800"], **_consent()}, 422, "bad_mobile"),
    ({"wechat_account_ids": [999999999], **_consent()}, 422, "not_an_agent"),
    ({"emails": "x@y.example", **_consent()}, 422, "validation_failed"),
])
def test_bad_commitments_write_nothing(client, db, parties, body, status, code):
    _org, _member, subject, agent = parties
    before = count(db, ServiceCommitment), count(db, ServiceAddress), count(db, EvidenceEntry)
    r = client.put(f"/api/v1/enterprises/{subject.id}/service-address", headers=auth_headers(db, agent), json=body)
    assert (r.status_code, r.json["error"]["code"]) == (status, code)
    assert (count(db, ServiceCommitment), count(db, ServiceAddress), count(db, EvidenceEntry)) == before


def test_other_people_get_404_for_an_enterprise_address(client, db, parties, citizen):
    _org, member, subject, _agent = parties
    url = f"/api/v1/enterprises/{subject.id}/service-address"
    for who in (member, citizen):
        h = auth_headers(db, who)
        assert client.get(url, headers=h).json["error"]["code"] == "subject_not_found"
        r = client.put(url, headers=h, json={"emails": ["x@y.example"], **_consent()})
        assert (r.status_code, r.json["error"]["code"]) == (404, "subject_not_found")
    assert client.get(url).status_code == 401


# --- uploads --------------------------------------------------------------------------------------

def test_serve_read_acknowledge_and_export(client, db, parties):
    _org, member, subject, agent = parties
    commit(db, agent, subject)
    court_h, agent_h = auth_headers(db, member), auth_headers(db, agent)
    r = _upload(client, court_h, subject_id=subject.id)
    assert r.status_code == 201, r.json
    doc = r.json
    assert (doc["role"], doc["status"], doc["content_type"]) == ("issuer", "served", "application/pdf")
    assert [c["channel"] for c in doc["channels"]] == ["wechat", "email", "sms"]
    assert doc["subject"]["name"] != "惠州市鹏程智能电子有限公司"  # masked
    # The agent sees it in the list and opens it.
    listed = client.get("/api/v1/documents", headers=agent_h).json
    assert [d["id"] for d in listed["items"]] == [doc["id"]]
    r = client.get(f"/api/v1/documents/{doc['id']}", headers=agent_h)
    assert (r.status_code, r.json["role"]) == (200, "recipient") and r.json["opened_at"]
    r = client.get(f"/api/v1/documents/{doc['id']}/content", headers=agent_h)
    assert r.status_code == 200 and r.data == PDF and r.mimetype == "application/pdf"
    assert r.headers["X-Content-SHA256"] == doc["content_sha256"] and r.headers["X-Content-Type-Options"] == "nosniff"
    r = client.post(f"/api/v1/documents/{doc['id']}/acknowledge", headers=agent_h)
    assert r.status_code == 200 and r.json["acknowledged_at"] and r.json["status"] == "honoured"
    r = client.post(f"/api/v1/documents/{doc['id']}/acknowledge", headers=court_h)
    assert (r.status_code, r.json["error"]["code"]) == (403, "not_the_recipient")
    # The court exports the evidence: the document's chain verifies on its own.
    ev = client.get(f"/api/v1/documents/{doc['id']}/evidence", headers=court_h).json
    assert ev["verification"] == {"ok": True, "document_chain": True, "broken": None, "commitment_entry": True,
                                  "file_sha256": True}
    events = [e["event"] for e in ev["entries"]]
    assert events[0] == "served" and {"opened", "downloaded", "acknowledged", "honoured"} <= set(events)
    assert events[-1] == "evidence_exported"
    assert evidence.verify_document(ev["entries"], content_sha256=doc["content_sha256"]) is None
    assert ev["head"]["seq"] >= ev["entries"][-1]["seq"]
    receipt = ev["receipt"]
    assert receipt["deemed_served_basis"] == "opened" and receipt["acknowledged_at"]
    assert receipt["document"]["case_number"] == CASE
    html = client.get(f"/api/v1/documents/{doc['id']}/evidence?format=html", headers=court_h)
    assert html.status_code == 200 and html.mimetype == "text/html"
    text = html.get_data(as_text=True)
    assert "送达回证" in text and CASE in text and doc["content_sha256"] in text and "通过" in text
    assert evidence.verify(db).ok


def test_uploads_refused_with_codes_and_nothing_written(client, db, parties, make_app):
    _org, member, subject, agent = parties
    h = auth_headers(db, member)
    def counts():
        return count(db, LegalDocument), count(db, EvidenceEntry), count(db, OutboxMessage)

    before = counts()
    r = _upload(client, h, subject_id=subject.id)
    assert (r.status_code, r.json["error"]["code"]) == (409, "no_service_address")
    commit(db, agent, subject)
    before = counts()
    cases = [
        ({"data": b"MZ\x90\x00 not a pdf", "filename": "judgment.pdf"}, 422, "document_type_not_allowed"),
        ({"data": PDF[:40], "filename": "judgment.pdf"}, 422, "document_type_not_allowed"),
        ({"data": None}, 422, "validation_failed"),
        ({"case_number": None}, 422, "validation_failed"),
        ({"case_number": "x" * 65}, 422, "bad_text"),
        ({"subject_id": None}, 422, "subject_required"),
        ({"subject_id": 10**9}, 404, "subject_not_found"),
        ({"identifier": "91441302MA0000000X"}, 422, None),
    ]
    for kw, status, code in cases:
        kw.setdefault("subject_id", subject.id)
        r = _upload(client, h, **kw)
        assert r.status_code == status, (kw, r.json)
        if code:
            assert r.json["error"]["code"] == code, kw
    assert counts() == before
    # JSON is not an upload.
    r = client.post("/api/v1/documents", headers=h, json={"case_number": CASE, "title": "x", "subject_id": 1})
    assert (r.status_code, r.json["error"]["code"]) == (422, "validation_failed")
    # Not an issuer.
    r = _upload(client, auth_headers(db, agent), subject_id=subject.id)
    assert (r.status_code, r.json["error"]["code"]) == (403, "not_an_issuer")
    assert counts() == before


def test_oversized_uploads(make_app, db, parties):
    _org, member, subject, agent = parties
    commit(db, agent, subject)
    client = make_app(DOCUMENT_MAX_BYTES=2048).test_client()
    h = auth_headers(db, member)
    before = count(db, LegalDocument)
    # Over the limit but within the form's overhead: read, then refused by the domain.
    r = _upload(client, h, data=PDF + b" " * 4096, subject_id=subject.id)
    assert (r.status_code, r.json["error"]["code"]) == (422, "document_too_large")
    assert r.json["error"]["detail"]["max_bytes"] == 2048
    # Far over: refused from the Content-Length alone, before the body is read.
    r = _upload(client, h, data=b"%PDF-" + b"0" * (200 * 1024), subject_id=subject.id)
    assert (r.status_code, r.json["error"]["code"]) == (422, "document_too_large")
    # The global 1 MB JSON limit does not apply to a document within its own limit.
    big = make_app(DOCUMENT_MAX_BYTES=3 * 1024 * 1024).test_client()
    r = _upload(big, h, data=PDF[:-7] + b" " * (1536 * 1024) + b"\n%%EOF\n", subject_id=subject.id)
    assert r.status_code == 201, r.json
    assert count(db, LegalDocument) == before + 1


def test_an_image_by_the_identifier(client, db, parties):
    _org, member, subject, agent = parties
    commit(db, agent, subject)
    r = _upload(client, auth_headers(db, member), data=png(), filename="scan.pdf",
                identifier=subject.identifier_for_test)
    assert (r.status_code, r.json["content_type"], r.json["subject"]["id"]) == (201, "image/png", subject.id)


def test_guessed_ids_get_404_like_missing_ones(client, db, parties, citizen):
    _org, member, subject, agent = parties
    commit(db, agent, subject)
    doc = _upload(client, auth_headers(db, member), subject_id=subject.id).json
    _, other_court = court(db, name="深圳前海合作区人民法院")
    _, (stranger,) = enterprise(db)
    before = count(db, EvidenceEntry)
    for who in (citizen, other_court, stranger):
        h = auth_headers(db, who)
        for path in ("", "/content", "/evidence", "/evidence?format=html"):
            r = client.get(f"/api/v1/documents/{doc['id']}{path}", headers=h)
            assert (r.status_code, r.json["error"]["code"]) == (404, "document_not_found"), (who.login, path)
            missing = client.get(f"/api/v1/documents/{doc['id'] + 1000}{path}", headers=h)
            assert missing.json == r.json
        r = client.post(f"/api/v1/documents/{doc['id']}/acknowledge", headers=h)
        assert (r.status_code, r.json["error"]["code"]) == (404, "document_not_found")
        assert client.get("/api/v1/documents", headers=h).json["items"] == []
    assert count(db, EvidenceEntry) == before  # refused reads leave nothing
    assert client.get(f"/api/v1/documents/{doc['id']}").status_code == 401


# --- one-time links -----------------------------------------------------------------------------

def _link_token(db, document_id, channel=Channel.email) -> str:
    m = db.scalar(select(OutboxMessage).where(OutboxMessage.kind == "legal_document", OutboxMessage.channel == channel,
                                              OutboxMessage.payload["document_id"].as_integer() == document_id))
    return m.payload["url"].rsplit("/d/", 1)[1]


def test_an_email_link_opens_once_and_records_each_step(client, db, parties):
    _org, member, subject, agent = parties
    commit(db, agent, subject)
    doc = _upload(client, auth_headers(db, member), subject_id=subject.id).json
    token = _link_token(db, doc["id"])
    # A mail scanner's GET neither uses the link up nor opens the document.
    before = count(db, EvidenceEntry)
    for _ in range(2):
        r = client.get(f"/d/{token}")
        assert r.status_code == 200 and 'method="post"' in r.get_data(as_text=True)
    assert count(db, EvidenceEntry) == before
    r = client.post(f"/d/{token}")
    assert r.status_code == 303 and r.headers["Location"].endswith("/d/view")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/d/" in cookie
    page = client.get("/d/view")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and CASE in text and doc["content_sha256"] in text
    f = client.get("/d/view/content")
    assert f.status_code == 200 and f.data == PDF
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', text).group(1)
    assert client.post("/d/view/acknowledge", data={"csrf": "0" * 64}).status_code == 403
    r = client.post("/d/view/acknowledge", data={"csrf": csrf})
    assert r.status_code == 303
    entries = [e for e in evidence.document_entries(db, doc["id"]) if e.actor.startswith("link:")]
    assert [(e.event, e.channel) for e in entries] == [("opened", "email"), ("downloaded", "email"),
                                                       ("acknowledged", "email")]
    assert db.get(LegalDocument, doc["id"]).acknowledged_at is not None
    # Used up: the link cannot be opened again, by anyone.
    other = client.application.test_client()
    r = other.post(f"/d/{token}")
    assert r.status_code == 409 and 'data-code="link_used"' in r.get_data(as_text=True)
    assert other.get("/d/view").status_code == 409
    assert client.get("/d/" + "x" * 43).status_code == 404
    link = db.scalar(select(DocumentLink).where(DocumentLink.token_hash == __import__("hashlib").sha256(
        token.encode()).hexdigest()))
    assert link.used_at is not None and token not in (link.token_hash, link.session_hash)


def test_link_tokens_stay_out_of_the_access_log(client, db, parties, caplog):
    _org, member, subject, agent = parties
    commit(db, agent, subject)
    doc = _upload(client, auth_headers(db, member), subject_id=subject.id).json
    token = _link_token(db, doc["id"])
    with caplog.at_level("INFO", logger="xinma.access"):
        caplog.clear()  # the upload's own line may be there, depending on what ran before
        client.get(f"/d/{token}")
        client.post(f"/d/{token}")
    paths = [r.path for r in caplog.records if getattr(r, "path", None)]
    assert paths == ["/d/[token]", "/d/[token]"]
    assert token not in caplog.text


def test_an_agent_without_rights_elsewhere_cannot_serve(client, db, parties):
    org, _member, subject, agent = parties
    create_account(db, "someone", role=Role.clerk, organisation_id=org.id)
    commit(db, agent, subject)
    r = _upload(client, auth_headers(db, agent), subject_id=subject.id)
    assert (r.status_code, r.json["error"]["code"]) == (403, "not_an_issuer")
