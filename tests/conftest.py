"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when XINMA_TEST_DATABASE_URL is set),
a per-test transaction rolled back at the end, the app bound to it, and factories for the ledger."""
from __future__ import annotations

import os
import random
import uuid
from datetime import date

import pytest
from sqlalchemy.orm import Session

from handlers import accounts, identifiers, migrate, subjects
from handlers.db import make_engine, scratch_schema
from handlers.models import CreditRecord, Role, Status
from handlers.privacy import Keys

SECRET = "test-secret-not-for-production"
KEYS = Keys.from_secret(SECRET)


def pytest_report_header(config):
    url = os.environ.get("XINMA_TEST_DATABASE_URL")
    return f"xinma database: {'PostgreSQL (' + url.split('@')[-1] + ')' if url else 'SQLite'}"


def _fresh_database(tmp_path_factory):
    """A fresh database: a SQLite file, or a schema of its own on PostgreSQL."""
    base = os.environ.get("XINMA_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        return
    with scratch_schema(base, "xinma_test") as url:
        yield url


def _migrated_engine(database_url):
    migrate.upgrade(database_url)
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


database_url = pytest.fixture(scope="session", name="database_url")(_fresh_database)
engine = pytest.fixture(scope="session", name="engine")(_migrated_engine)


def database_of_its_own():
    """For a test module whose tests commit for real (imports, races between threads): its own database,
    so what it leaves behind never shows up in another module's tests (a set-based match over all
    enterprises, say). Use as ``database_url, engine = database_of_its_own()`` at module level."""
    return (pytest.fixture(scope="module", name="database_url")(_fresh_database),
            pytest.fixture(scope="module", name="engine")(_migrated_engine))


@pytest.fixture
def connection(engine):
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def db(connection) -> Session:
    """A session whose commits are savepoints inside the test's transaction."""
    with Session(connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
        yield s


@pytest.fixture
def make_app(connection, database_url, tmp_path):
    """Build an app bound to the test's transaction; keyword arguments override settings."""
    from sqlalchemy.orm import sessionmaker

    from webhooks import create_app

    def make(**overrides):
        app = create_app({
            "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"), "RATELIMIT_ENABLED": False, **overrides,
        })
        app.extensions["xinma.engine"].dispose()
        app.extensions["xinma.sessionmaker"] = sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


# --- factories ----------------------------------------------------------------------------------

_rng = random.Random(20261122)


def new_resident_id() -> str:
    return identifiers.make_resident_id(_rng)


def new_credit_code() -> str:
    return identifiers.make_credit_code(_rng)


def create_subject(db, *, kind="person", name=None, identifier=None, grade=None, **kw):
    identifier = identifier or (new_resident_id() if kind == "person" else new_credit_code())
    name = name or ("张三明" if kind == "person" else "惠州市示例科技有限公司")
    s = subjects.upsert(db, KEYS, kind=kind, identifier=identifier, name=name, grade=grade, **kw)
    db.flush()
    s.identifier_for_test = identifier  # the clear identifier, for tests only
    return s


def add_record(db, subject, *, kind="bad", category=None, effective_on=date(2020, 1, 1), source="test",
               external_id=None, **kw) -> CreditRecord:
    from handlers import colours
    category = category or ("dishonest_judgment_debtor" if kind == "bad" else "star_volunteer")
    r = CreditRecord(subject_id=subject.id, kind=kind, category_code=category, source=source,
                     external_id=external_id or uuid.uuid4().hex, effective_on=effective_on, **kw)
    db.add(r)
    colours.refresh(db, subject)
    return r


def create_account(db, login=None, *, role: Role | None = Role.citizen, subject=None, organisation_id=None,
                   status=Status.approved, password="correct horse battery"):
    login = login or f"user-{uuid.uuid4().hex[:8]}"
    subject_id = subject.id if subject is not None and role in (Role.citizen, None) else None
    a = accounts.create(db, login, password=password, subject_id=subject_id, status=status)
    if role is not None:
        accounts.grant(db, a, role, organisation_id=organisation_id,
                       subject_id=subject.id if role == Role.enterprise_agent and subject is not None else None)
    db.flush()
    return a


def auth_headers(db, account) -> dict:
    token, _ = accounts.open_session(db, account)
    db.flush()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def citizen(db):
    subject = create_subject(db)
    return create_account(db, "citizen", subject=subject)


@pytest.fixture
def platform_admin(db):
    return create_account(db, "admin", role=Role.platform_admin)


@pytest.fixture
def dept_admin(db):
    """The admin of a department that issues policies (惠州市工业和信息化局)."""
    return create_account(db, "dept-admin", role=None)


@pytest.fixture
def dept(db, dept_admin):
    return create_organisation(db, "惠州市工业和信息化局", kind="department", admin=dept_admin)


def create_organisation(db, name="惠州市慈云图书馆", kind="institution", status=Status.approved, *, admin=None):
    """An organisation in ``status``; ``admin`` (an account) is made its org_admin."""
    from handlers.models import Organisation, OrganisationKind
    org = Organisation(name=name, kind=OrganisationKind(kind), status=status, contact="0752-0000000")
    db.add(org)
    db.flush()
    if admin is not None:
        accounts.grant(db, admin, Role.org_admin, organisation_id=org.id)
    return org


def count(db, model) -> int:
    """Rows of ``model`` visible to the test: for asserting that a refused request wrote nothing."""
    from sqlalchemy import func, select
    return db.scalar(select(func.count()).select_from(model))


def wrong_check_digit(identifier: str) -> str:
    """The identifier with its last character replaced by one that fails the checksum."""
    return identifier[:17] + ("1" if identifier[17] != "1" else "2")


# --- codes and incentives -----------------------------------------------------------------------

def create_incentive(db, organisation, **kw):
    from handlers.models import Grade, Incentive, IncentiveStatus, Period, Scenario
    fields = dict(title="西湖观光车免费乘坐", scenario="tourism", eligible_colours=["green"],
                  eligible_kinds=["person"], limit_count=1, limit_period="day", venues=["西湖"])
    fields.update(kw)
    for name, enum in (("scenario", Scenario), ("limit_period", Period), ("min_grade", Grade),
                       ("status", IncentiveStatus)):
        if isinstance(fields.get(name), str):
            fields[name] = enum(fields[name])
    i = Incentive(organisation_id=organisation.id, **fields)
    db.add(i)
    db.flush()
    return i


@pytest.fixture
def keyring(db):
    from handlers.signing import KeyRing
    return KeyRing(KEYS)


def issue_token(db, keyring, subject, **kw) -> str:
    from handlers.signing import issue_codes
    return issue_codes(db, keyring, subject, **kw)[0].token


# --- two organisations with an admin each (A may not touch B) -------------------------------------

@pytest.fixture
def admin_a(db):
    return create_account(db, "admin-a")


@pytest.fixture
def org_a(db, admin_a):
    return create_organisation(db, "西湖景区管理处", admin=admin_a)


@pytest.fixture
def admin_b(db):
    return create_account(db, "admin-b")


@pytest.fixture
def org_b(db, admin_b):
    return create_organisation(db, "慈云图书馆", admin=admin_b)
