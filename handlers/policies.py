"""Policies (免申即享): enterprise profiles, writing and publishing a policy, matching it over every enterprise in
one INSERT … SELECT, its public notice (公示) and the objections to it.

Matching is set-based: the conditions become one WHERE clause over subject ⟕ enterprise_profile, the amount one
SQL expression, and when the budget cannot cover everyone a window function's running sum, ordered by priority,
cuts the list: grade A first, then B, C and ungraded; within a grade the enterprise registered earlier (unknown
last), then the smaller amount, then the older subject. The cut is strict: nobody further down is paid ahead of
someone above, even when a smaller amount would still fit. Re-matching is idempotent: a draft's preview is
recomputed from scratch; a published policy keeps every offer it made and adds the enterprises that qualify now
and fit in what is left of the budget.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from sqlalchemy import Date, bindparam, delete, func, select
from sqlalchemy.orm import Session

from . import checks, offers, organisations, paging, subjects, timeutil
from .errors import DomainError
from .models import (
    Account, EnterpriseProfile, EnterpriseTag, Grade, Objection, Offer, OfferState, OrganisationKind, Policy,
    PolicyState, Role, Subject, SubjectKind,
)

TITLE_MAX = 100
DESCRIPTION_MAX = 4000
REASON_MAX = 1000
MAX_FEN = 10**13           # 1000亿元: no amount or budget is larger
MAX_TAX_FEN = 10**14       # so that tax × rate (≤ 10000 bp) stays inside a 64-bit integer
LIST_MAX = 50              # prefixes per condition
TAGS_MAX, TAG_MAX = 20, 32
ISSUERS = (OrganisationKind.department, OrganisationKind.institution)
BENEFICIARIES = (SubjectKind.enterprise, SubjectKind.institution)
GRADE_ORDER = (Grade.A, Grade.B, Grade.C)  # D never receives policy money

# --- enterprise data: industry (GB/T 4754-2017), region (GB/T 2260), tags -------------------------------

# Sections of GB/T 4754-2017 by the range of their two-digit divisions.
_SECTIONS = (("A", 1, 5), ("B", 6, 12), ("C", 13, 43), ("D", 44, 46), ("E", 47, 50), ("F", 51, 52), ("G", 53, 60),
             ("H", 61, 62), ("I", 63, 65), ("J", 66, 69), ("K", 70, 70), ("L", 71, 72), ("M", 73, 75),
             ("N", 76, 79), ("O", 80, 82), ("P", 83, 83), ("Q", 84, 85), ("R", 86, 90), ("S", 91, 96),
             ("T", 97, 97))
_INDUSTRY = re.compile(r"([A-T])?([0-9]{2,4})?")


def section_of(division: int) -> str | None:
    return next((letter for letter, lo, hi in _SECTIONS if lo <= division <= hi), None)


def industry_code(value: object, *, prefix: bool = False) -> str:
    """'C3971', '3971' or 'c3971' -> 'C3971' (the section letter follows from the division). A prefix may also be
    a section alone ('C') or a division or group ('C39', '397')."""
    s = value.strip().upper() if isinstance(value, str) else ""
    m = _INDUSTRY.fullmatch(s) if s else None
    if m is None:
        raise DomainError("bad_industry_code", detail={"value": str(value)[:20]})
    letter, digits = m.groups()
    if digits:
        section = section_of(int(digits[:2]))
        if section is None or (letter and letter != section):
            raise DomainError("bad_industry_code", detail={"value": s[:20]})
        letter = section
    elif not prefix:
        raise DomainError("bad_industry_code", detail={"value": s[:20]})
    return letter + (digits or "")


def region_code(value: object, *, prefix: bool = False) -> str:
    """A six-digit administrative division code (441302). As a prefix also 2 or 4 digits, and a code ending in
    00 pairs stands for its province or city: '441300' -> '4413' (all of Huizhou)."""
    s = value.strip() if isinstance(value, str) else ""
    ok = s.isascii() and s.isdigit() and (len(s) == 6 or (prefix and len(s) in (2, 4))) and 11 <= int(s[:2]) <= 82
    if not ok:
        raise DomainError("bad_region_code", detail={"value": str(value)[:20]})
    if prefix:
        while len(s) > 2 and s.endswith("00"):
            s = s[:-2]
    return s


def clean_tag(value: object) -> str:
    s = value.strip() if isinstance(value, str) else ""
    if not s or len(s) > TAG_MAX or not s.isprintable():
        raise DomainError("bad_tag", detail={"max_length": TAG_MAX})
    return s


def _tags(values: object) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, (list, tuple)) or len(values) > TAGS_MAX:
        raise DomainError("bad_tag", detail={"max_items": TAGS_MAX, "max_length": TAG_MAX})
    out: list[str] = []
    for v in values:
        t = clean_tag(v)
        if t not in out:
            out.append(t)
    return out


def _money(value: object, code: str, *, maximum: int = MAX_FEN, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise DomainError(code, detail={"min": minimum, "max": maximum})
    return value


def _day(value: object, name: str) -> date | None:
    """A date, or its ISO text (what a JSON column gives back)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise DomainError("bad_date", detail={"field": name})


PROFILE_FIELDS = ("industry_code", "region_code", "registered_on", "last_year_tax_fen", "tax_year", "tags")


@dataclass(frozen=True)
class Profile:
    subject_id: int
    industry_code: str | None = None
    region_code: str | None = None
    registered_on: date | None = None
    last_year_tax_fen: int | None = None
    tax_year: int | None = None
    tags: tuple[str, ...] = ()
    updated_at: datetime | None = None


def profile_of(session: Session, subject_id: int) -> Profile:
    p = session.get(EnterpriseProfile, subject_id)
    tags = tuple(session.scalars(select(EnterpriseTag.tag).where(EnterpriseTag.subject_id == subject_id)
                                 .order_by(EnterpriseTag.tag)))
    if p is None:
        return Profile(subject_id, tags=tags)
    return Profile(subject_id, p.industry_code, p.region_code, p.registered_on, p.last_year_tax_fen, p.tax_year,
                   tags, p.updated_at)


def set_profile(session: Session, actor: Account, subject_id: int, **values) -> Profile:
    """Replace what the conditions read about an enterprise or institution (platform admins; a bulk import can
    fill the same two tables keyed by subject). Missing fields become empty."""
    if not actor.has_role(Role.platform_admin):
        raise DomainError("forbidden")
    extra = sorted(set(values) - set(PROFILE_FIELDS))
    if extra:
        raise TypeError(f"unknown profile fields: {', '.join(extra)}")
    if not offers.is_id(subject_id):
        raise DomainError("subject_not_found")
    subject = subjects.get(session, subject_id)
    if subject.kind not in BENEFICIARIES:
        raise DomainError("bad_subject_kind")
    v = {name: values.get(name) for name in PROFILE_FIELDS}
    clean = {
        "industry_code": None if v["industry_code"] in (None, "") else industry_code(v["industry_code"]),
        "region_code": None if v["region_code"] in (None, "") else region_code(v["region_code"]),
        "registered_on": _day(v["registered_on"], "registered_on"),
        "last_year_tax_fen": (None if v["last_year_tax_fen"] is None
                              else _money(v["last_year_tax_fen"], "bad_tax_amount", maximum=MAX_TAX_FEN, minimum=0)),
        "tax_year": v["tax_year"],
    }
    if clean["registered_on"] is not None:
        checks.not_in_future(clean["registered_on"], "registered_on")
    ty = clean["tax_year"]
    if ty is not None and (not isinstance(ty, int) or isinstance(ty, bool) or not 1990 <= ty <= checks.today().year):
        raise DomainError("bad_tax_year")
    tags = _tags(v["tags"])
    row = session.get(EnterpriseProfile, subject.id)
    if row is None:
        row = EnterpriseProfile(subject_id=subject.id)
        session.add(row)
    for name, value in clean.items():
        setattr(row, name, value)
    row.updated_at = timeutil.now()
    session.execute(delete(EnterpriseTag).where(EnterpriseTag.subject_id == subject.id))
    session.add_all(EnterpriseTag(subject_id=subject.id, tag=t) for t in tags)
    session.flush()
    return profile_of(session, subject.id)


# --- the amount: fixed, or a share of an enterprise figure, capped --------------------------------------

# Enterprise figures a formula may use: name -> column of enterprise_profile p.
BASES = {"last_year_tax": "p.last_year_tax_fen"}


@dataclass(frozen=True)
class AmountRule:
    """{"fixed_fen": N}, or {"base": "last_year_tax", "rate_bp": R, "cap_fen": C}: R ten-thousandths (500 = 5%)
    of the base, rounded down to the fen, at most C. Data, never code: the SQL comes from a fixed template."""

    fixed_fen: int | None = None
    base: str | None = None
    rate_bp: int | None = None
    cap_fen: int | None = None

    @classmethod
    def parse(cls, value: object) -> AmountRule:
        if not isinstance(value, dict):
            raise DomainError("bad_amount_rule")
        keys = set(value)
        if keys == {"fixed_fen"}:
            return cls(fixed_fen=_money(value["fixed_fen"], "bad_amount_rule"))
        if keys == {"base", "rate_bp", "cap_fen"}:
            if value["base"] not in BASES:
                raise DomainError("bad_amount_rule", detail={"bases": sorted(BASES)})
            return cls(base=value["base"], rate_bp=_money(value["rate_bp"], "bad_amount_rule", maximum=10_000),
                       cap_fen=_money(value["cap_fen"], "bad_amount_rule"))
        raise DomainError("bad_amount_rule")

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def sql(self) -> tuple[str, dict]:
        """The amount in fen as SQL over enterprise_profile p, and its parameters."""
        if self.fixed_fen is not None:
            return ":a_fixed", {"a_fixed": self.fixed_fen}
        share = f"({BASES[self.base]} * :a_rate / 10000)"
        return f"CASE WHEN {share} > :a_cap THEN :a_cap ELSE {share} END", {"a_rate": self.rate_bp,
                                                                            "a_cap": self.cap_fen}

    def of(self, profile: Profile) -> int | None:
        """The same in Python, for one enterprise (what matching computes in SQL)."""
        if self.fixed_fen is not None:
            return self.fixed_fen
        base = getattr(profile, BASES[self.base].removeprefix("p."))
        return None if base is None else min(self.cap_fen, base * self.rate_bp // 10000)


# --- the conditions ------------------------------------------------------------------------------------

CONDITION_FIELDS = ("kinds", "min_grade", "colours", "industry_prefixes", "region_prefixes", "registered_before",
                    "tags_all", "tags_any")


@dataclass(frozen=True)
class Conditions:
    """Who qualifies. Always: not red, not D-grade. The rest narrows: kinds of subject, a minimum grade (then
    ungraded ones do not qualify), colours (green and/or blue), industry and region code prefixes (any of them),
    established before a date, tags (all of tags_all, at least one of tags_any)."""

    kinds: tuple[str, ...] = (SubjectKind.enterprise.value,)
    min_grade: str | None = None
    colours: tuple[str, ...] = ("green", "blue")
    industry_prefixes: tuple[str, ...] = ()
    region_prefixes: tuple[str, ...] = ()
    registered_before: date | None = None
    tags_all: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: object) -> Conditions:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise DomainError("bad_conditions")
        extra = sorted(set(value) - set(CONDITION_FIELDS))
        if extra:
            raise DomainError("bad_conditions", detail={"fields": extra})
        out: dict = {}
        if value.get("kinds") is not None:
            kinds = value["kinds"]
            if (not isinstance(kinds, (list, tuple)) or not kinds
                    or any(k not in [b.value for b in BENEFICIARIES] for k in kinds)):
                raise DomainError("bad_policy_kinds")
            out["kinds"] = tuple(b.value for b in BENEFICIARIES if b.value in kinds)
        grade = value.get("min_grade")
        if grade is not None:
            if grade == Grade.D.value:
                raise DomainError("d_grade_never_eligible")
            out["min_grade"] = checks.choice(Grade, grade, "bad_grade", allowed=GRADE_ORDER).value
        if value.get("colours") is not None:
            cs = value["colours"]
            if isinstance(cs, (list, tuple)) and "red" in cs:
                raise DomainError("red_never_eligible")
            if not isinstance(cs, (list, tuple)) or not cs or any(c not in ("green", "blue") for c in cs):
                raise DomainError("bad_eligible_colours")
            out["colours"] = tuple(c for c in ("green", "blue") if c in cs)
        for name, clean in (("industry_prefixes", industry_code), ("region_prefixes", region_code)):
            items = value.get(name)
            if items is None:
                continue
            if not isinstance(items, (list, tuple)) or len(items) > LIST_MAX:
                raise DomainError("bad_industry_code" if name == "industry_prefixes" else "bad_region_code",
                                  detail={"max_items": LIST_MAX})
            out[name] = tuple(dict.fromkeys(clean(i, prefix=True) for i in items))
        out["registered_before"] = _day(value.get("registered_before"), "registered_before")
        out["tags_all"] = tuple(_tags(value.get("tags_all")))
        out["tags_any"] = tuple(_tags(value.get("tags_any")))
        return cls(**out)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["registered_before"] = self.registered_before.isoformat() if self.registered_before else None
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @property
    def needs_profile(self) -> bool:
        return bool(self.industry_prefixes or self.region_prefixes or self.registered_before or self.tags_all
                    or self.tags_any)

    def sql(self) -> tuple[str, dict]:
        """The WHERE clause over subject s ⟕ enterprise_profile p, and its parameters (values are never inlined)."""
        params: dict = {}

        def bind(prefix: str, values) -> str:
            names = []
            for n, v in enumerate(values):
                params[f"{prefix}{n}"] = v
                names.append(f":{prefix}{n}")
            return ", ".join(names)

        where = [f"s.kind IN ({bind('c_kind', self.kinds)})",
                 f"s.colour IN ({bind('c_colour', self.colours)})"]
        if self.min_grade is not None:
            allowed = [g.value for g in GRADE_ORDER[:GRADE_ORDER.index(Grade(self.min_grade)) + 1]]
            where.append(f"s.grade IN ({bind('c_grade', allowed)})")
        else:
            where.append("(s.grade IS NULL OR s.grade <> 'D')")
        for column, prefixes, tag in (("p.industry_code", self.industry_prefixes, "c_ind"),
                                      ("p.region_code", self.region_prefixes, "c_reg")):
            if prefixes:
                tests = []
                for n, pre in enumerate(prefixes):
                    params[f"{tag}{n}"] = pre
                    tests.append(f"substr({column}, 1, {len(pre)}) = :{tag}{n}")
                where.append(f"({' OR '.join(tests)})")
        if self.registered_before is not None:
            params["c_before"] = self.registered_before
            where.append("p.registered_on < :c_before")
        for n, t in enumerate(self.tags_all):
            params[f"c_all{n}"] = t
            where.append(f"EXISTS (SELECT 1 FROM enterprise_tag t WHERE t.subject_id = s.id AND t.tag = :c_all{n})")
        if self.tags_any:
            where.append(f"EXISTS (SELECT 1 FROM enterprise_tag t WHERE t.subject_id = s.id "
                         f"AND t.tag IN ({bind('c_any', self.tags_any)}))")
        return " AND ".join(where), params


# --- policies: write, publish, close -------------------------------------------------------------------

FIELDS = ("title", "description", "amount_rule", "conditions", "budget_fen", "notice_from", "notice_until",
          "confirm_until")
_REQUIRED = ("title", "amount_rule", "notice_from", "notice_until")
_DEFAULTS = {"description": None, "conditions": None, "budget_fen": None, "confirm_until": None}
# What may still change once enterprises were told: words and dates, and the budget (not below what is committed).
EDITABLE_PUBLISHED = ("description", "notice_from", "notice_until", "confirm_until", "budget_fen")


def get(session: Session, policy_id: object) -> Policy:
    policy = session.get(Policy, policy_id) if offers.is_id(policy_id) else None
    if policy is None:
        raise DomainError("policy_not_found")
    return policy


def can_manage(actor: Account | None, policy: Policy) -> bool:
    return offers.can_manage(actor, policy)


def visible(session: Session, actor: Account | None, policy_id: int) -> Policy:
    """Published and closed policies are public; a draft only to those who manage it (others: not found)."""
    policy = get(session, policy_id)
    if policy.state == PolicyState.draft and not can_manage(actor, policy):
        raise DomainError("policy_not_found")
    return policy


def locked(session: Session, policy_id: object) -> Policy:
    """The policy, row-locked until the transaction ends: matching, publishing and batches of one policy queue."""
    if not offers.is_id(policy_id):
        raise DomainError("policy_not_found")
    policy = session.scalar(select(Policy).where(Policy.id == policy_id).with_for_update(of=Policy)
                            .execution_options(populate_existing=True))
    if policy is None:
        raise DomainError("policy_not_found")
    return policy


def managed(session: Session, actor: Account, policy_id: int, *, lock: bool = False) -> Policy:
    """The policy, for the platform admins and the admins of its issuing department; locked when asked."""
    policy = locked(session, policy_id) if lock else get(session, policy_id)
    if not can_manage(actor, policy):
        if policy.state == PolicyState.draft:
            raise DomainError("policy_not_found")
        raise DomainError("forbidden")
    return policy


def _validated(session: Session, policy: Policy | None, values: dict) -> dict:
    v = dict(values)
    out = {
        "title": checks.text(v["title"], "title", max_length=TITLE_MAX),
        "description": checks.text(v["description"], "description", max_length=DESCRIPTION_MAX, required=False),
        "amount_rule": AmountRule.parse(v["amount_rule"]).as_dict(),
        "conditions": Conditions.parse(v["conditions"]).as_dict(),
        "budget_fen": None if v["budget_fen"] is None else _money(v["budget_fen"], "bad_budget"),
        "notice_from": _day(v["notice_from"], "notice_from"),
        "notice_until": _day(v["notice_until"], "notice_until"),
        "confirm_until": _day(v["confirm_until"], "confirm_until"),
    }
    if out["notice_from"] is None or out["notice_until"] is None:
        raise DomainError("missing_field", detail={"fields": [n for n in ("notice_from", "notice_until")
                                                              if out[n] is None]})
    checks.in_order(out["notice_from"], out["notice_until"], "notice_from", "notice_until")
    if policy is not None and out["budget_fen"] is not None:
        committed = offers.committed_fen(session, policy.id)
        if out["budget_fen"] < committed and policy.state != PolicyState.draft:
            raise DomainError("budget_below_committed", detail={"committed_fen": committed})
    return out


def _unknown(values: dict) -> None:
    extra = sorted(set(values) - set(FIELDS))
    if extra:
        raise TypeError(f"unknown policy fields: {', '.join(extra)}")


def create_policy(session: Session, actor: Account, organisation_id: int, **values) -> Policy:
    """A draft policy of an approved department or institution the actor administers."""
    _unknown(values)
    if not offers.is_id(organisation_id):
        raise DomainError("organisation_not_found")
    org = organisations._managed(session, actor, organisation_id)
    if org.kind not in ISSUERS:
        raise DomainError("issuer_not_a_department")
    missing = [n for n in _REQUIRED if values.get(n) is None]
    if missing:
        raise DomainError("missing_field", detail={"fields": missing})
    clean = _validated(session, None, {**_DEFAULTS, **values})
    policy = Policy(organisation_id=org.id, state=PolicyState.draft, created_by_id=actor.id, match_runs=0, **clean)
    session.add(policy)
    session.flush()
    return policy


def update_policy(session: Session, actor: Account, policy_id: int, **changes) -> Policy:
    """Change a draft freely; a published policy only in its words, dates and budget; a closed one not at all."""
    _unknown(changes)
    policy = managed(session, actor, policy_id, lock=True)
    if policy.state == PolicyState.closed:
        raise DomainError("illegal_transition", detail={"state": policy.state.value, "action": "edit"})
    current = {n: getattr(policy, n) for n in FIELDS}
    clean = _validated(session, policy, {**current, **changes})
    changed = {name: value for name, value in clean.items() if current[name] != value}
    # A client may send the whole policy back: only fields whose value changes count.
    frozen = sorted(n for n in changed if n not in EDITABLE_PUBLISHED)
    if policy.state == PolicyState.published and frozen:
        raise DomainError("policy_locked", detail={"fields": frozen})
    for name, value in changed.items():
        setattr(policy, name, value)
    session.flush()
    return policy


def publish_policy(session: Session, actor: Account, policy_id: int, *,
                   progress: Callable[[str, dict], None] | None = None) -> MatchResult:
    """Publish a draft and match it: every enterprise that qualifies (within the budget) gets its offer and a push."""
    policy = managed(session, actor, policy_id, lock=True)
    if policy.state != PolicyState.draft:
        raise DomainError("illegal_transition", detail={"state": policy.state.value, "action": "publish"})
    now = timeutil.now()
    # A preview may be stale (data and conditions change): publishing matches afresh, and tells.
    dropped = session.execute(delete(Offer).where(Offer.policy_id == policy.id,
                                                  Offer.state == OfferState.matched)).rowcount
    policy.state, policy.published_at = PolicyState.published, now
    session.flush()
    result = run_match(session, policy, progress=progress, at=now)
    result.previews_dropped = dropped
    return result


def close_policy(session: Session, actor: Account, policy_id: int) -> Policy:
    """No more matching or confirming: unconfirmed offers expire (and are told); confirmed ones can still be paid.
    A draft closes too (its preview is dropped). Closing a closed policy changes nothing."""
    policy = managed(session, actor, policy_id, lock=True)
    if policy.state == PolicyState.closed:
        return policy
    now = timeutil.now()
    if policy.state == PolicyState.draft:
        session.execute(delete(Offer).where(Offer.policy_id == policy.id, Offer.state == OfferState.matched))
    else:
        offers.expire_unconfirmed(session, policy, now)
    policy.state, policy.closed_at = PolicyState.closed, now
    session.flush()
    return policy


def list_published(session: Session, *, limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    query = (select(Policy).where(Policy.state.in_((PolicyState.published, PolicyState.closed)))
             .order_by(Policy.id.desc()))
    return paging.page(session, query, limit=limit, offset=offset)


def list_managed(session: Session, actor: Account, *, state: str | None = None, organisation_id: int | None = None,
                 limit: int = paging.DEFAULT_LIMIT, offset: int = 0) -> paging.Page:
    """Platform admins see every policy; an organisation's admins those of their organisations."""
    query = select(Policy).order_by(Policy.id.desc())
    if not actor.has_role(Role.platform_admin):
        mine = [g.organisation_id for g in actor.grants if g.role == Role.org_admin and g.organisation_id]
        query = query.where(Policy.organisation_id.in_(mine))
    if organisation_id is not None:
        if not offers.is_id(organisation_id):
            raise DomainError("organisation_not_found")
        query = query.where(Policy.organisation_id == organisation_id)
    if state not in (None, ""):
        query = query.where(Policy.state == checks.choice(PolicyState, state, "bad_status"))
    return paging.page(session, query, limit=limit, offset=offset)


# --- matching --------------------------------------------------------------------------------------------

@dataclass
class MatchResult:
    """What one run of matching did. ``eligible``: enterprises that qualify and had no offer yet; ``offered``: how
    many of them got one (the rest did not fit in the budget); ``notified``: pushes written."""

    policy_id: int
    run: int
    state: str
    eligible: int = 0
    offered: int = 0
    offered_fen: int = 0
    over_budget: int = 0
    notified: int = 0
    previews_dropped: int = 0
    colours_refreshed: int = 0
    committed_fen: int = 0
    budget_fen: int | None = None
    remaining_fen: int | None = None
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# The budget's priority order over the candidates c (module docstring).
_PRIORITY = ("c.grade_rank, CASE WHEN c.registered_on IS NULL THEN 1 ELSE 0 END, c.registered_on, c.amount, "
             "c.subject_id")


def candidates_sql(policy: Policy) -> tuple[str, dict]:
    """SELECT subject_id, grade, amount [, running] of every enterprise that qualifies now and has no offer of
    this policy yet; with a budget, ``running`` is the running sum of amounts in priority order."""
    rule = AmountRule.parse(policy.amount_rule)
    cond = Conditions.parse(policy.conditions)
    where, params = cond.sql()
    amount, aparams = rule.sql()
    params.update(aparams, m_policy_id=policy.id)
    join = "JOIN" if (cond.needs_profile or rule.base) else "LEFT JOIN"
    inner = (f"SELECT s.id AS subject_id, s.grade AS grade, {amount} AS amount, p.registered_on AS registered_on, "
             f"CASE s.grade WHEN 'A' THEN 1 WHEN 'B' THEN 2 WHEN 'C' THEN 3 ELSE 4 END AS grade_rank "
             f"FROM subject s {join} enterprise_profile p ON p.subject_id = s.id "
             f"WHERE {where} AND NOT EXISTS (SELECT 1 FROM offer o WHERE o.policy_id = :m_policy_id "
             f"AND o.subject_id = s.id)")
    if rule.base:
        inner += f" AND {BASES[rule.base]} IS NOT NULL"
    if policy.budget_fen is None:
        return f"SELECT c.subject_id, c.grade, c.amount FROM ({inner}) c WHERE c.amount > 0", params
    return ((f"SELECT c.subject_id, c.grade, c.amount, SUM(c.amount) OVER (ORDER BY {_PRIORITY} "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM ({inner}) c WHERE c.amount > 0"),
            params)


def _typed(params: dict) -> list:
    return [bindparam(k, type_=Date) for k, v in params.items() if isinstance(v, date)]


def match(session: Session, actor: Account, policy_id: int, *,
          progress: Callable[[str, dict], None] | None = None) -> MatchResult:
    """Match (or re-match) a policy for its admins: a draft gets a fresh preview, a published policy its newcomers."""
    policy = managed(session, actor, policy_id, lock=True)
    return run_match(session, policy, progress=progress)


def run_match(session: Session, policy: Policy, *, progress: Callable[[str, dict], None] | None = None,
              at: datetime | None = None) -> MatchResult:
    """Match without asking who (the CLI is the operator); the policy row must be locked by the caller's
    transaction or be the caller's own (publish). Writes in the caller's transaction; commits nothing."""
    at = at or timeutil.now()
    if policy.state == PolicyState.closed:
        raise DomainError("illegal_transition", detail={"state": policy.state.value, "action": "match"})
    say = progress or (lambda phase, info: None)
    started = clock = time.perf_counter()
    result = MatchResult(policy.id, policy.match_runs + 1, policy.state.value, budget_fen=policy.budget_fen)

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.phases[name] = now - clock
        clock = now

    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    if pg:
        # The window's sort of up to a million rows stays in memory instead of spilling to disk.
        conn.exec_driver_sql("SET LOCAL work_mem = '128MB'")
    cond = Conditions.parse(policy.conditions)
    say("colours", {})
    result.colours_refreshed = offers.refresh_stale_colours(
        session, select(Subject.id).where(Subject.kind.in_(cond.kinds)), at)
    lap("colours")
    draft = policy.state == PolicyState.draft
    if draft:
        result.previews_dropped = session.execute(
            delete(Offer).where(Offer.policy_id == policy.id, Offer.state == OfferState.matched)).rowcount
    committed = offers.committed_fen(session, policy.id)
    remaining = None if policy.budget_fen is None else max(policy.budget_fen - committed, 0)
    lap("budget")

    select_sql, params = candidates_sql(policy)
    if remaining is not None:
        say("counting", {})
        result.eligible = int(conn.execute(offers.sql(f"SELECT COUNT(*) FROM ({select_sql}) r")
                                           .bindparams(*_typed(params)), params).scalar() or 0)
        lap("count")
        select_sql = f"SELECT subject_id, grade, amount FROM ({select_sql}) r WHERE r.running <= :m_remaining"
        params["m_remaining"] = remaining
    state = OfferState.matched if draft else OfferState.notified
    # In subject order the offer indexes grow at their right edge instead of all over: measurably faster. No
    # ON CONFLICT (its speculative insertion costs per row): the candidates exclude every subject with an offer,
    # and the policy's row lock, held by the caller, keeps a second matching out until this one committed.
    insert = (f"INSERT INTO offer (policy_id, subject_id, state, amount_fen, grade, match_run, matched_at, "
              f"notified_at, updated_at) SELECT :m_policy_id, subject_id, :m_state, amount, grade, :m_run, "
              f":m_matched_at, {'NULL' if draft else ':m_matched_at'}, :m_matched_at FROM ({select_sql}) x "
              f"ORDER BY subject_id")
    params.update(m_state=state.value, m_run=result.run, m_matched_at=at)
    if pg and not draft:
        # One statement: the notices are written from the rows just inserted (RETURNING), not read back again.
        say("matching_and_notifying", {"eligible": result.eligible if remaining is not None else None})
        notices, nbinds = offers.notices_sql("postgresql", "offer_matched", policy, "ins o")
        both = offers.sql(
            f"WITH ins AS ({insert} RETURNING id, policy_id, subject_id, amount_fen, state), "
            f"n AS ({notices} RETURNING 1) "
            f"SELECT (SELECT count(*) FROM ins), (SELECT COALESCE(SUM(amount_fen), 0) FROM ins), "
            f"(SELECT count(*) FROM n)").bindparams(*_typed(params))
        result.offered, result.offered_fen, result.notified = map(int, conn.execute(both, {**params, **nbinds}).one())
        lap("insert_and_notices")
    else:
        say("matching", {"eligible": result.eligible if remaining is not None else None})
        result.offered = conn.execute(offers.sql(insert).bindparams(*_typed(params)), params).rowcount
        lap("insert")
        if not draft and result.offered:
            say("notifying", {"offered": result.offered})
            result.notified = offers.tell_many(session, "offer_matched", policy, "o.match_run = :t_run",
                                               {"t_run": result.run})
            lap("notices")
        result.offered_fen = int(session.scalar(select(func.coalesce(func.sum(Offer.amount_fen), 0)).where(
            Offer.policy_id == policy.id, Offer.match_run == result.run)) or 0)
    if remaining is None:
        result.eligible = result.offered
    result.over_budget = result.eligible - result.offered
    result.committed_fen = committed + result.offered_fen
    result.remaining_fen = None if policy.budget_fen is None else policy.budget_fen - result.committed_fen
    policy.match_runs, policy.matched_at = result.run, at
    session.flush()
    lap("totals")
    result.seconds = time.perf_counter() - started
    say("done", result.as_dict())
    return result


# --- the public notice (公示) and objections -------------------------------------------------------------

def _in_notice(policy: Policy, at: datetime) -> None:
    day = timeutil.local_date(at)
    if policy.state == PolicyState.draft or not policy.notice_from <= day <= policy.notice_until:
        raise DomainError("not_in_notice_period", detail={"notice_from": policy.notice_from.isoformat(),
                                                          "notice_until": policy.notice_until.isoformat()})


def public_notice(session: Session, policy_id: int, *, at: datetime | None = None, limit: int = paging.DEFAULT_LIMIT,
                  offset: int = 0) -> tuple[Policy, paging.Page]:
    """During the notice period: the enterprises to be paid, masked, with their amounts (no sign-in needed)."""
    policy = visible(session, None, policy_id)
    _in_notice(policy, at or timeutil.now())
    query = (select(Offer.id, Offer.amount_fen, Offer.state, Subject.name_masked, Subject.id_masked)
             .join(Subject, Subject.id == Offer.subject_id)
             .where(Offer.policy_id == policy.id, Offer.state.in_(offers.NOTICE_LISTED))
             .order_by(Offer.id))
    limit = max(1, min(int(limit), paging.MAX_LIMIT))
    offset = max(0, int(offset))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return policy, paging.Page(rows, total, limit, offset)


def file_objection(session: Session, actor: Account, policy_id: int, *, reason: str, offer_id: int | None = None,
                   at: datetime | None = None) -> Objection:
    """Object to a policy's public notice (about one listed enterprise, or in general), during the notice period."""
    at = at or timeutil.now()
    reason = checks.text(reason, "reason", max_length=REASON_MAX)
    policy = visible(session, actor, policy_id)
    _in_notice(policy, at)
    if offer_id is not None:
        if not offers.is_id(offer_id):
            raise DomainError("offer_not_found")
        listed = session.scalar(select(Offer.id).where(Offer.id == offer_id, Offer.policy_id == policy.id,
                                                       Offer.state.in_(offers.NOTICE_LISTED)))
        if listed is None:
            raise DomainError("offer_not_found")
    objection = Objection(policy_id=policy.id, offer_id=offer_id, account_id=actor.id, reason=reason, created_at=at)
    session.add(objection)
    session.flush()
    return objection


def list_objections(session: Session, policy: Policy, *, limit: int = paging.DEFAULT_LIMIT,
                    offset: int = 0) -> paging.Page:
    query = select(Objection).where(Objection.policy_id == policy.id).order_by(Objection.id)
    return paging.page(session, query, limit=limit, offset=offset)

