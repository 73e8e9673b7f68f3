"""Applying for an organisation, its review, and the members its admins manage."""
import pytest

from handlers import organisations, subjects
from handlers.errors import DomainError
from handlers.models import Organisation, Role, RoleGrant, Status

from ..conftest import KEYS, count, create_account, create_organisation, create_subject, new_credit_code


@pytest.fixture
def admin(db):
    return create_account(db, role=Role.platform_admin)


@pytest.fixture
def org_admin(db):
    return create_account(db, "org-admin")


@pytest.fixture
def org(db, org_admin):
    return create_organisation(db, admin=org_admin)


def test_apply_makes_a_pending_organisation_and_its_admin(db, citizen):
    code = new_credit_code()
    org = organisations.apply_organisation(db, citizen, name="惠州西湖景区", kind="institution",
                                           contact="0752-1234567", credit_code=code, keys=KEYS)
    assert org.status == Status.pending
    assert citizen.has_role(Role.org_admin, organisation_id=org.id)
    assert org.subject_id == subjects.find(db, KEYS, code).id


def test_apply_links_an_existing_subject_without_renaming_it(db, citizen):
    s = create_subject(db, kind="enterprise", name="惠州市某某商贸有限公司")
    org = organisations.apply_organisation(db, citizen, name="某某超市", kind="merchant", contact="x",
                                           credit_code=s.identifier_for_test, keys=KEYS)
    assert org.subject_id == s.id
    assert subjects.full_name(KEYS, s) == "惠州市某某商贸有限公司"


@pytest.mark.parametrize("kw, code", [
    ({"kind": "bank"}, "bad_organisation_kind"),
    ({"name": ""}, "bad_name"),
    ({"contact": ""}, "bad_text"),
    ({"contact": "x" * 201}, "bad_text"),
    ({"credit_code": "91441302MA4UXXXXX0"}, "bad_check_digit"),
    ({"credit_code": "short"}, "bad_identifier"),
])
def test_bad_applications_write_nothing(db, citizen, kw, code):
    args = {"name": "某机构", "kind": "department", "contact": "0752-1", **kw}
    before = count(db, Organisation), count(db, RoleGrant)
    with pytest.raises(DomainError) as excinfo:
        organisations.apply_organisation(db, citizen, keys=KEYS, **args)
    assert excinfo.value.code == code
    assert (count(db, Organisation), count(db, RoleGrant)) == before


def test_review_uses_the_shared_state_machine(db, admin, citizen):
    org = create_organisation(db, status=Status.pending)
    with pytest.raises(DomainError) as excinfo:
        organisations.review_organisation(db, admin, org.id, decision="suspend", reason="x")
    assert excinfo.value.code == "illegal_transition" and excinfo.value.detail["status"] == "pending"
    organisations.review_organisation(db, admin, org.id, decision="approve")
    assert (org.status, org.reviewed_by_id) == (Status.approved, admin.id)
    with pytest.raises(DomainError) as excinfo:
        organisations.review_organisation(db, admin, org.id, decision="suspend", reason=" ")
    assert excinfo.value.code == "reason_required"
    with pytest.raises(DomainError) as excinfo:
        organisations.review_organisation(db, admin, 10**9, decision="approve")
    assert excinfo.value.code == "organisation_not_found"


def test_members_add_change_list_remove(db, org, org_admin):
    clerk = create_account(db, "clerk-1")
    organisations.add_member(db, org_admin, org.id, login="clerk-1", role="clerk")
    assert clerk.has_role(Role.clerk, organisation_id=org.id)
    organisations.add_member(db, org_admin, org.id, login="clerk-1", role="org_admin")  # one role per member
    assert organisations.member_role(clerk, org.id) == Role.org_admin
    assert not clerk.has_role(Role.clerk, organisation_id=org.id)
    page = organisations.list_members(db, org_admin, org.id)
    assert [a.id for a in page.items] == sorted([org_admin.id, clerk.id]) and page.total == 2
    organisations.remove_member(db, org_admin, org.id, clerk.id)
    assert organisations.member_role(clerk, org.id) is None
    with pytest.raises(DomainError) as excinfo:
        organisations.remove_member(db, org_admin, org.id, clerk.id)
    assert excinfo.value.code == "not_a_member"


def test_the_last_admin_cannot_leave_or_step_down(db, org, org_admin):
    with pytest.raises(DomainError) as excinfo:
        organisations.remove_member(db, org_admin, org.id, org_admin.id)
    assert excinfo.value.code == "last_org_admin"
    with pytest.raises(DomainError) as excinfo:
        organisations.add_member(db, org_admin, org.id, login=org_admin.login, role="clerk")
    assert excinfo.value.code == "last_org_admin"
    assert org_admin.has_role(Role.org_admin, organisation_id=org.id)


@pytest.mark.parametrize("login, role, code", [
    ("nobody-here", "clerk", "account_not_found"),
    ("pending-one", "clerk", "member_not_active"),
    ("clerk-2", "platform_admin", "bad_member_role"),
    ("clerk-2", "boss", "bad_member_role"),
])
def test_bad_members(db, org, org_admin, login, role, code):
    create_account(db, "pending-one", status=Status.pending)
    create_account(db, "clerk-2")
    before = count(db, RoleGrant)
    with pytest.raises(DomainError) as excinfo:
        organisations.add_member(db, org_admin, org.id, login=login, role=role)
    assert excinfo.value.code == code
    assert count(db, RoleGrant) == before


@pytest.mark.parametrize("status", [Status.pending, Status.suspended, Status.rejected])
def test_an_inactive_organisation_is_visible_but_not_managed(db, org_admin, status):
    org = create_organisation(db, status=status, admin=org_admin)
    create_account(db, "clerk-3")
    assert organisations.list_members(db, org_admin, org.id).total == 1
    for call in (lambda: organisations.add_member(db, org_admin, org.id, login="clerk-3", role="clerk"),
                 lambda: organisations.edit_organisation(db, org_admin, org.id, name="新名称")):
        with pytest.raises(DomainError) as excinfo:
            call()
        assert excinfo.value.code == "organisation_not_active"
        assert excinfo.value.detail["status"] == status.value


def test_admin_of_a_cannot_manage_b(db, org, org_admin):
    other = create_organisation(db, name="另一家", admin=create_account(db))
    with pytest.raises(DomainError) as excinfo:
        organisations.add_member(db, org_admin, other.id, login=org_admin.login, role="clerk")
    assert excinfo.value.code == "forbidden"


def test_edit(db, org, org_admin):
    organisations.edit_organisation(db, org_admin, org.id, contact=" 0752-7654321 ")
    assert (org.name, org.contact) == ("惠州市慈云图书馆", "0752-7654321")
    with pytest.raises(DomainError) as excinfo:
        organisations.edit_organisation(db, org_admin, org.id, name="x" * 101)
    assert excinfo.value.code == "bad_name"
