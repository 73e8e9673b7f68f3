"""The demo's policy offers: what the demo enterprises' profiles say, and one subsidy (a draft) they match."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import checks, policies, timeutil
from .models import EnterpriseProfile, EnterpriseTag, Policy

HIGH_TECH = "高新技术企业"

# demo subject key -> (industry GB/T 4754, region, established, last year's tax in fen, tags)
PROFILES = {
    "pengcheng-electronics": ("C3982", "441302", date(2013, 6, 18), 2_860_000_00, (HIGH_TECH, "专精特新")),
    "dongjiang-materials": ("C3021", "441302", date(2009, 3, 2), 940_000_00, (HIGH_TECH,)),
    "shunfa-logistics": ("G5431", "441303", date(2017, 8, 11), 210_000_00, ()),
    "hongsheng-chemicals": ("C2662", "441322", date(2011, 5, 20), 1_500_000_00, (HIGH_TECH,)),
}

# Matches the A-grade electronics maker (143,000 yuan) and the B-grade building materials maker (47,000 yuan);
# not the logistics firm (not manufacturing, grade C) nor the chemicals maker (D-grade and red: never).
TITLE = "2026年度制造业高新技术企业研发奖励"
DESCRIPTION = ("对本市制造业高新技术企业按上年度纳税额的5%给予研发奖励，单户最高20万元。"
               "符合条件的企业无需申请，系统自动比对后推送，企业一键确认即可，资金直达企业账户。")
AMOUNT_RULE = {"base": "last_year_tax", "rate_bp": 500, "cap_fen": 200_000_00}
CONDITIONS = {"kinds": ["enterprise"], "min_grade": "B", "industry_prefixes": ["C"], "region_prefixes": ["441300"],
              "registered_before": "2024-01-01", "tags_all": [HIGH_TECH]}
BUDGET_FEN = 1_000_000_00


def seed(session: Session, world) -> Policy:
    """Add what is missing (the profiles, the draft policy); leave what exists alone.

    ``world`` is handlers.demo.Seeded: subjects by key, the issuing bureau, the platform admin who writes the policy.
    """
    admin = world.accounts["admin"]
    issuer = world.organisations["industry"]  # 惠州市工业和信息化局 (handlers.demo.ORGANISATIONS)
    for key, (industry, region, established, tax, tags) in PROFILES.items():
        subject = world.subjects[key]
        if session.get(EnterpriseProfile, subject.id) is None:
            session.add(EnterpriseProfile(subject_id=subject.id, industry_code=industry, region_code=region,
                                          registered_on=established, last_year_tax_fen=tax,
                                          tax_year=checks.today().year - 1,
                                          updated_at=timeutil.now()))
            session.add_all(EnterpriseTag(subject_id=subject.id, tag=t) for t in tags)
    session.flush()
    policy = session.scalar(select(Policy).where(Policy.organisation_id == issuer.id, Policy.title == TITLE))
    if policy is None:
        today = checks.today()
        policy = policies.create_policy(
            session, admin, issuer.id, title=TITLE, description=DESCRIPTION, amount_rule=AMOUNT_RULE,
            conditions=CONDITIONS, budget_fen=BUDGET_FEN, notice_from=today, notice_until=today + timedelta(days=14),
            confirm_until=today + timedelta(days=30))
    return policy
