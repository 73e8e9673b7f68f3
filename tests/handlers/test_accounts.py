"""Registration and the onboarding review of accounts (the state machine shared with organisations)."""
import pytest

from handlers import accounts, subjects
from handlers.errors import DomainError
from handlers.models import Account, Role, Status, Subject

from ..conftest import KEYS, count, wrong_check_digit, create_account, create_subject, new_credit_code, new_resident_id


def _register(db, **kw):
    args = {"login": "zhang.san", "password": "long enough", "identifier": new_resident_id(), "name": "张三明"}
    args.update(kw)
    return accounts.register(db, KEYS, **args)


def test_register_with_resident_id_binds_own_person_subject(db):
    rid = new_resident_id()
    a = _register(db, identifier=rid)
    assert a.status == Status.pending
    assert a.has_role(Role.citizen)
    subject = subjects.find(db, KEYS, rid)
    assert a.subject_id == subject.id and subject.is_person
    assert subjects.full_name(KEYS, subject) == "张三明"


def test_register_with_credit_code_makes_an_enterprise_agent(db):
    code = new_credit_code()
    a = _register(db, identifier=code, name="惠州市示例科技有限公司")
    subject = subjects.find(db, KEYS, code)
    assert a.subject_id is None
    assert a.has_role(Role.enterprise_agent, subject_id=subject.id)


def test_existing_subject_needs_the_same_name(db):
    s = create_subject(db, kind="enterprise", name="惠州市示例科技（集团）有限公司")
    a = _register(db, identifier=s.identifier_for_test, name=" 惠州市示例科技(集团)有限公司")
    assert a.has_role(Role.enterprise_agent, subject_id=s.id)
    with pytest.raises(DomainError) as excinfo:
        _register(db, login="other", identifier=s.identifier_for_test, name="别的公司")
    assert excinfo.value.code == "identity_mismatch"
    assert "集团" not in excinfo.value.message and not excinfo.value.detail


def test_a_person_subject_holds_one_account_unless_that_was_rejected(db):
    p = create_subject(db, name="李四")
    first = _register(db, login="li.si", identifier=p.identifier_for_test, name="李四")
    with pytest.raises(DomainError) as excinfo:
        _register(db, login="li.si.2", identifier=p.identifier_for_test, name="李四")
    assert excinfo.value.code == "identity_taken"
    admin = create_account(db, role=Role.platform_admin)
    accounts.review_account(db, admin, first.id, decision="reject", reason="材料不实")
    assert _register(db, login="li.si.3", identifier=p.identifier_for_test, name="李四").subject_id == p.id


@pytest.mark.parametrize("kw, code", [
    ({"login": "ab"}, "bad_login"),
    ({"login": "x" * 65}, "bad_login"),
    ({"login": "张三"}, "bad_login"),
    ({"login": "a b c"}, "bad_login"),
    ({"password": "short"}, "weak_password"),
    ({"identifier": "bad check digit"}, "bad_check_digit"),
    ({"identifier": "not an id"}, "bad_identifier"),
    ({"name": "  "}, "bad_name"),
])
def test_bad_registrations_write_nothing(db, kw, code):
    if kw.get("identifier") == "bad check digit":
        kw = {"identifier": wrong_check_digit(new_resident_id())}
    before = count(db, Account), count(db, Subject)
    with pytest.raises(DomainError) as excinfo:
        _register(db, **kw)
    assert excinfo.value.code == code
    assert (count(db, Account), count(db, Subject)) == before


def test_login_taken(db):
    create_account(db, "taken")
    with pytest.raises(DomainError) as excinfo:
        _register(db, login="taken")
    assert excinfo.value.code == "login_taken"


# --- the onboarding state machine, through accounts ------------------------------------------------

@pytest.fixture
def admin(db):
    return create_account(db, role=Role.platform_admin)


def _pending(db):
    return create_account(db, status=Status.pending)


def test_review_records_reviewer_time_and_reason(db, admin):
    a = _pending(db)
    accounts.review_account(db, admin, a.id, decision="reject", reason="  证件不清晰 ")
    assert (a.status, a.status_reason, a.reviewed_by_id) == (Status.rejected, "证件不清晰", admin.id)
    assert a.reviewed_at is not None


def test_full_cycle(db, admin):
    a = _pending(db)
    for decision, status in [("reject", Status.rejected), ("approve", Status.approved),
                             ("suspend", Status.suspended), ("approve", Status.approved)]:
        accounts.review_account(db, admin, a.id, decision=decision, reason="原因")
        assert a.status == status


@pytest.mark.parametrize("start, decision", [
    (Status.pending, "suspend"),
    (Status.approved, "approve"),
    (Status.approved, "reject"),
    (Status.rejected, "reject"),
    (Status.rejected, "suspend"),
    (Status.suspended, "suspend"),
    (Status.suspended, "reject"),
])
def test_illegal_transitions_name_the_current_state(db, admin, start, decision):
    a = create_account(db, status=start)
    with pytest.raises(DomainError) as excinfo:
        accounts.review_account(db, admin, a.id, decision=decision, reason="原因")
    assert excinfo.value.code == "illegal_transition"
    assert excinfo.value.detail["status"] == start.value
    assert a.status == start


@pytest.mark.parametrize("start, decision", [(Status.pending, "reject"), (Status.approved, "suspend")])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_and_suspend_need_a_reason(db, admin, start, decision, reason):
    a = create_account(db, status=start)
    with pytest.raises(DomainError) as excinfo:
        accounts.review_account(db, admin, a.id, decision=decision, reason=reason)
    assert excinfo.value.code == "reason_required"
    assert a.status == start


def test_unknown_decision_and_account(db, admin):
    a = _pending(db)
    with pytest.raises(DomainError) as excinfo:
        accounts.review_account(db, admin, a.id, decision="delete")
    assert excinfo.value.code == "bad_review_decision"
    with pytest.raises(DomainError) as excinfo:
        accounts.review_account(db, admin, 10**9, decision="approve")
    assert excinfo.value.code == "account_not_found"


def test_list_accounts_filters_by_status_in_order(db, admin):
    first, second = _pending(db), _pending(db)
    page = accounts.list_accounts(db, status="pending")
    ids = [a.id for a in page.items]
    assert ids.index(first.id) < ids.index(second.id)
    assert all(a.status == Status.pending for a in page.items)
    with pytest.raises(DomainError) as excinfo:
        accounts.list_accounts(db, status="sleeping")
    assert excinfo.value.code == "bad_status"
    assert len(accounts.list_accounts(db, limit=1).items) == 1
    assert accounts.list_accounts(db, limit=10**6).limit == 200
