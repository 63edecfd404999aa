"""A unit's service menu (服务菜单): what residents may order from it.

Each item has a category, a title and a description, the points per hour its
service earns, whether teams may take its orders first-come, and optional
deadlines per step of the order loop (overriding the network's defaults).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate
from domain.categories import Category
from domain.errors import ConflictError, RuleViolationError
from domain.randomness import new_id
from domain.units import PracticeUnit

STEPS = ("review", "dispatch", "accept", "complete")


def check_deadlines(deadlines: dict[str, int] | None) -> dict[str, int] | None:
    if deadlines is None:
        return None
    unknown = set(deadlines) - set(STEPS)
    if unknown:
        raise RuleViolationError(
            f"deadlines are kept per step ({', '.join(STEPS)}), not {sorted(unknown)}",
            code="bad-deadlines",
        )
    if any(minutes <= 0 for minutes in deadlines.values()):
        raise RuleViolationError("a deadline must be positive", code="bad-deadlines")
    return dict(deadlines)


class MenuItem(CivicAggregate):
    class Added(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]
        category: str
        title: str
        description: str
        points_per_hour: int
        first_come: bool
        deadline_minutes: dict[str, int] | None

    class Revised(CivicAggregate.Event):
        category: str
        title: str
        description: str
        points_per_hour: int
        first_come: bool
        deadline_minutes: dict[str, int] | None
        reason: str

    class Withdrawn(CivicAggregate.Event):
        reason: str

    @classmethod
    def add(
        cls,
        *,
        unit: PracticeUnit,
        category: Category,
        title: str,
        description: str,
        points_per_hour: int,
        first_come: bool = False,
        deadline_minutes: dict[str, int] | None = None,
        item_id: UUID | None = None,
    ) -> MenuItem:
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        if points_per_hour < 0:
            raise RuleViolationError("points per hour cannot be negative", code="bad-points")
        return cls._create(
            cls.Added,
            id=item_id or new_id(),
            unit_id=unit.id,
            unit_path=unit.lineage,
            category=category.value,
            title=title,
            description=description,
            points_per_hour=points_per_hour,
            first_come=first_come,
            deadline_minutes=check_deadlines(deadline_minutes),
        )

    @event(Added)
    def __init__(
        self,
        unit_id: UUID,
        unit_path: list[UUID],
        category: str,
        title: str,
        description: str,
        points_per_hour: int,
        first_come: bool,
        deadline_minutes: dict[str, int] | None,
    ) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.withdrawn = False
        self._set(category, title, description, points_per_hour, first_come, deadline_minutes)

    def _set(
        self,
        category: str,
        title: str,
        description: str,
        points_per_hour: int,
        first_come: bool,
        deadline_minutes: dict[str, int] | None,
    ) -> None:
        self.category = Category(category)
        self.title = title
        self.description = description
        self.points_per_hour = points_per_hour
        self.first_come = first_come
        self.deadline_minutes = dict(deadline_minutes) if deadline_minutes else None

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    def ensure_orderable(self) -> None:
        if self.withdrawn:
            raise ConflictError("the menu item was withdrawn", code="item-withdrawn")

    def revise(
        self,
        *,
        category: Category,
        title: str,
        description: str,
        points_per_hour: int,
        first_come: bool,
        deadline_minutes: dict[str, int] | None,
        reason: str,
    ) -> None:
        self.ensure_orderable()
        if points_per_hour < 0:
            raise RuleViolationError("points per hour cannot be negative", code="bad-points")
        deadlines = check_deadlines(deadline_minutes)
        if (category, title, description, points_per_hour, first_come, deadlines) == (
            self.category,
            self.title,
            self.description,
            self.points_per_hour,
            self.first_come,
            self.deadline_minutes,
        ):
            raise ConflictError("nothing to change", code="unchanged")
        self._revise(
            category=category.value,
            title=title,
            description=description,
            points_per_hour=points_per_hour,
            first_come=first_come,
            deadline_minutes=deadlines,
            reason=reason,
        )

    @event(Revised)
    def _revise(
        self,
        category: str,
        title: str,
        description: str,
        points_per_hour: int,
        first_come: bool,
        deadline_minutes: dict[str, int] | None,
        reason: str,
    ) -> None:
        self._set(category, title, description, points_per_hour, first_come, deadline_minutes)

    def withdraw(self, reason: str) -> None:
        self.ensure_orderable()
        self._withdraw(reason=reason)

    @event(Withdrawn)
    def _withdraw(self, reason: str) -> None:
        self.withdrawn = True
