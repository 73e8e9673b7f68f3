"""Policy offers (免申即享): enterprise data the conditions read, policies, offers, payment batches, objections."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import timeutil
from . import Base, Organisation, StrEnum, _enum


class PolicyState(StrEnum):
    draft = "draft"          # being written; matching makes a preview (offers in 'matched', nobody told)
    published = "published"  # offers are pushed to the enterprises; re-matching adds newcomers
    closed = "closed"        # no more matching or confirming; what was confirmed can still be paid


class OfferState(StrEnum):
    matched = "matched"      # a draft's preview, not shown to the enterprise
    notified = "notified"    # pushed; waiting for the enterprise's one click
    confirmed = "confirmed"  # the enterprise wants it (意愿确认)
    declined = "declined"    # the enterprise does not (the money goes back to the budget)
    approved = "approved"    # approved for payment
    disbursed = "disbursed"  # paid in a batch with a payment reference (拨付)
    received = "received"    # the enterprise confirmed receipt (到账确认)
    held = "held"            # stopped by a credit check (red or D meanwhile), with a reason
    expired = "expired"      # not confirmed before the policy closed
    cancelled = "cancelled"  # withdrawn by an admin, with a reason (an objection upheld …)


class EnterpriseProfile(Base):
    """What policy conditions read about an enterprise or institution, one row per subject.

    Filled by an admin (PUT /api/v1/admin/enterprises/{id}/profile) or, later, by a bulk import keyed by
    the subject; it holds no identifier (the region is a code of its own, not the credit code's digits).
    """

    __tablename__ = "enterprise_profile"

    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True)
    industry_code: Mapped[str | None] = mapped_column(String(5))   # GB/T 4754-2017: section letter + digits, C3971
    region_code: Mapped[str | None] = mapped_column(String(6))     # GB/T 2260 administrative division, 441302
    registered_on: Mapped[date | None] = mapped_column(Date)       # date of establishment (成立日期)
    last_year_tax_fen: Mapped[int | None] = mapped_column(BigInteger)  # taxes paid last year, in fen (分)
    tax_year: Mapped[int | None] = mapped_column(Integer)          # which year last_year_tax_fen is of
    updated_at: Mapped[datetime] = mapped_column(default=timeutil.now, onupdate=timeutil.now)


class EnterpriseTag(Base):
    """A custom tag of an enterprise (高新技术企业, 专精特新 …) that conditions can ask for."""

    __tablename__ = "enterprise_tag"
    __table_args__ = (Index("ix_enterprise_tag_tag", "tag"),)

    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)


class Policy(Base):
    """A policy benefit matched to enterprises from data (免申即享): who issues it, to whom, how much, the budget."""

    __tablename__ = "policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)  # the issuing department
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[PolicyState] = mapped_column(_enum(PolicyState, "policy_state"), default=PolicyState.draft)
    # {"fixed_fen": N} or {"base": "last_year_tax", "rate_bp": R, "cap_fen": C}: handlers/policies.py AmountRule.
    amount_rule: Mapped[dict] = mapped_column(JSON)
    # kinds, min_grade, colours, industry_prefixes, region_prefixes, registered_before, tags_all, tags_any.
    conditions: Mapped[dict] = mapped_column(JSON)
    budget_fen: Mapped[int | None] = mapped_column(BigInteger)  # NULL: no budget limit
    notice_from: Mapped[date] = mapped_column(Date)             # the public notice (公示), Asia/Shanghai dates
    notice_until: Mapped[date] = mapped_column(Date)
    confirm_until: Mapped[date | None] = mapped_column(Date)    # last day an enterprise may confirm
    match_runs: Mapped[int] = mapped_column(Integer, default=0)
    matched_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)
    updated_at: Mapped[datetime] = mapped_column(default=timeutil.now, onupdate=timeutil.now)
    published_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(lazy="joined", innerjoin=True)


class Disbursement(Base):
    """One payment batch (拨付批次): the offers it paid carry its id; its reference is the bank's or treasury's."""

    __tablename__ = "disbursement"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    payment_reference: Mapped[str] = mapped_column(String(64), unique=True)
    offer_count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    held_count: Mapped[int] = mapped_column(Integer, default=0)  # offers of the batch stopped by the credit check
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)


class Offer(Base):
    """A policy matched to one enterprise, and where it stands: one per (policy, enterprise).

    No foreign keys, on purpose: matching inserts up to a million offers in one statement, and PostgreSQL checks
    each foreign key of each row with a locking look-up (RI trigger) -- measured, the checks of subject_id and
    policy_id alone took 8.3 s of 12.8 s for 850,000 offers, and even NULL actor columns cost a trigger call per
    row each. The references hold without them: offers are only made by INSERT … SELECT from subject joined in
    the transaction that holds the policy's row lock, and deleting a subject or a policy deletes its offers by
    trigger (migration 0006). The *_by_id columns are account ids as they were when the step was taken.
    """

    __tablename__ = "offer"
    __table_args__ = (
        UniqueConstraint("policy_id", "subject_id", name="uq_offer_policy_id_subject_id"),
        Index("ix_offer_policy_state", "policy_id", "state"),
        Index("ix_offer_subject_id", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int]
    subject_id: Mapped[int]
    state: Mapped[OfferState] = mapped_column(_enum(OfferState, "offer_state"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    grade: Mapped[str | None] = mapped_column(String(1))  # the grade when matched (the budget's priority)
    match_run: Mapped[int] = mapped_column(Integer)       # which run of the policy's matching made it
    reason: Mapped[str | None] = mapped_column(String(32))    # why held / cancelled / declined: a stable code
    note: Mapped[str | None] = mapped_column(Text)            # an admin's or the enterprise's words
    held_from: Mapped[OfferState | None] = mapped_column(_enum(OfferState, "offer_held_from"))  # where release returns
    matched_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    confirmed_by_id: Mapped[int | None]
    declined_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None]
    disbursement_id: Mapped[int | None]
    disbursed_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    received_by_id: Mapped[int | None]
    held_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    updated_by_id: Mapped[int | None]

    policy: Mapped[Policy] = relationship(lazy="joined", innerjoin=True, primaryjoin="Offer.policy_id == Policy.id",
                                          foreign_keys="Offer.policy_id")


class Objection(Base):
    """An objection to a policy's public notice (公示异议), optionally about one listed offer, for admins to read."""

    __tablename__ = "objection"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offer.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=timeutil.now)


__all__ = ["Disbursement", "EnterpriseProfile", "EnterpriseTag", "Objection", "Offer", "OfferState", "Policy",
           "PolicyState"]
