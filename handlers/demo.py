"""The demo world: a small Huizhou-style city of subjects, records, organisations and logins, seeded idempotently."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import (
    accounts, colours, declarations, demo_policies, identifiers, incentives, service_address, subjects, timeutil,
)
from .models import (
    Account, CreditRecord, HonourDeclaration, Incentive, Organisation, OrganisationKind, RecordKind, Role, Status,
    Subject,
)
from .privacy import Keys

# All names and identifiers are invented. Identifiers are valid (check digits and all) and derived from
# each subject's key, so they stay the same from one run to the next and adding a subject moves no other.
_ID_SALT = "xinma-demo-2026"


@dataclass(frozen=True)
class DemoRecord:
    category: str
    kind: RecordKind
    source: str
    effective_on: date
    published_until: date | None = None
    repaired_on: date | None = None
    repair_reason: str | None = None
    suspended_on: date | None = None
    suspended_until: date | None = None
    suspension_reason: str | None = None


@dataclass(frozen=True)
class DemoSubject:
    kind: str
    name: str
    region: str = "441302"          # 惠城区
    born: date | None = None        # persons only
    grade: str | None = None        # enterprises only
    grade_evaluated_on: date | None = None
    risk_level: str | None = None
    records: tuple[DemoRecord, ...] = ()


_VOLUNTEERS = "惠州市志愿者联合会"
_UNION = "惠州市总工会"
_COURT = "惠州市中级人民法院"
_TAX = "国家税务总局惠州市税务局"
_MARKET = "惠州市市场监督管理局"

SUBJECTS: dict[str, DemoSubject] = {
    # green: honours and nothing bad
    "chen-zhiming": DemoSubject("person", "陈志明", born=date(1986, 4, 12), records=(
        DemoRecord("star_volunteer", RecordKind.honour, _VOLUNTEERS, date(2024, 12, 5)),
    )),
    "li-xiuying": DemoSubject("person", "李秀英", region="441303", born=date(1972, 9, 3), records=(
        DemoRecord("model_worker", RecordKind.honour, _UNION, date(2022, 4, 28)),
    )),
    # blue: no records at all
    "wang-jianguo": DemoSubject("person", "王建国", born=date(1990, 1, 21)),
    # red: on the dishonest judgment debtor list
    "huang-guoqiang": DemoSubject("person", "黄国强", region="441322", born=date(1979, 11, 8), records=(
        DemoRecord("dishonest_judgment_debtor", RecordKind.bad, _COURT, date(2025, 3, 18)),
    )),
    # red once, repaired after paying what the court ordered: blue again
    "zhang-lijuan": DemoSubject("person", "张丽娟", born=date(1983, 6, 30), records=(
        DemoRecord("dishonest_judgment_debtor", RecordKind.bad, _COURT, date(2023, 5, 10),
                   repaired_on=date(2024, 9, 2), repair_reason="已全部履行判决义务，经申请完成信用修复"),
    )),
    # listed, but the court suspended the sanction after a written commitment to perform
    "wu-haiyan": DemoSubject("person", "吴海燕", born=date(1988, 2, 14), records=(
        DemoRecord("dishonest_judgment_debtor", RecordKind.bad, _COURT, date(2025, 6, 3),
                   suspended_on=date(2025, 7, 1), suspension_reason="已签署信用承诺书，法院决定暂缓纳入"),
    )),
    # registered and waiting for an admin to approve the account
    "zhao-minghui": DemoSubject("person", "赵明辉", born=date(1995, 8, 19)),
    # enterprises of each public credit grade
    "pengcheng-electronics": DemoSubject(
        "enterprise", "惠州市鹏程智能电子有限公司", grade="A", grade_evaluated_on=date(2025, 12, 31),
        risk_level="low", records=(DemoRecord("a_grade_taxpayer", RecordKind.honour, _TAX, date(2025, 4, 1)),)),
    "dongjiang-materials": DemoSubject(
        "enterprise", "惠州市东江新型建材有限公司", grade="B", grade_evaluated_on=date(2025, 12, 31),
        risk_level="moderate"),
    "shunfa-logistics": DemoSubject(
        "enterprise", "惠州市惠阳区顺发达物流有限公司", region="441303", grade="C",
        grade_evaluated_on=date(2025, 12, 31), risk_level="elevated"),
    "hongsheng-chemicals": DemoSubject(
        "enterprise", "惠州市宏晟精细化工有限公司", region="441322", grade="D", grade_evaluated_on=date(2025, 12, 31),
        risk_level="high", records=(DemoRecord("administrative_penalty", RecordKind.bad, _MARKET, date(2025, 9, 16)),)),
}


@dataclass(frozen=True)
class DemoOrganisation:
    name: str
    kind: OrganisationKind
    status: Status = Status.approved


ORGANISATIONS: dict[str, DemoOrganisation] = {
    "westlake": DemoOrganisation("西湖景区观光车", OrganisationKind.institution),
    "library": DemoOrganisation("慈云图书馆", OrganisationKind.institution),
    "police": DemoOrganisation("惠城区公安分局办证大厅", OrganisationKind.department),
    "court": DemoOrganisation(_COURT, OrganisationKind.department),
    "park": DemoOrganisation("仲恺高新区产业园", OrganisationKind.enterprise),
    "industry": DemoOrganisation("惠州市工业和信息化局", OrganisationKind.department),  # issues the demo's subsidy
    # asked to join; a platform admin has yet to review it
    "bookshop": DemoOrganisation("东坡文创书店", OrganisationKind.merchant, Status.pending),
}


@dataclass(frozen=True)
class DemoAccount:
    description: str                 # shown beside the login (GET /api/v1/session/demo, xinma serve --demo)
    role: Role
    subject: str | None = None       # citizen: own subject; enterprise_agent: the enterprise
    organisation: str | None = None  # clerk, org_admin


DEMO_ACCOUNTS: dict[str, DemoAccount] = {
    "citizen-green": DemoAccount("市民陈志明，星级志愿者，绿码", Role.citizen, subject="chen-zhiming"),
    "citizen-blue": DemoAccount("市民王建国，无荣誉也无失信记录，蓝码；已申报“惠州好人”，待审核", Role.citizen,
                                subject="wang-jianguo"),
    "citizen-red": DemoAccount("市民黄国强，失信被执行人，红码", Role.citizen, subject="huang-guoqiang"),
    "citizen-repaired": DemoAccount("市民张丽娟，失信记录已信用修复，恢复蓝码", Role.citizen, subject="zhang-lijuan"),
    "citizen-suspended": DemoAccount("市民吴海燕，签署信用承诺后法院暂缓惩戒，蓝码", Role.citizen,
                                     subject="wu-haiyan"),
    "enterprise-a": DemoAccount("鹏程智能电子的经办人，A级企业、A级纳税人，绿码", Role.enterprise_agent,
                                subject="pengcheng-electronics"),
    "enterprise-d": DemoAccount("宏晟精细化工的经办人，D级企业、受行政处罚，红码", Role.enterprise_agent,
                                subject="hongsheng-chemicals"),
    "clerk-westlake": DemoAccount("西湖景区观光车的工作人员，扫码核验", Role.clerk, organisation="westlake"),
    "clerk-library": DemoAccount("慈云图书馆的工作人员，扫码核验", Role.clerk, organisation="library"),
    "clerk-police": DemoAccount("惠城区公安分局办证大厅的工作人员，扫码核验", Role.clerk, organisation="police"),
    "orgadmin-westlake": DemoAccount("西湖景区观光车的管理员，发布激励措施", Role.org_admin, organisation="westlake"),
    "court": DemoAccount("惠州市中级人民法院的管理员，送达法律文书", Role.org_admin, organisation="court"),
    "admin": DemoAccount("平台管理员，审核入驻、账号与荣誉申报", Role.platform_admin),
}

# Not a demo login: someone who registered and waits for review (the admin's to-do list).
PENDING_LOGIN = "applicant-zhao"
PENDING_SUBJECT = "zhao-minghui"


@dataclass(frozen=True)
class DemoDeclaration:
    login: str
    category: str
    title: str
    issued_by: str
    awarded_on: date
    evidence: str


# An honour declared and not yet reviewed: approving it turns citizen-blue green.
DECLARATIONS = (
    DemoDeclaration("citizen-blue", "huizhou_good_person", "2025年第二季度“惠州好人”（见义勇为类）",
                    "惠州市精神文明建设委员会办公室", date(2025, 7, 8),
                    "惠州文明网2025年第二季度“惠州好人”公示名单第12号；获奖证书编号 HZHR-2025-2-012"),
)


# The seed's incentive measures (domain.md): (organisation, title, fields for incentives.create_incentive).
INCENTIVES = (
    ("westlake", "西湖观光车免费乘坐", dict(
        description="绿码市民凭信用码免费乘坐西湖景区观光车，每人每天一次。", scenario="tourism",
        eligible_colours=["green"], eligible_kinds=["person"], limit_count=1, limit_period="day",
        venues=["西湖景区北门游客中心", "西湖景区南门"])),
    ("library", "一次可借15册图书", dict(
        description="绿码读者一次可借阅15册（普通读者5册），免押金。", scenario="library",
        eligible_colours=["green"], eligible_kinds=["person"], limit_count=1, limit_period="day",
        venues=["慈云图书馆总馆借还台"])),
    ("police", "车辆、户籍业务免预约办理", dict(
        description="绿码市民办理车辆、户籍业务无需预约，直接取号。", scenario="administrative_approval",
        eligible_colours=["green"], eligible_kinds=["person"], limit_count=2, limit_period="month",
        venues=["惠城区公安分局办证大厅"])),
    ("park", "入园租金减免（信易租）", dict(
        description="A级企业入驻产业园，首年租金与物业费减免20%。", scenario="housing",
        eligible_colours=["green", "blue"], eligible_kinds=["enterprise"], min_grade="A",
        limit_count=1, limit_period="ever", stock_total=20, venues=["仲恺高新区产业园招商中心"])),
)


def identifier(key: str) -> str:
    """The demo subject's identifier in clear (for the demo's own use, never stored so)."""
    spec = SUBJECTS[key]
    rng = random.Random(f"{_ID_SALT}:{key}")
    if spec.kind == "person":
        return identifiers.make_resident_id(rng, region=spec.region, born=spec.born)
    return identifiers.make_credit_code(rng, region=spec.region)


def description(login: str) -> str | None:
    spec = DEMO_ACCOUNTS.get(login)
    return spec.description if spec else None


@dataclass
class Seeded:
    subjects: dict[str, Subject] = field(default_factory=dict)
    organisations: dict[str, Organisation] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)


def seed(session: Session, keys: Keys) -> Seeded:
    """Create whatever part of the demo world is missing; what exists is left exactly as it is.

    Flushes, never commits: the caller owns the transaction.
    """
    out = Seeded()
    for key in SUBJECTS:
        out.subjects[key] = _subject(session, keys, key)
    admin = _account(session, "admin", status=Status.approved, is_demo=True)
    out.accounts["admin"] = admin
    for key, spec in ORGANISATIONS.items():
        out.organisations[key] = _organisation(session, spec, reviewer=admin)
    for login, spec in DEMO_ACCOUNTS.items():
        subject = out.subjects[spec.subject] if spec.subject else None
        account = _account(session, login, status=Status.approved, is_demo=True, reviewer=admin,
                           subject=subject if spec.role == Role.citizen else None)
        accounts.grant(session, account, spec.role,
                       organisation_id=out.organisations[spec.organisation].id if spec.organisation else None,
                       subject_id=subject.id if spec.role == Role.enterprise_agent else None)
        out.accounts[login] = account
    pending = _account(session, PENDING_LOGIN, status=Status.pending, is_demo=False,
                       subject=out.subjects[PENDING_SUBJECT])
    accounts.grant(session, pending, Role.citizen)
    out.accounts[PENDING_LOGIN] = pending
    for spec in DECLARATIONS:
        _declaration(session, out.accounts[spec.login], spec)
    for org_key, title, fields in INCENTIVES:
        _incentive(session, admin, out.organisations[org_key], title, fields)
    service_address.seed_demo(session, keys, out)  # legal service: enterprise-a's committed address
    demo_policies.seed(session, out)  # policy offers: enterprise profiles and a draft subsidy
    session.flush()
    return out


def _incentive(session: Session, admin: Account, organisation: Organisation, title: str, fields: dict) -> Incentive:
    existing = session.scalar(select(Incentive).where(Incentive.organisation_id == organisation.id,
                                                      Incentive.title == title))
    return existing or incentives.create_incentive(session, admin, organisation.id, title=title, **fields)


def _subject(session: Session, keys: Keys, key: str) -> Subject:
    spec = SUBJECTS[key]
    ident = identifier(key)
    # upsert re-encrypts the name with a fresh nonce; skip it for a subject that exists so a re-seed writes nothing.
    subject = subjects.find(session, keys, ident, kind=spec.kind)
    if subject is None:
        subject = subjects.upsert(session, keys, kind=spec.kind, identifier=ident, name=spec.name,
                                  grade=spec.grade, grade_evaluated_on=spec.grade_evaluated_on,
                                  risk_level=spec.risk_level)
        session.flush()
    added = False
    for n, r in enumerate(spec.records, 1):
        external_id = f"demo-{key}-{n}"
        exists = session.scalar(select(CreditRecord.id).where(CreditRecord.source == r.source,
                                                              CreditRecord.external_id == external_id))
        if exists is None:
            session.add(CreditRecord(
                subject_id=subject.id, kind=r.kind, category_code=r.category, source=r.source,
                external_id=external_id, effective_on=r.effective_on, published_until=r.published_until,
                repaired_on=r.repaired_on, repair_reason=r.repair_reason, suspended_on=r.suspended_on,
                suspended_until=r.suspended_until, suspension_reason=r.suspension_reason))
            added = True
    if added:
        colours.refresh(session, subject)
    return subject


def _declaration(session: Session, actor: Account, spec: DemoDeclaration) -> HonourDeclaration:
    found = session.scalar(select(HonourDeclaration).where(HonourDeclaration.subject_id == actor.subject_id,
                                                           HonourDeclaration.title == spec.title))
    if found is not None:
        return found
    return declarations.declare(session, actor, category=spec.category, title=spec.title, issued_by=spec.issued_by,
                                awarded_on=spec.awarded_on, evidence=spec.evidence)


def _organisation(session: Session, spec: DemoOrganisation, *, reviewer: Account) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.name == spec.name).order_by(Organisation.id))
    if org is None:
        reviewed = spec.status != Status.pending
        org = Organisation(name=spec.name, kind=spec.kind, status=spec.status,
                           reviewed_at=timeutil.now() if reviewed else None,
                           reviewed_by_id=reviewer.id if reviewed else None)
        session.add(org)
        session.flush()
    return org


def _account(session: Session, login: str, *, status: Status, is_demo: bool,
             subject: Subject | None = None, reviewer: Account | None = None) -> Account:
    account = session.scalar(select(Account).where(Account.login == login))
    if account is None:
        account = accounts.create(session, login, subject_id=subject.id if subject else None,
                                  status=status, is_demo=is_demo)
        if status == Status.approved:
            account.reviewed_at = timeutil.now()
            account.reviewed_by_id = reviewer.id if reviewer is not None and reviewer is not account else None
    return account
