"""What every command handler shares: the command context and the result type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.errors import ConflictError, RuleViolationError
from domain.passbook import Passbook
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


def ensure_new_id(uow: UnitOfWork, aggregate_id: UUID | None, what: str, code: str) -> None:
    """Refuse a client-chosen id that any aggregate, of whatever type, already has
    (409 ``code``, "``what`` with this id exists"); None: the server chooses one."""
    if aggregate_id is not None and uow.taken(aggregate_id):
        raise ConflictError(f"{what} with this id exists", code=code)


def passbook_for_write(uow: UnitOfWork, ctx: Context, volunteer_id: UUID) -> Passbook:
    """The volunteer's passbook, if the caller reaches the volunteer's home station."""
    passbook = uow.get(Passbook, Passbook.create_id(volunteer_id))
    ctx.principal.ensure_can_write(passbook.home_path)
    return passbook


Handler = Callable[[Any, UnitOfWork, Context], Result]
