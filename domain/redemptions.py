"""Redemptions (兑换): a volunteer exchanges points for a gift.

One redemption touches three aggregates (the passbook is debited, the reward's
stock reserved, the redemption recorded); :func:`redeem` checks every rule
before any of them changes, and the service saves all three in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate
from domain.errors import ConflictError
from domain.passbook import Passbook, Spend
from domain.rewards import Reward
from domain.volunteers import Volunteer


class RedemptionStatus(StrEnum):
    REQUESTED = "requested"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class Redemption(CivicAggregate):
    class Requested(CivicAggregate.Created):
        volunteer_id: UUID
        passbook_id: UUID
        reward_id: UUID
        unit_id: UUID
        unit_path: list[UUID]
        quantity: int
        points: int
        spent: Spend

    class Fulfilled(CivicAggregate.Event):
        note: str

    class Cancelled(CivicAggregate.Event):
        reason: str

    @event(Requested)
    def __init__(
        self,
        volunteer_id: UUID,
        passbook_id: UUID,
        reward_id: UUID,
        unit_id: UUID,
        unit_path: list[UUID],
        quantity: int,
        points: int,
        spent: Spend,
    ) -> None:
        self.volunteer_id = volunteer_id
        self.passbook_id = passbook_id
        self.reward_id = reward_id
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.quantity = quantity
        self.points = points
        self.spent = spent
        self.status = RedemptionStatus.REQUESTED

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    def fulfil(self, note: str = "") -> None:
        self._ensure_requested()
        self._fulfil(note=note)

    @event(Fulfilled)
    def _fulfil(self, note: str) -> None:
        self.status = RedemptionStatus.FULFILLED

    def cancel(self, reason: str, passbook: Passbook, reward: Reward) -> None:
        """Cancel before pick-up: points go back to their lots, the gift to stock."""
        self._ensure_requested()
        passbook.refund(redemption_id=self.id, reason=reason)
        reward.release(redemption_id=self.id, quantity=self.quantity)
        self._cancel(reason=reason)

    @event(Cancelled)
    def _cancel(self, reason: str) -> None:
        self.status = RedemptionStatus.CANCELLED

    def _ensure_requested(self) -> None:
        if self.status != RedemptionStatus.REQUESTED:
            raise ConflictError(f"the redemption is {self.status.value}", code="not-open")


def redeem(
    *,
    redemption_id: UUID,
    volunteer: Volunteer,
    passbook: Passbook,
    reward: Reward,
    quantity: int,
    now: datetime,
) -> Redemption:
    """Check every rule first, then debit, reserve and record."""
    volunteer.ensure_active()
    reward.ensure_available(quantity)
    points = reward.cost_points * quantity
    passbook.plan_redemption(points, now)  # raises if the balance is short
    spent = passbook.redeem(redemption_id=redemption_id, points=points, now=now)
    reward.reserve(redemption_id, quantity)
    return Redemption._create(
        Redemption.Requested,
        id=redemption_id,
        volunteer_id=volunteer.id,
        passbook_id=passbook.id,
        reward_id=reward.id,
        unit_id=reward.unit_id,
        unit_path=reward.lineage,
        quantity=quantity,
        points=points,
        spent=spent,
    )
