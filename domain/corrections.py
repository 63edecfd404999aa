"""Corrections of service records (服务记录更正): never edits, always new events.

A volunteer (or staff for them) asks for a confirmed service's minutes to be
corrected, with a reason; an admin of the activity's subtree approves or rejects
it. Approval is recorded three times in one transaction: the request is approved,
the activity records ``ServiceCorrected`` (old and new minutes, the original
service's business time) and the passbook the points difference. The original
confirmation stays in the history untouched.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.activities import Activity
from domain.base import CivicAggregate
from domain.errors import ConflictError
from domain.randomness import new_id


class CorrectionStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class ServiceCorrectionRequest(CivicAggregate):
    class Requested(CivicAggregate.Created):
        activity_id: UUID
        volunteer_id: UUID
        unit_path: list[UUID]  # the activity's lineage: who may decide, and audit scoping
        confirmation_id: UUID
        recorded_minutes: int  # what the service record said when the request was made
        requested_minutes: int
        reason: str

    class Approved(CivicAggregate.Event):
        old_minutes: int
        new_minutes: int
        points_delta: int
        note: str

    class Rejected(CivicAggregate.Event):
        reason: str

    @classmethod
    def request(
        cls,
        *,
        activity: Activity,
        volunteer_id: UUID,
        minutes: int,
        reason: str,
        correction_id: UUID | None = None,
    ) -> ServiceCorrectionRequest:
        """Ask for the confirmed service of ``volunteer_id`` to count ``minutes``."""
        recorded = activity.check_correction(volunteer_id, minutes)
        return cls._create(
            cls.Requested,
            id=correction_id or new_id(),
            activity_id=activity.id,
            volunteer_id=volunteer_id,
            unit_path=activity.lineage,
            confirmation_id=activity.confirmation_id_for(volunteer_id),
            recorded_minutes=recorded,
            requested_minutes=minutes,
            reason=reason,
        )

    @event(Requested)
    def __init__(
        self,
        activity_id: UUID,
        volunteer_id: UUID,
        unit_path: list[UUID],
        confirmation_id: UUID,
        recorded_minutes: int,
        requested_minutes: int,
        reason: str,
    ) -> None:
        self.activity_id = activity_id
        self.volunteer_id = volunteer_id
        self.unit_path = list(unit_path)
        self.confirmation_id = confirmation_id
        self.recorded_minutes = recorded_minutes
        self.requested_minutes = requested_minutes
        self.reason = reason
        self.status = CorrectionStatus.REQUESTED
        self.decision: str | None = None

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    def approve(self, *, old_minutes: int, points_delta: int, note: str) -> None:
        self._ensure_open()
        self._approve(
            old_minutes=old_minutes,
            new_minutes=self.requested_minutes,
            points_delta=points_delta,
            note=note,
        )

    @event(Approved)
    def _approve(self, old_minutes: int, new_minutes: int, points_delta: int, note: str) -> None:
        self.status = CorrectionStatus.APPROVED
        self.decision = note

    def reject(self, reason: str) -> None:
        self._ensure_open()
        self._reject(reason=reason)

    @event(Rejected)
    def _reject(self, reason: str) -> None:
        self.status = CorrectionStatus.REJECTED
        self.decision = reason

    def _ensure_open(self) -> None:
        if self.status != CorrectionStatus.REQUESTED:
            raise ConflictError(
                f"the correction was already {self.status.value}", code="correction-decided"
            )
