"""The issue's "done when", over HTTP against a database whose commits are real: in the demo, the court serves a
document on enterprise-a; the outbox worker pushes it to every committed address (the WeChat emulator, a real SMTP
server, the SMS gateway) and the in-app notice; the agent opens and acknowledges it; the court downloads a receipt
whose chain verifies (`xinma evidence verify`); a row tampered with in the database is then named."""
# ruff: noqa: F811 - pytest fixtures are imported, then named as arguments
from __future__ import annotations

import email
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from handlers import channels, demo, evidence, service_address
from handlers.models import Account, EvidenceEntry, LegalDocument, Notice, OutboxMessage, OutboxState, WeChatIdentity
from tests import outbox_support
from tests.conftest import KEYS, SECRET
from tests.documents_support import PDF, disable_triggers, legal_engine, legal_url  # noqa: F401 - fixtures
from tests.outbox_support import make_senders, make_worker, sms_gateway, smtp_server  # noqa: F401 - fixtures
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures
from webhooks import create_app
from webhooks.cli import main as cli

CASE = "（2026）粤13民初8号"


@pytest.fixture
def demo_app(legal_url, legal_engine, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": legal_url, "SECRET_KEY": SECRET, "DEMO": True,
                      "INSTANCE_PATH": str(tmp_path / "instance"), "RATELIMIT_ENABLED": False})
    with app.extensions["xinma.sessionmaker"]() as s:
        demo.seed(s, KEYS)
        s.commit()
    yield app
    app.extensions["xinma.engine"].dispose()


@pytest.fixture
def xinma(legal_url, tmp_path, monkeypatch):
    monkeypatch.setenv("XINMA_DATABASE_URL", legal_url)
    monkeypatch.setenv("XINMA_SECRET_KEY", SECRET)
    monkeypatch.setenv("XINMA_INSTANCE_PATH", str(tmp_path / "instance"))

    def run(*args):
        return CliRunner().invoke(cli, list(args))
    return run


def _login(client, login: str) -> dict:
    r = client.post("/api/v1/session/demo", json={"account": login})
    assert r.status_code == 201, r.json
    return {"Authorization": f"Bearer {r.json['token']}"}


def _mail_text(mail) -> str:
    msg = email.message_from_bytes(mail.data)
    parts = msg.walk() if msg.is_multipart() else [msg]
    return "\n".join(p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
                     for p in parts if p.get_content_type() == "text/plain")


def test_the_court_serves_the_agent_acknowledges_the_receipt_verifies(demo_app, legal_engine, emulator, smtp_server,
                                                                      sms_gateway, xinma):
    client = demo_app.test_client()
    court, agent = _login(client, "court"), _login(client, "enterprise-a")
    with Session(legal_engine) as s, s.begin():
        agent_id = s.scalar(text("SELECT id FROM account WHERE login = 'enterprise-a'"))
        openid = emulator.user(emulator.config.miniprogram_appid)  # the agent uses the mini-program
        s.add(WeChatIdentity(appid=emulator.config.miniprogram_appid, openid=openid, account_id=agent_id))

    # The demo's enterprise-a has committed its address (its agent's WeChat, an e-mail, a mobile).
    subject_id = client.get("/api/v1/me", headers=agent).json["roles"][0]["subject_id"]
    address = client.get(f"/api/v1/enterprises/{subject_id}/service-address", headers=agent).json
    assert [a["channel"] for a in address["commitment"]["addresses"]] == ["wechat", "email", "sms"]

    # The court serves a document on it, naming it by its credit code.
    r = client.post("/api/v1/documents", headers=court, content_type="multipart/form-data", data={
        "case_number": CASE, "title": "民事判决书", "identifier": demo.identifier("pengcheng-electronics"),
        "file": (__import__("io").BytesIO(PDF), "判决书.pdf")})
    assert r.status_code == 201, r.json
    doc = r.json
    assert doc["subject"]["id"] == subject_id and doc["issuer"]["name"] == "惠州市中级人民法院"

    # The outbox worker delivers: every committed address at once, and the notice to the agent.
    senders = make_senders(legal_engine, emulator=emulator, smtp=smtp_server, sms=sms_gateway)
    try:
        done = make_worker(legal_engine, senders).drain()
    finally:
        channels.close_all(senders)
        outbox_support._SENDERS.remove(senders)
    assert done.outcomes["sent"] >= 4 and not done.outcomes.get("dead")
    with Session(legal_engine) as s:
        notice = s.scalar(select(Notice).where(Notice.subject_id == subject_id, Notice.kind == "legal_document"))
        assert notice.body["document_id"] == doc["id"] and notice.fanout_at is not None
        messages = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "legal_document")).all()
        assert messages and {m.state for m in messages} == {OutboxState.sent}
        # Sent: the links' tokens are no longer kept in clear anywhere.
        assert [m.payload["url"].rsplit("/", 1)[1] for m in messages if m.channel.value in ("email", "sms")] \
            == ["[sent]", "[sent]"]
    pushes = [m for m in emulator.inbox(openid) if m["kind"] == "subscribe"]
    assert pushes and all(p["page"] == f"/app/#/documents/{doc['id']}" for p in pushes)
    (mail,) = [m for m in smtp_server.mails if m.recipients == [service_address.DEMO_EMAIL]]
    link = re.search(r"https?://\S+/d/[A-Za-z0-9_-]{40,}", _mail_text(mail)).group(0)
    assert CASE in _mail_text(mail)
    assert list(sms_gateway.phones) == [service_address.DEMO_MOBILE]

    # The agent sees it, opens it and acknowledges it with one click.
    listed = client.get("/api/v1/documents", headers=agent).json["items"]
    assert [d["id"] for d in listed] == [doc["id"]]
    assert client.get(f"/api/v1/documents/{doc['id']}", headers=agent).json["opened_at"]
    assert client.get(f"/api/v1/documents/{doc['id']}/content", headers=agent).data == PDF
    r = client.post(f"/api/v1/documents/{doc['id']}/acknowledge", headers=agent)
    assert r.status_code == 200 and r.json["status"] == "honoured"
    # The e-mail's link works too, once.
    token = link.rsplit("/d/", 1)[1]
    assert client.post(f"/d/{token}").status_code == 303
    assert client.get("/d/view").status_code == 200

    # The court downloads the receipt: delivered before it was opened, so service was complete on delivery.
    ev = client.get(f"/api/v1/documents/{doc['id']}/evidence", headers=court).json
    assert ev["verification"]["ok"] is True
    receipt = ev["receipt"]
    assert receipt["deemed_served_basis"] == "delivered"
    assert {c["channel"] for c in receipt["channels"] if c["delivered_at"]} == {"wechat", "email", "sms"}
    assert receipt["opened_at"] and receipt["acknowledged_at"]
    html = client.get(f"/api/v1/documents/{doc['id']}/evidence?format=html", headers=court)
    assert "送达回证" in html.get_data(as_text=True) and CASE in html.get_data(as_text=True)
    head = f"{ev['head']['seq']}:{ev['head']['hash']}"

    # The whole chain verifies, and still holds the head the receipt carries.
    r = xinma("evidence", "verify", "--head", head, "--no-progress")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ok: ")
    assert xinma("documents", "close-overdue").output.startswith("0 documents")

    # An insider edits one entry in the database: verify names it and fails.
    with Session(legal_engine) as s, s.begin():
        victim = s.scalar(select(EvidenceEntry.seq).where(EvidenceEntry.document_id == doc["id"],
                                                          EvidenceEntry.event == "acknowledged"))
        disable_triggers(s.connection())
        s.execute(text("UPDATE evidence_entry SET at = :at WHERE seq = :seq"),
                  {"at": "2020-01-01 00:00:00", "seq": victim})
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("ALTER TABLE evidence_entry ENABLE TRIGGER USER"))
    r = xinma("evidence", "verify", "--no-progress")
    assert r.exit_code == 1
    assert f"entry {victim}: edited" in r.output
    # … and so does the court's next export of this document.
    ev = client.get(f"/api/v1/documents/{doc['id']}/evidence", headers=court).json
    assert ev["verification"]["ok"] is False and ev["verification"]["broken"].startswith(f"entry {victim}")


@pytest.mark.parametrize("how", ["edit", "delete", "reorder"])
def test_verify_from_the_command_line_names_what_was_tampered_with(demo_app, legal_engine, xinma, how):
    with Session(legal_engine) as s:
        seqs = s.scalars(select(EvidenceEntry.seq).order_by(EvidenceEntry.seq)).all()
    assert len(seqs) >= 1  # the demo's commitment
    # Some more entries, so that there is a middle to tamper with.
    with Session(legal_engine) as s, s.begin():
        for i in range(4):
            evidence.append(s, "test_event", actor="system", payload={"i": i})
    r = xinma("evidence", "verify", "--no-progress")
    assert r.exit_code == 0 and r.output.startswith(f"ok: {len(seqs) + 4} entries")
    head_before = xinma("evidence", "head").output.strip()
    target = seqs[-1] + 2
    statements = {
        "edit": ["UPDATE evidence_entry SET payload = '{\"i\": 7}' WHERE seq = :t"],
        "delete": ["DELETE FROM evidence_entry WHERE seq = :t"],
        "reorder": ["UPDATE evidence_entry SET seq = -1 WHERE seq = :t",
                    "UPDATE evidence_entry SET seq = :t WHERE seq = :t + 1",
                    "UPDATE evidence_entry SET seq = :t + 1 WHERE seq = -1"],
    }[how]
    with Session(legal_engine) as s, s.begin():
        disable_triggers(s.connection())
        for statement in statements:
            s.execute(text(statement), {"t": target})
    r = xinma("evidence", "verify", "--no-progress")
    assert r.exit_code == 1, r.output
    named = int(re.search(r"entry (\d+):", r.output).group(1))
    assert named == (target + 1 if how == "delete" else target)
    if how != "delete":
        assert xinma("evidence", "verify", "--head", head_before, "--no-progress").exit_code == 1


def test_head_and_bad_arguments(demo_app, xinma):
    out = xinma("evidence", "head").output.strip()
    seq, digest = out.split(":")
    assert seq.isdigit() and len(digest) == 64
    r = xinma("evidence", "verify", "--head", "12:not-a-hash")
    assert r.exit_code == 2 and "--head" in r.output
    r = xinma("evidence", "verify", "--head", f"{int(seq) + 5}:{'a' * 64}", "--no-progress")
    assert r.exit_code == 1 and "cut short" in r.output


def test_close_overdue_from_the_command_line(demo_app, legal_engine, xinma, tmp_path):
    from datetime import timedelta

    from handlers import documents as ops
    from handlers import timeutil
    from handlers.storage import FileSystemStore
    with Session(legal_engine) as s, s.begin():
        court = s.scalar(select(Account).where(Account.login == "court"))
        doc = ops.serve(s, KEYS, FileSystemStore(tmp_path / "docs"), court, ops.Settings(link_base="http://x"),
                        data=PDF, identifier=demo.identifier("pengcheng-electronics"), case_number=CASE, title="传票")
        doc.deadline_at = timeutil.now() - timedelta(seconds=1)  # as if the days had passed
        doc_id = doc.id
    r = xinma("documents", "close-overdue")
    assert r.exit_code == 0 and r.output.strip() == f"1 documents closed as evaded: {doc_id}"
    assert xinma("documents", "close-overdue").output.startswith("0 documents")
    with Session(legal_engine) as s:
        assert s.get(LegalDocument, doc_id).status.value == "evaded"
    assert xinma("evidence", "verify", "--no-progress").exit_code == 0
