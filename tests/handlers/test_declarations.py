"""Honour declarations: who may declare what, and how review turns one into a record."""
from datetime import date, timedelta

import pytest

from handlers import checks, declarations
from handlers.errors import DomainError
from handlers.models import Colour, CreditRecord, DeclarationStatus, HonourDeclaration, Role

from ..conftest import add_record, count, create_account, create_subject

TODAY = checks.today()


@pytest.fixture
def admin(db):
    return create_account(db, role=Role.platform_admin)


def _declare(db, actor, **kw):
    args = {"category": "star_volunteer", "title": "五星级志愿者", "issued_by": "惠州市志愿者联合会",
            "awarded_on": date(2024, 3, 5), "valid_until": None, "evidence": "证书编号 2024-0305", **kw}
    return declarations.declare(db, actor, **args)


def test_citizen_declares_and_approval_turns_blue_green(db, citizen, admin):
    d = _declare(db, citizen, valid_until=TODAY + timedelta(days=365))
    assert d.status == DeclarationStatus.pending and d.subject_id == citizen.subject_id
    assert citizen.subject.colour == Colour.blue
    declarations.review_declaration(db, admin, d.id, decision="approve")
    record = db.get(CreditRecord, d.record_id)
    assert (record.source, record.external_id) == ("declaration", f"declaration-{d.id}")
    assert (record.effective_on, record.published_until) == (d.awarded_on, d.valid_until)
    assert (d.status, d.reviewed_by_id) == (DeclarationStatus.approved, admin.id)
    assert citizen.subject.colour == Colour.green


def test_enterprise_agent_declares_for_its_enterprise(db):
    ent = create_subject(db, kind="enterprise")
    agent = create_account(db, role=Role.enterprise_agent, subject=ent)
    d = _declare(db, agent, category="a_grade_taxpayer", title="2023年度A级纳税人", issued_by="税务局")
    assert d.subject_id == ent.id
    with pytest.raises(DomainError) as excinfo:
        _declare(db, agent)  # a person's honour does not apply to an enterprise
    assert excinfo.value.code == "category_kind_mismatch"


def test_nobody_declares_for_someone_else(db, citizen):
    other = create_subject(db)
    with pytest.raises(DomainError) as excinfo:
        _declare(db, citizen, subject_id=other.id)
    assert excinfo.value.code == "subject_not_found"
    with pytest.raises(DomainError) as excinfo:
        _declare(db, create_account(db, role=Role.clerk))
    assert excinfo.value.code == "no_subject"


@pytest.mark.parametrize("kw, code", [
    ({"category": "dishonest_judgment_debtor"}, "not_an_honour_category"),
    ({"category": "nope"}, "unknown_category"),
    ({"category": "a_grade_taxpayer"}, "category_kind_mismatch"),
    ({"valid_until": date(2024, 3, 4)}, "dates_out_of_order"),
    ({"awarded_on": TODAY + timedelta(days=1)}, "date_in_future"),
    ({"evidence": ""}, "bad_text"),
    ({"evidence": "x" * 2001}, "bad_text"),
    ({"title": None}, "bad_text"),
    ({"issued_by": "x" * 101}, "bad_text"),
])
def test_bad_declarations_write_nothing(db, citizen, kw, code):
    before = count(db, HonourDeclaration)
    with pytest.raises(DomainError) as excinfo:
        _declare(db, citizen, **kw)
    assert excinfo.value.code == code
    assert count(db, HonourDeclaration) == before


def test_evidence_of_exactly_2000_characters_is_fine(db, citizen):
    assert _declare(db, citizen, evidence="证" * 2000).id


def test_reject_needs_a_reason_and_only_pending_is_reviewed(db, citizen, admin):
    d = _declare(db, citizen)
    with pytest.raises(DomainError) as excinfo:
        declarations.review_declaration(db, admin, d.id, decision="reject")
    assert excinfo.value.code == "reason_required"
    with pytest.raises(DomainError) as excinfo:
        declarations.review_declaration(db, admin, d.id, decision="suspend", reason="x")
    assert excinfo.value.code == "bad_review_decision"
    declarations.review_declaration(db, admin, d.id, decision="reject", reason="证明材料不足")
    assert (d.status, d.review_reason, d.record_id) == (DeclarationStatus.rejected, "证明材料不足", None)
    for decision in ("approve", "reject"):
        with pytest.raises(DomainError) as excinfo:
            declarations.review_declaration(db, admin, d.id, decision=decision, reason="x")
        assert excinfo.value.code == "illegal_transition"
        assert excinfo.value.detail["status"] == "rejected"
    with pytest.raises(DomainError) as excinfo:
        declarations.review_declaration(db, admin, 10**9, decision="approve")
    assert excinfo.value.code == "declaration_not_found"


def test_approved_honour_does_not_hide_a_bad_record(db, citizen, admin):
    add_record(db, citizen.subject)
    d = _declare(db, citizen)
    declarations.review_declaration(db, admin, d.id, decision="approve")
    assert citizen.subject.colour == Colour.red


def test_list_own_and_by_status(db, citizen, admin):
    mine = _declare(db, citizen)
    other = _declare(db, create_account(db, subject=create_subject(db)))
    own = declarations.list_declarations(db, subject_ids=declarations.subject_ids_of(citizen))
    assert [d.id for d in own.items] == [mine.id]
    pending = declarations.list_declarations(db, status="pending")
    assert {mine.id, other.id} <= {d.id for d in pending.items}
