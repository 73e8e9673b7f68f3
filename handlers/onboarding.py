"""The review state machine (入驻审核) that organisations and accounts share, and declarations reuse.

pending -> approved | rejected; approved -> suspended; suspended -> approved; rejected -> approved
(a re-review). Rejecting and suspending need a reason; every other move is illegal_transition.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from . import checks, timeutil
from .errors import DomainError
from .models import Account, Status

REASON_MAX = 500


@dataclass(frozen=True)
class Rule:
    target: enum.Enum
    sources: frozenset
    reason_required: bool = False


ONBOARDING: dict[str, Rule] = {
    "approve": Rule(Status.approved, frozenset({Status.pending, Status.suspended, Status.rejected})),
    "reject": Rule(Status.rejected, frozenset({Status.pending}), reason_required=True),
    "suspend": Rule(Status.suspended, frozenset({Status.approved}), reason_required=True),
}


def decide(current: enum.Enum, decision: str, reason: str | None, rules: dict[str, Rule]) -> tuple[enum.Enum, str | None]:
    """The state ``decision`` leads to from ``current``, and the cleaned reason; or DomainError."""
    rule = rules.get(decision) if isinstance(decision, str) else None
    if rule is None:
        raise DomainError("bad_review_decision", detail={"allowed": list(rules)})
    if current not in rule.sources:
        raise DomainError("illegal_transition", detail={"status": current.value, "decision": decision})
    reason = checks.text(reason, "reason", max_length=REASON_MAX, required=False)
    if rule.reason_required and not reason:
        raise DomainError("reason_required")
    return rule.target, reason


class Reviewable(Protocol):
    status: Status
    status_reason: str | None
    reviewed_at: object
    reviewed_by_id: int | None


def review(row: Reviewable, reviewer: Account, *, decision: str, reason: str | None) -> None:
    """Move an organisation or account through the onboarding states, recording reviewer and time."""
    row.status, row.status_reason = decide(row.status, decision, reason, ONBOARDING)
    row.reviewed_at = timeutil.now()
    row.reviewed_by_id = reviewer.id
