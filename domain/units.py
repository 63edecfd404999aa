"""Practice units: the 3-tier hierarchy center (中心) > institute (所) > station (站)."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, name_id
from domain.errors import ConflictError, RuleViolationError


class UnitTier(StrEnum):
    CENTER = "center"  # 新时代文明实践中心 (district)
    INSTITUTE = "institute"  # 新时代文明实践所 (street / town)
    STATION = "station"  # 新时代文明实践站 (community / village)


PARENT_TIER: dict[UnitTier, UnitTier | None] = {
    UnitTier.CENTER: None,
    UnitTier.INSTITUTE: UnitTier.CENTER,
    UnitTier.STATION: UnitTier.INSTITUTE,
}


class PracticeUnit(CivicAggregate):
    """A node of the practice network. ``path`` lists its ancestors, root first."""

    class Opened(CivicAggregate.Created):
        code: str
        name: str
        tier: str
        parent_id: UUID | None
        path: list[UUID]

    class Renamed(CivicAggregate.Event):
        name: str
        reason: str

    class Closed(CivicAggregate.Event):
        reason: str

    @staticmethod
    def create_id(code: str) -> UUID:
        return name_id("unit", code)

    @classmethod
    def open(
        cls, *, code: str, name: str, tier: UnitTier, parent: PracticeUnit | None
    ) -> PracticeUnit:
        expected_parent = PARENT_TIER[tier]
        if expected_parent is None and parent is not None:
            raise RuleViolationError("a center has no parent unit", code="center-has-parent")
        if expected_parent is not None:
            if parent is None:
                raise RuleViolationError(
                    f"a {tier.value} must belong to a {expected_parent.value}",
                    code="parent-required",
                )
            if parent.tier != expected_parent:
                raise RuleViolationError(
                    f"a {tier.value} must belong to a {expected_parent.value}, "
                    f"not a {parent.tier.value}",
                    code="wrong-parent-tier",
                )
            if parent.closed:
                raise ConflictError("the parent unit is closed", code="unit-closed")
        path = [*parent.path, parent.id] if parent is not None else []
        return cls._create(
            cls.Opened,
            id=cls.create_id(code),
            code=code,
            name=name,
            tier=tier.value,
            parent_id=parent.id if parent is not None else None,
            path=path,
        )

    @event(Opened)
    def __init__(
        self, code: str, name: str, tier: str, parent_id: UUID | None, path: list[UUID]
    ) -> None:
        self.code = code
        self.name = name
        self.tier = UnitTier(tier)
        self.parent_id = parent_id
        self.path = list(path)
        self.closed = False

    @property
    def lineage(self) -> list[UUID]:
        """Ancestors and the unit itself, root first."""
        return [*self.path, self.id]

    def is_within(self, ancestor_id: UUID) -> bool:
        return ancestor_id in self.lineage

    def rename(self, name: str, reason: str) -> None:
        self._ensure_open()
        if name == self.name:
            raise ConflictError("the unit already has that name", code="unchanged")
        self._rename(name=name, reason=reason)

    @event(Renamed)
    def _rename(self, name: str, reason: str) -> None:
        self.name = name

    def close(self, reason: str) -> None:
        self._ensure_open()
        self._close(reason=reason)

    @event(Closed)
    def _close(self, reason: str) -> None:
        self.closed = True

    def _ensure_open(self) -> None:
        if self.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
