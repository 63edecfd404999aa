"""What every command handler shares: the command context and the result type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.errors import RuleViolationError
from domain.points import ExpiryPolicy, PointsRule
from infra.vault import PersonalDataVault
from services.principals import Principal
from services.unit_of_work import UnitOfWork

Result = dict[str, Any]


@dataclass(frozen=True)
class Context:
    principal: Principal
    now: datetime
    points_rule: PointsRule
    expiry_policy: ExpiryPolicy
    document_secret: bytes
    vault: PersonalDataVault


def at_or_now(at: datetime | None, now: datetime) -> datetime:
    if at is None:
        return now
    if (at - now).total_seconds() > 300:
        raise RuleViolationError("that time is in the future", code="future-time")
    return at


Handler = Callable[[Any, UnitOfWork, Context], Result]
