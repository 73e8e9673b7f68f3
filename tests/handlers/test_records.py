"""Records kept by platform admins: adding, repair, suspension and lifting it, and categories."""
from datetime import date, timedelta

import pytest

from handlers import checks, records
from handlers.errors import DomainError
from handlers.models import Category, Colour, CreditRecord, Role

from ..conftest import KEYS, add_record, count, create_account, create_subject, wrong_check_digit

TODAY = checks.today()
DAY = timedelta(days=1)


@pytest.fixture
def admin(db):
    return create_account(db, role=Role.platform_admin)


def _add(db, admin, subject, **kw):
    args = {"subject_id": subject.id, "category": "dishonest_judgment_debtor", "source": "court",
            "external_id": "2024-001", "effective_on": date(2024, 1, 1), **kw}
    return records.add_record(db, admin, **args)


def test_add_bad_record_turns_red(db, admin):
    s = create_subject(db)
    r = _add(db, admin, s)
    assert r.kind.value == "bad" and s.colour == Colour.red


@pytest.mark.parametrize("kw, code", [
    ({"external_id": "dup"}, "record_exists"),
    ({"category": "no_such_thing"}, "unknown_category"),
    ({"category": "a_grade_taxpayer"}, "category_kind_mismatch"),
    ({"published_until": date(2023, 12, 31)}, "dates_out_of_order"),
    ({"source": ""}, "bad_text"),
    ({"source": "declaration"}, "reserved_source"),
    ({"external_id": "x" * 129}, "bad_text"),
    ({"subject_id": 10**9}, "subject_not_found"),
])
def test_bad_records_write_nothing(db, admin, kw, code):
    s = create_subject(db)
    _add(db, admin, s, external_id="dup")
    before = count(db, CreditRecord)
    with pytest.raises(DomainError) as excinfo:
        _add(db, admin, s, **kw)
    assert excinfo.value.code == code
    assert count(db, CreditRecord) == before


def test_repair_turns_red_to_blue(db, admin):
    s = create_subject(db)
    r = add_record(db, s)
    assert s.colour == Colour.red
    records.repair(db, admin, r.id, repaired_on=TODAY, reason="已履行")
    assert s.colour == Colour.blue and r.repair_reason == "已履行"
    with pytest.raises(DomainError) as excinfo:
        records.repair(db, admin, r.id, repaired_on=TODAY, reason="again")
    assert excinfo.value.code == "already_repaired"


@pytest.mark.parametrize("kw, code", [
    ({"reason": " "}, "reason_required"),
    ({"repaired_on": date(2019, 12, 31)}, "dates_out_of_order"),
])
def test_bad_repairs(db, admin, kw, code):
    s = create_subject(db)
    r = add_record(db, s)
    with pytest.raises(DomainError) as excinfo:
        records.repair(db, admin, r.id, **{"repaired_on": TODAY, "reason": "已履行", **kw})
    assert excinfo.value.code == code
    assert r.repaired_on is None and s.colour == Colour.red


def test_only_bad_records_are_repaired_or_suspended(db, admin):
    s = create_subject(db)
    honour = add_record(db, s, kind="honour")
    for call in (lambda: records.repair(db, admin, honour.id, repaired_on=TODAY, reason="x"),
                 lambda: records.suspend(db, admin, honour.id, suspended_on=TODAY, reason="x")):
        with pytest.raises(DomainError) as excinfo:
            call()
        assert excinfo.value.code == "not_a_bad_record"
    with pytest.raises(DomainError) as excinfo:
        records.repair(db, admin, 10**9, repaired_on=TODAY, reason="x")
    assert excinfo.value.code == "record_not_found"


def test_suspend_and_lift(db, admin):
    s = create_subject(db)
    r = add_record(db, s)
    records.suspend(db, admin, r.id, suspended_on=TODAY - 10 * DAY, reason="已作出信用承诺")
    assert s.colour == Colour.blue
    with pytest.raises(DomainError) as excinfo:
        records.suspend(db, admin, r.id, suspended_on=TODAY, reason="again")
    assert excinfo.value.code == "already_suspended"
    records.lift_suspension(db, admin, r.id)
    assert s.colour == Colour.red
    assert (r.suspended_on, r.suspended_until) == (TODAY - 10 * DAY, TODAY - DAY)
    with pytest.raises(DomainError) as excinfo:
        records.lift_suspension(db, admin, r.id)
    assert excinfo.value.code == "not_suspended"


def test_lifting_a_suspension_that_has_not_begun_removes_it(db, admin):
    s = create_subject(db)
    r = add_record(db, s)
    records.suspend(db, admin, r.id, suspended_on=TODAY + 5 * DAY, suspended_until=TODAY + 9 * DAY, reason="承诺")
    records.lift_suspension(db, admin, r.id)
    assert (r.suspended_on, r.suspended_until, r.suspension_reason) == (None, None, None)
    assert s.colour == Colour.red


@pytest.mark.parametrize("kw, code", [
    ({"suspended_until": TODAY - DAY}, "dates_out_of_order"),
    ({"suspended_on": date(2019, 1, 1)}, "dates_out_of_order"),
    ({"reason": ""}, "reason_required"),
])
def test_bad_suspensions(db, admin, kw, code):
    s = create_subject(db)
    r = add_record(db, s)
    with pytest.raises(DomainError) as excinfo:
        records.suspend(db, admin, r.id, **{"suspended_on": TODAY, "reason": "承诺", **kw})
    assert excinfo.value.code == code
    assert r.suspended_on is None and s.colour == Colour.red


def test_categories(db, admin):
    c = records.create_category(db, admin, code="blood_donor", name="无偿献血者", kind="honour", applies_to="person")
    assert c in records.list_categories(db, limit=200).items
    with pytest.raises(DomainError) as excinfo:
        records.create_category(db, admin, code="blood_donor", name="重复", kind="honour", applies_to="person")
    assert excinfo.value.code == "category_exists"


@pytest.mark.parametrize("kw, code", [
    ({"code": "A"}, "bad_category_code"),
    ({"code": "Has-Caps"}, "bad_category_code"),
    ({"code": "x" * 49}, "bad_category_code"),
    ({"name": ""}, "bad_text"),
    ({"kind": "good"}, "bad_record_kind"),
    ({"applies_to": "animals"}, "bad_applies_to"),
])
def test_bad_categories_write_nothing(db, admin, kw, code):
    before = count(db, Category)
    with pytest.raises(DomainError) as excinfo:
        records.create_category(db, admin, **{"code": "new_one", "name": "新类别", "kind": "honour",
                                              "applies_to": "any", **kw})
    assert excinfo.value.code == code
    assert count(db, Category) == before


def test_lookup_by_identifier(db):
    s = create_subject(db)
    assert records.lookup_subject(db, KEYS, s.identifier_for_test.lower()).id == s.id
    with pytest.raises(DomainError) as excinfo:
        records.lookup_subject(db, KEYS, wrong_check_digit(s.identifier_for_test))
    assert excinfo.value.code == "bad_check_digit"
