"""The demo world: believable, as designed, and seeding it twice changes nothing."""
import pytest
from sqlalchemy import func, select

from handlers import colours, demo, identifiers, subjects
from handlers.models import (
    Account, Base, Colour, CreditRecord, DeclarationStatus, HonourDeclaration, Organisation, Role, RoleGrant,
    Status, Subject,
)

from ..conftest import KEYS


def _snapshot(db) -> dict:
    """Every row of every table, so 'changes nothing' means exactly that."""
    out = {}
    for table in Base.metadata.sorted_tables:
        out[table.name] = sorted(tuple(map(repr, row)) for row in db.execute(select(table)))
    return out


def test_seeding_twice_changes_nothing(db):
    demo.seed(db, KEYS)
    db.flush()
    counts = {t.name: db.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
    before = _snapshot(db)
    demo.seed(db, KEYS)
    db.flush()
    db.expire_all()
    assert _snapshot(db) == before
    assert counts["subject"] == len(demo.SUBJECTS)
    assert counts["organisation"] == len(demo.ORGANISATIONS)
    assert counts["account"] == len(demo.DEMO_ACCOUNTS) + 1


@pytest.mark.parametrize("login, colour", [
    ("citizen-green", Colour.green),
    ("citizen-blue", Colour.blue),
    ("citizen-red", Colour.red),
    ("citizen-repaired", Colour.blue),
    ("citizen-suspended", Colour.blue),
    ("enterprise-a", Colour.green),
    ("enterprise-d", Colour.red),
])
def test_colours_are_as_designed(db, login, colour):
    world = demo.seed(db, KEYS)
    account = world.accounts[login]
    subject_id = account.subject_id or next(g.subject_id for g in account.grants if g.subject_id)
    assert colours.colour(db, subjects.get(db, subject_id)) == colour


def test_the_model_worker_is_green_too(db):
    world = demo.seed(db, KEYS)
    assert colours.colour(db, world.subjects["li-xiuying"]) == Colour.green


def test_enterprises_of_every_grade(db):
    world = demo.seed(db, KEYS)
    grades = sorted(s.grade.value for s in world.subjects.values() if s.grade)
    assert grades == ["A", "B", "C", "D"]


def test_repaired_and_suspended_records_keep_their_reasons(db):
    world = demo.seed(db, KEYS)
    repaired = db.scalar(select(CreditRecord).where(CreditRecord.subject_id == world.subjects["zhang-lijuan"].id))
    suspended = db.scalar(select(CreditRecord).where(CreditRecord.subject_id == world.subjects["wu-haiyan"].id))
    assert repaired.repaired_on and repaired.repair_reason
    assert suspended.suspended_on and suspended.suspension_reason


def test_identifiers_are_valid_and_stable_and_stored_only_hashed(db):
    world = demo.seed(db, KEYS)
    for key, spec in demo.SUBJECTS.items():
        ident = demo.identifier(key)
        assert ident == demo.identifier(key)
        assert identifiers.normalise(spec.kind, ident) == ident
        subject = world.subjects[key]
        assert subject.id_hash == KEYS.identifier_hash(ident)
        assert ident not in subject.id_masked
        assert subjects.full_name(KEYS, subject) == spec.name
        assert spec.name.encode() not in subject.name_encrypted


def test_demo_accounts_are_approved_passwordless_and_hold_their_roles(db):
    world = demo.seed(db, KEYS)
    for login, spec in demo.DEMO_ACCOUNTS.items():
        account = world.accounts[login]
        assert account.is_demo and account.status == Status.approved and account.password_hash is None
        assert account.has_role(spec.role)
        assert spec.description
    court = world.accounts["court"]
    assert court.has_role(Role.org_admin, organisation_id=world.organisations["court"].id)
    assert world.accounts["clerk-library"].has_role(Role.clerk, organisation_id=world.organisations["library"].id)


def test_something_waits_for_the_admin(db):
    demo.seed(db, KEYS)
    pending_orgs = db.scalars(select(Organisation).where(Organisation.status == Status.pending)).all()
    pending_accounts = db.scalars(select(Account).where(Account.status == Status.pending)).all()
    assert [o.name for o in pending_orgs] == ["东坡文创书店"]
    assert [a.login for a in pending_accounts] == [demo.PENDING_LOGIN]
    assert not pending_accounts[0].is_demo
    approved = db.scalars(select(Organisation.name).where(Organisation.status == Status.approved)).all()
    assert {"西湖景区观光车", "慈云图书馆", "惠城区公安分局办证大厅", "惠州市中级人民法院", "仲恺高新区产业园"} <= set(approved)
    assert db.scalar(select(func.count()).select_from(RoleGrant)) >= len(demo.DEMO_ACCOUNTS)
    assert db.scalar(select(func.count()).select_from(Subject)) == len(demo.SUBJECTS)


def test_an_honour_declaration_waits_and_approving_it_turns_citizen_blue_green(db):
    from handlers import declarations
    world = demo.seed(db, KEYS)
    pending = db.scalars(select(HonourDeclaration).where(HonourDeclaration.status == DeclarationStatus.pending)).all()
    assert len(pending) == len(demo.DECLARATIONS) == 1
    blue = world.subjects["wang-jianguo"]
    assert pending[0].subject_id == blue.id
    declarations.review_declaration(db, world.accounts["admin"], pending[0].id, decision="approve")
    assert colours.colour(db, blue) == Colour.green


def test_the_seed_measures_are_published(db):
    from handlers.models import Incentive
    demo.seed(db, KEYS)
    titles = set(db.scalars(select(Incentive.title)))
    assert titles == {title for _, title, _ in demo.INCENTIVES}


def test_the_demo_story_westlake_shuttle(db):
    """A clerk redeems the West Lake shuttle for the green citizen and is refused for the red one."""
    import uuid

    from handlers import redemptions, signing
    from handlers.models import Incentive

    world = demo.seed(db, KEYS)
    ring = signing.KeyRing(KEYS)
    shuttle = db.scalar(select(Incentive).where(Incentive.title == "西湖观光车免费乘坐"))
    clerk = world.accounts["clerk-westlake"]

    def scan(login):
        subject = subjects.get(db, world.accounts[login].subject_id)
        token = signing.issue_codes(db, ring, subject)[0].token
        return redemptions.redeem(db, ring, clerk, token, shuttle.id, idempotency_key=uuid.uuid4().hex)

    green = scan("citizen-green")
    assert (green.status, green.subject["colour"], green.remaining["quota"]) == ("redeemed", "green", 0)
    red = scan("citizen-red")
    assert (red.status, red.reason) == ("rejected", "colour_not_eligible")
    again = scan("citizen-green")
    assert again.reason == "limit_reached"
