"""The credit ledger and who may use it: SQLAlchemy 2.0 typed models."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON, Date, DateTime, Enum, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text, TypeDecorator,
    UniqueConstraint, text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .. import timeutil


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value, dialect):
        return timeutil.aware(value)


class StrEnum(str, enum.Enum):
    def __str__(self) -> str:
        return self.value


class SubjectKind(StrEnum):
    person = "person"
    enterprise = "enterprise"
    institution = "institution"


class Colour(StrEnum):
    green = "green"
    blue = "blue"
    red = "red"


class RecordKind(StrEnum):
    honour = "honour"
    bad = "bad"


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class RiskLevel(StrEnum):
    high = "high"            # 高风险
    elevated = "elevated"    # 较高风险
    moderate = "moderate"    # 较低风险
    low = "low"              # 低风险


class AppliesTo(StrEnum):
    person = "person"
    organisation = "organisation"
    any = "any"


class OrganisationKind(StrEnum):
    department = "department"
    institution = "institution"
    enterprise = "enterprise"
    merchant = "merchant"


class Status(StrEnum):
    """Onboarding state of organisations and accounts."""
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    suspended = "suspended"


class Role(StrEnum):
    citizen = "citizen"
    enterprise_agent = "enterprise_agent"
    clerk = "clerk"
    org_admin = "org_admin"
    platform_admin = "platform_admin"


class DeclarationStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, create_constraint=True, validate_strings=True,
                values_callable=lambda e: [m.value for m in e], length=24)


MAX_ID = 2**31 - 1  # ids are INTEGER (32-bit on PostgreSQL): a larger number names nothing, and must not
                   # reach the database driver (an out-of-range error there would be a 500)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    type_annotation_map = {datetime: UTCDateTime()}


class Subject(Base):
    """A natural or legal person, known only by a keyed hash of its identifier."""

    __tablename__ = "subject"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[SubjectKind] = mapped_column(_enum(SubjectKind, "subject_kind"))
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    id_masked: Mapped[str] = mapped_column(String(18))
    name_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    name_masked: Mapped[str] = mapped_column(String(64))
    grade: Mapped[Grade | None] = mapped_column(_enum(Grade, "grade"))
    grade_evaluated_on: Mapped[date | None] = mapped_column(Date)
    risk_level: Mapped[RiskLevel | None] = mapped_column(_enum(RiskLevel, "risk_level"))
    # The colour, materialised with the window in which it stays true (see handlers/colours.py).
    colour: Mapped[Colour | None] = mapped_column(_enum(Colour, "colour"))
    colour_valid_from: Mapped[datetime | None]
    colour_valid_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)

    records: Mapped[list[CreditRecord]] = relationship(back_populates="subject", lazy="raise_on_sql")

    @property
    def is_person(self) -> bool:
        return self.kind == SubjectKind.person


class Category(Base):
    """Kinds of honour and bad record (星级志愿者, 失信被执行人 …); an extensible table."""

    __tablename__ = "category"

    code: Mapped[str] = mapped_column(String(48), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[RecordKind] = mapped_column(_enum(RecordKind, "record_kind"))
    applies_to: Mapped[AppliesTo] = mapped_column(_enum(AppliesTo, "applies_to"), default=AppliesTo.any)


class CreditRecord(Base):
    """One honour or bad record from a source organisation. Dates are Asia/Shanghai calendar dates."""

    __tablename__ = "credit_record"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_credit_record_source_external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RecordKind] = mapped_column(_enum(RecordKind, "record_kind"))
    category_code: Mapped[str] = mapped_column(ForeignKey("category.code"))
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    effective_on: Mapped[date] = mapped_column(Date)
    published_until: Mapped[date | None] = mapped_column(Date)  # last day it counts; NULL: no end
    repaired_on: Mapped[date | None] = mapped_column(Date)      # 信用修复: stops counting from this day
    repair_reason: Mapped[str | None] = mapped_column(Text)
    suspended_on: Mapped[date | None] = mapped_column(Date)     # 暂缓: does not count from this day …
    suspended_until: Mapped[date | None] = mapped_column(Date)  # … through this day (NULL: until lifted)
    suspension_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    updated_at: Mapped[datetime] = mapped_column(default=timeutil.now, onupdate=timeutil.now)

    subject: Mapped[Subject] = relationship(back_populates="records")
    category: Mapped[Category] = relationship(lazy="joined")


class Organisation(Base):
    """An incentive provider or issuer: a department, institution, enterprise or merchant."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[OrganisationKind] = mapped_column(_enum(OrganisationKind, "organisation_kind"))
    status: Mapped[Status] = mapped_column(_enum(Status, "status"), default=Status.pending)
    status_reason: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(200))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subject.id"))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    reviewed_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))


class Account(Base):
    """A person's login. Bound to a subject once they prove who they are; later to a WeChat openid."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subject.id"), index=True)
    status: Mapped[Status] = mapped_column(_enum(Status, "status"), default=Status.pending)
    status_reason: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    reviewed_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))

    subject: Mapped[Subject | None] = relationship(lazy="joined")
    grants: Mapped[list[RoleGrant]] = relationship(back_populates="account", lazy="selectin",
                                                   cascade="all, delete-orphan")

    def has_role(self, role: Role, *, organisation_id: int | None = None,
                 subject_id: int | None = None) -> bool:
        return any(g.role == role
                   and (organisation_id is None or g.organisation_id == organisation_id)
                   and (subject_id is None or g.subject_id == subject_id)
                   for g in self.grants)

    @property
    def active(self) -> bool:
        return self.status == Status.approved


class RoleGrant(Base):
    """A role held by an account: clerk and org_admin of one organisation, enterprise_agent of one subject."""

    __tablename__ = "role_grant"
    __table_args__ = (
        UniqueConstraint("account_id", "role", "organisation_id", "subject_id",
                         name="uq_role_grant_account_role_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subject.id"))

    account: Mapped[Account] = relationship(back_populates="grants")


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    expires_at: Mapped[datetime]

    account: Mapped[Account] = relationship(lazy="joined")


class HonourDeclaration(Base):
    """A subject's claim to an honour, with evidence, for a platform admin to approve or reject."""

    __tablename__ = "honour_declaration"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"), index=True)
    declared_by_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    category_code: Mapped[str] = mapped_column(ForeignKey("category.code"))
    title: Mapped[str] = mapped_column(String(200))
    issued_by: Mapped[str] = mapped_column(String(100))
    awarded_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[str] = mapped_column(Text)
    status: Mapped[DeclarationStatus] = mapped_column(_enum(DeclarationStatus, "declaration_status"),
                                                      default=DeclarationStatus.pending, index=True)
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    reviewed_at: Mapped[datetime | None]
    record_id: Mapped[int | None] = mapped_column(ForeignKey("credit_record.id"))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)


Index("ix_organisation_status", Organisation.status)
Index("ix_account_status", Account.status)


# --- dynamic codes, incentives and redemptions ---------------------------------------------------

class Scenario(StrEnum):
    administrative_approval = "administrative_approval"  # 行政审批
    transport = "transport"                              # 交通出行
    tourism = "tourism"                                  # 景点旅游
    library = "library"                                  # 图书借阅
    finance = "finance"                                  # 融资贷款
    medical = "medical"                                  # 医疗就医
    housing = "housing"                                  # 租赁安居（信易租）
    other = "other"


class Period(StrEnum):
    """Per-subject limit periods, in Asia/Shanghai calendar time."""
    day = "day"
    week = "week"
    month = "month"
    year = "year"
    ever = "ever"


class IncentiveStatus(StrEnum):
    open = "open"
    closed = "closed"


class RedemptionStatus(StrEnum):
    redeemed = "redeemed"
    rejected = "rejected"
    voided = "voided"


class SigningKey(Base):
    """An Ed25519 key that signs codes. Retired keys keep verifying until their last token expired."""

    __tablename__ = "signing_key"

    kid: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    retired_at: Mapped[datetime | None]
    verify_until: Mapped[datetime | None]


class CodeHandle(Base):
    """The opaque handle a code carries instead of any identifier; rotating it revokes every token."""

    __tablename__ = "code_handle"
    __table_args__ = (
        Index("uq_code_handle_live_subject", "subject_id", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )

    handle: Mapped[bytes] = mapped_column(LargeBinary(8), primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    revoked_at: Mapped[datetime | None]

    subject: Mapped[Subject] = relationship(lazy="joined", innerjoin=True)


class Incentive(Base):
    """An incentive measure (激励措施) an organisation publishes, and the rules of who may use it."""

    __tablename__ = "incentive"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    scenario: Mapped[Scenario] = mapped_column(_enum(Scenario, "scenario"))
    eligible_colours: Mapped[list[str]] = mapped_column(JSON)
    eligible_kinds: Mapped[list[str]] = mapped_column(JSON)
    min_grade: Mapped[Grade | None] = mapped_column(_enum(Grade, "grade"))
    limit_count: Mapped[int | None]
    limit_period: Mapped[Period | None] = mapped_column(_enum(Period, "period"))
    stock_total: Mapped[int | None]
    stock_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    venues: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[IncentiveStatus] = mapped_column(_enum(IncentiveStatus, "incentive_status"),
                                                    default=IncentiveStatus.open)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    updated_at: Mapped[datetime] = mapped_column(default=timeutil.now, onupdate=timeutil.now)

    organisation: Mapped[Organisation] = relationship(lazy="joined", innerjoin=True)
    clerks: Mapped[list[IncentiveClerk]] = relationship(lazy="selectin", cascade="all, delete-orphan")


class IncentiveClerk(Base):
    """Clerks allowed to redeem a measure; none listed means every clerk of its organisation."""

    __tablename__ = "incentive_clerk"

    incentive_id: Mapped[int] = mapped_column(ForeignKey("incentive.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)


class QuotaUsage(Base):
    """How often a subject used a measure in one period; updated conditionally, so limits hold under concurrency."""

    __tablename__ = "quota_usage"

    incentive_id: Mapped[int] = mapped_column(ForeignKey("incentive.id", ondelete="CASCADE"), primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True)
    period_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class Redemption(Base):
    """Every verdict a clerk asked for: redeemed, rejected (with the reason) or later voided."""

    __tablename__ = "redemption"
    __table_args__ = (
        UniqueConstraint("clerk_id", "idempotency_key", name="uq_redemption_clerk_id_idempotency_key"),
        # One token redeems a measure at most once.
        Index("uq_redemption_token_once", "incentive_id", "token_nonce", unique=True,
              sqlite_where=text("status = 'redeemed'"), postgresql_where=text("status = 'redeemed'")),
        Index("ix_redemption_subject_created", "subject_id", "created_at"),
        Index("ix_redemption_organisation_created", "organisation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incentive_id: Mapped[int] = mapped_column(ForeignKey("incentive.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subject.id"))
    clerk_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    status: Mapped[RedemptionStatus] = mapped_column(_enum(RedemptionStatus, "redemption_status"))
    reason: Mapped[str | None] = mapped_column(String(32))
    colour: Mapped[Colour | None] = mapped_column(_enum(Colour, "colour"))
    token_kid: Mapped[int | None]
    token_nonce: Mapped[str | None] = mapped_column(String(12))
    venue: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    voided_at: Mapped[datetime | None]
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))


class Notice(Base):
    """Something a subject is told (a redemption receipt …); the push capability delivers it."""

    __tablename__ = "notice"
    __table_args__ = (
        Index("ix_notice_subject_created", "subject_id", "created_at"),
        # Notices the outbox worker has not fanned out yet (handlers/outbox.py).
        Index("ix_notice_fanout_pending", "id", sqlite_where=text("fanout_at IS NULL"),
              postgresql_where=text("fanout_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    read_at: Mapped[datetime | None]
    page: Mapped[str | None] = mapped_column(String(200))  # the mini-program page / H5 path a push links to
    fanout_at: Mapped[datetime | None]  # when the outbox made its per-recipient messages


class WeChatAccessToken(Base):
    """The one access token per WeChat appid that every process shares (handlers/wechat.py refreshes it)."""

    __tablename__ = "wechat_access_token"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[datetime]  # WeChat's own expiry; we refresh a little before it


# --- WeChat: inbound messages, identities, clerk invites -------------------------------------------

class WeChatInbound(Base):
    """A message or event WeChat delivered, with the reply we gave: a retry gets the same reply, acts once."""

    __tablename__ = "wechat_inbound"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)  # msg:<MsgId> | evt:<openid>:<time>:<event>
    reply: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now, index=True)


class WeChatIdentity(Base):
    """An openid of one of our WeChat apps (official account or mini-program), bound to an account."""

    __tablename__ = "wechat_identity"
    __table_args__ = (UniqueConstraint("appid", "openid", name="uq_wechat_identity_appid_openid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    # The measure a clerk redeems when scanning from the chat menu (核销 <编号>).
    incentive_id: Mapped[int | None] = mapped_column(ForeignKey("incentive.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)

    account: Mapped[Account] = relationship(lazy="joined", innerjoin=True)


class ClerkInvite(Base):
    """A single-use, expiring invitation to become a clerk, carried by a parametric QR code's scene."""

    __tablename__ = "clerk_invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    scene_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the scene: it is a secret
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))


# Models of their own modules (imported here so that metadata and `from handlers.models import X` see them).
from .wechat_binding import WeChatBindingCode  # noqa: E402, F401
from .outbox import Channel, ContactKind, ContactPoint, OutboxAttempt, OutboxMessage, OutboxState  # noqa: E402, F401
from .policies import Disbursement, EnterpriseProfile, EnterpriseTag, Objection, Offer, OfferState, Policy, PolicyState  # noqa: E402, F401
from .documents import (  # noqa: E402, F401
    CommitmentStatus, DocumentDelivery, DocumentLink, DocumentStatus, EvidenceEntry, LegalDocument, ServiceAddress,
    ServiceChannel, ServiceCommitment,
)
