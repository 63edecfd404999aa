"""What the audit interface itself records: who read personal data, and the
signed checkpoints of the event store's hash chain.

Both are events like any other, so they are immutable and chained too.

* ``AccessLog``: one aggregate per local day (``AccessLog.create_id(day)``);
  each ``PersonalDataViewed`` says who (the event's actor) looked at whose data,
  through which view, and why.
* ``ChainCheckpoint``: one per unit and quarter, holding the chain's head at the
  quarter's end and the number of the unit's subtree events up to it, with an
  HMAC signature under a key the database does not hold.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, name_id
from domain.errors import RuleViolationError


class AccessLog(CivicAggregate):
    class Opened(CivicAggregate.Created):
        day: str  # ISO date, local time

    class PersonalDataViewed(CivicAggregate.Event):
        subject_id: UUID  # whose data
        subject_type: str  # Volunteer, ...
        view: str  # history | certificate | ...
        purpose: str

    @staticmethod
    def create_id(day: date) -> UUID:
        return name_id("access-log", day.isoformat())

    @classmethod
    def open(cls, day: date) -> AccessLog:
        return cls._create(cls.Opened, id=cls.create_id(day), day=day.isoformat())

    @event(Opened)
    def __init__(self, day: str) -> None:
        self.day = day
        self.views = 0

    def record_view(self, subject_id: UUID, subject_type: str, view: str, purpose: str) -> None:
        if not view:
            raise RuleViolationError("say which view was read", code="bad-view")
        self._viewed(subject_id=subject_id, subject_type=subject_type, view=view, purpose=purpose)

    @event(PersonalDataViewed)
    def _viewed(self, subject_id: UUID, subject_type: str, view: str, purpose: str) -> None:
        self.views += 1


class ChainCheckpoint(CivicAggregate):
    class Recorded(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]  # the unit's lineage, center first (the unit last)
        quarter: str  # e.g. 2026-Q1
        position: int  # the last event recorded before the quarter's end
        chain_hash: str  # hex, the chain's hash at that position
        subtree_events: int  # events of the unit's subtree up to that position
        signature: str  # hex HMAC-SHA256 of the fields above (see services.audit)

    @staticmethod
    def create_id(unit_id: UUID, quarter: str) -> UUID:
        return name_id("chain-checkpoint", unit_id, quarter)

    @classmethod
    def record(
        cls,
        *,
        unit_id: UUID,
        unit_path: list[UUID],
        quarter: str,
        position: int,
        chain_hash: str,
        subtree_events: int,
        signature: str,
    ) -> ChainCheckpoint:
        if position < 0 or subtree_events < 0:
            raise RuleViolationError("positions and counts are not negative", code="bad-checkpoint")
        return cls._create(
            cls.Recorded,
            id=cls.create_id(unit_id, quarter),
            unit_id=unit_id,
            unit_path=unit_path,
            quarter=quarter,
            position=position,
            chain_hash=chain_hash,
            subtree_events=subtree_events,
            signature=signature,
        )

    @event(Recorded)
    def __init__(
        self,
        unit_id: UUID,
        unit_path: list[UUID],
        quarter: str,
        position: int,
        chain_hash: str,
        subtree_events: int,
        signature: str,
    ) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.quarter = quarter
        self.position = position
        self.chain_hash = chain_hash
        self.subtree_events = subtree_events
        self.signature = signature
