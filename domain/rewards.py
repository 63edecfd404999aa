"""The charity exchange bank's rewards catalogue (公益兑换储蓄银行): gifts with a
cost in points and a limited stock, listed per unit."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate
from domain.errors import ConflictError, RuleViolationError
from domain.randomness import new_id
from domain.units import PracticeUnit


class Reward(CivicAggregate):
    class Listed(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]
        name: str
        description: str
        cost_points: int
        stock: int

    class Restocked(CivicAggregate.Event):
        quantity: int
        reason: str

    class Delisted(CivicAggregate.Event):
        reason: str

    class StockReserved(CivicAggregate.Event):
        redemption_id: UUID
        quantity: int

    class StockReleased(CivicAggregate.Event):
        redemption_id: UUID
        quantity: int

    @classmethod
    def list_at(
        cls,
        *,
        unit: PracticeUnit,
        name: str,
        description: str,
        cost_points: int,
        stock: int,
        reward_id: UUID | None = None,
    ) -> Reward:
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        if cost_points <= 0:
            raise RuleViolationError("a reward costs at least one point", code="bad-cost")
        if stock < 0:
            raise RuleViolationError("stock cannot be negative", code="bad-stock")
        return cls._create(
            cls.Listed,
            id=reward_id or new_id(),
            unit_id=unit.id,
            unit_path=unit.lineage,
            name=name,
            description=description,
            cost_points=cost_points,
            stock=stock,
        )

    @event(Listed)
    def __init__(
        self,
        unit_id: UUID,
        unit_path: list[UUID],
        name: str,
        description: str,
        cost_points: int,
        stock: int,
    ) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.name = name
        self.description = description
        self.cost_points = cost_points
        self.stock = stock
        self.delisted = False

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    def restock(self, quantity: int, reason: str) -> None:
        self._ensure_listed()
        if quantity <= 0:
            raise RuleViolationError("restock by a positive quantity", code="bad-quantity")
        self._restock(quantity=quantity, reason=reason)

    @event(Restocked)
    def _restock(self, quantity: int, reason: str) -> None:
        self.stock += quantity

    def delist(self, reason: str) -> None:
        self._ensure_listed()
        self._delist(reason=reason)

    @event(Delisted)
    def _delist(self, reason: str) -> None:
        self.delisted = True

    def ensure_available(self, quantity: int) -> None:
        self._ensure_listed()
        if quantity <= 0:
            raise RuleViolationError("quantity must be positive", code="bad-quantity")
        if quantity > self.stock:
            raise ConflictError(
                f"only {self.stock} left in stock, {quantity} requested", code="out-of-stock"
            )

    def reserve(self, redemption_id: UUID, quantity: int) -> None:
        self.ensure_available(quantity)
        self._reserve(redemption_id=redemption_id, quantity=quantity)

    @event(StockReserved)
    def _reserve(self, redemption_id: UUID, quantity: int) -> None:
        self.stock -= quantity

    def release(self, redemption_id: UUID, quantity: int) -> None:
        self._release(redemption_id=redemption_id, quantity=quantity)

    @event(StockReleased)
    def _release(self, redemption_id: UUID, quantity: int) -> None:
        self.stock += quantity

    def _ensure_listed(self) -> None:
        if self.delisted:
            raise ConflictError("the reward was delisted", code="delisted")
