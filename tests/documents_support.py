"""What the legal-service tests share: files of each kind, an issuing court, an enterprise with agents and a
commitment, a store in the test's folder, and a way to tamper with the evidence log as an insider would."""
from __future__ import annotations

import io
import os
import uuid

import pytest
from sqlalchemy import text

from handlers import documents, migrate, service_address
from handlers.db import make_engine, scratch_schema
from handlers.models import Role, Status
from handlers.storage import FileSystemStore
from tests.conftest import KEYS, create_account, create_organisation, create_subject

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
SETTINGS = documents.Settings(link_base="http://testserver")


def png(size: int = 8) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def jpeg() -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 30)).save(out, "JPEG")
    return out.getvalue()


def court(db, *, status=Status.approved, kind="department", name="惠州市中级人民法院", role=Role.org_admin):
    """An issuing organisation and one member of it (its admin by default, or a clerk)."""
    member = create_account(db, f"court-{uuid.uuid4().hex[:8]}", role=None)
    org = create_organisation(db, name, kind=kind, status=status)
    from handlers import accounts
    accounts.grant(db, member, role, organisation_id=org.id)
    db.flush()
    return org, member


def enterprise(db, *, agents: int = 1):
    """An enterprise subject and its approved agents."""
    subject = create_subject(db, kind="enterprise", name="惠州市鹏程智能电子有限公司")
    return subject, [create_account(db, f"agent-{uuid.uuid4().hex[:8]}", role=Role.enterprise_agent, subject=subject)
                     for _ in range(agents)]


def commit(db, agent, subject, *, wechat=True, emails=("legal@pengcheng.example",), mobiles=("13800138000",)):
    return service_address.commit(
        db, KEYS, agent, subject.id, consent_version=service_address.CURRENT_CONSENT,
        consent_sha256=service_address.consent_hash(service_address.CURRENT_CONSENT),
        wechat_account_ids=[agent.id] if wechat else [], emails=list(emails), mobiles=list(mobiles))


def store(tmp_path) -> FileSystemStore:
    return FileSystemStore(tmp_path / "documents")


def serve(db, tmp_path, member, subject, data=PDF, **kw):
    kw.setdefault("case_number", "（2026）粤13民初1234号")
    kw.setdefault("title", "民事起诉状副本及应诉通知书")
    return documents.serve(db, KEYS, store(tmp_path), member, SETTINGS, data=data, subject_id=subject.id, **kw)


# --- tampering, as an insider with DDL rights would -------------------------------------------------

SQLITE_TRIGGERS = ("evidence_entry_no_update", "evidence_entry_no_delete")


def disable_triggers(conn) -> None:
    """Drop (SQLite) or disable (PostgreSQL) the append-only triggers, inside the test's transaction so
    that the rollback at the end restores them. What a DBA or the tables' owner can do."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE evidence_entry DISABLE TRIGGER USER"))
    else:
        for name in SQLITE_TRIGGERS:
            conn.execute(text(f"DROP TRIGGER {name}"))


# --- a database of the test's own, whose commits are real --------------------------------------------

@pytest.fixture
def legal_url(tmp_path):
    """A database of this test's own: commits are real, and the evidence log cannot be emptied afterwards."""
    base = os.environ.get("XINMA_TEST_DATABASE_URL")
    if not base:
        url = f"sqlite:///{tmp_path / 'legal.sqlite3'}"
        migrate.upgrade(url)
        yield url
        return
    with scratch_schema(base, "xinma_legal") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def legal_engine(legal_url):
    engine = make_engine(legal_url)
    yield engine
    engine.dispose()
