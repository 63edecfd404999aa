"""Volunteer activities (志愿活动): publication, sign-up with a waitlist, check-in and
check-out, and the organizer's confirmation of each volunteer's service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, name_id
from domain.categories import Category
from domain.errors import ConflictError, RuleViolationError
from domain.points import HoursSource
from domain.randomness import new_id
from domain.units import PracticeUnit
from domain.volunteers import Volunteer

CHECKIN_OPENS_BEFORE_START = timedelta(hours=1)
MAX_ACTIVITY_LENGTH = timedelta(days=7)


class ActivityStatus(StrEnum):
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    CLOSED = "closed"


class SignupStatus(StrEnum):
    ENROLLED = "enrolled"
    WAITLISTED = "waitlisted"


@dataclass
class Attendance:
    status: SignupStatus
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    confirmed: bool = False
    minutes: int = 0  # of confirmed service, after any correction
    hours_source: str = ""


@dataclass(frozen=True)
class ServiceRecord:
    """What a confirmation establishes; the passbook award is derived from it."""

    confirmation_id: UUID
    activity_id: UUID
    volunteer_id: UUID
    minutes: int
    people_served: int
    source: HoursSource
    category: Category
    points_per_hour: int


class Activity(CivicAggregate):
    class Published(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]
        title: str
        category: str
        starts_at: datetime
        ends_at: datetime
        location: str
        capacity: int
        points_per_hour: int
        hour_cap_minutes: int | None
        description: str

    class SignedUp(CivicAggregate.Event):
        volunteer_id: UUID

    class Waitlisted(CivicAggregate.Event):
        volunteer_id: UUID

    class SignupCancelled(CivicAggregate.Event):
        volunteer_id: UUID
        reason: str

    class PromotedFromWaitlist(CivicAggregate.Event):
        volunteer_id: UUID

    class CheckedIn(CivicAggregate.Event):
        volunteer_id: UUID
        at: datetime

    class CheckedOut(CivicAggregate.Event):
        volunteer_id: UUID
        at: datetime

    class ServiceConfirmed(CivicAggregate.Event):
        """The organizer confirmed a volunteer's service.

        Version 2 added ``hours_source``; version-1 events (legacy imports) were all
        organizer-entered, which the upcaster records.
        """

        class_version = 2

        volunteer_id: UUID
        confirmation_id: UUID
        minutes: int
        people_served: int
        hours_source: str
        note: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state.setdefault("hours_source", HoursSource.ORGANIZER.value)

    class Cancelled(CivicAggregate.Event):
        reason: str

    class Closed(CivicAggregate.Event):
        pass

    class ServiceCorrected(CivicAggregate.Event):
        """An approved correction of a confirmed service's minutes (a compensating
        event: the confirmation stays as it was). ``service_at`` is the original
        service's business time, so read models count the difference in the
        period of the service, not of the correction."""

        volunteer_id: UUID
        confirmation_id: UUID
        correction_id: UUID
        old_minutes: int
        new_minutes: int
        service_at: datetime
        reason: str
        approved_by: str

    class AssignedToTeam(CivicAggregate.Event):
        """A volunteer team (志愿服务队) was made responsible for the activity."""

        team_id: UUID
        reason: str

    @classmethod
    def publish(
        cls,
        *,
        unit: PracticeUnit,
        title: str,
        category: Category,
        starts_at: datetime,
        ends_at: datetime,
        location: str,
        capacity: int,
        points_per_hour: int,
        hour_cap_minutes: int | None = None,
        description: str = "",
        activity_id: UUID | None = None,
    ) -> Activity:
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        if ends_at <= starts_at:
            raise RuleViolationError("an activity must end after it starts", code="bad-times")
        if ends_at - starts_at > MAX_ACTIVITY_LENGTH:
            raise RuleViolationError("an activity lasts at most 7 days", code="bad-times")
        if capacity < 1:
            raise RuleViolationError("capacity must be at least 1", code="bad-capacity")
        if points_per_hour < 0:
            raise RuleViolationError("points per hour cannot be negative", code="bad-points")
        if hour_cap_minutes is not None and hour_cap_minutes <= 0:
            raise RuleViolationError("an hour cap must be positive", code="bad-hour-cap")
        return cls._create(
            cls.Published,
            id=activity_id or new_id(),
            unit_id=unit.id,
            unit_path=unit.lineage,
            title=title,
            category=category.value,
            starts_at=starts_at,
            ends_at=ends_at,
            location=location,
            capacity=capacity,
            points_per_hour=points_per_hour,
            hour_cap_minutes=hour_cap_minutes,
            description=description,
        )

    @event(Published)
    def __init__(
        self,
        unit_id: UUID,
        unit_path: list[UUID],
        title: str,
        category: str,
        starts_at: datetime,
        ends_at: datetime,
        location: str,
        capacity: int,
        points_per_hour: int,
        hour_cap_minutes: int | None,
        description: str,
    ) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.title = title
        self.category = Category(category)
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.location = location
        self.capacity = capacity
        self.points_per_hour = points_per_hour
        self.hour_cap_minutes = hour_cap_minutes
        self.description = description
        self.status = ActivityStatus.PUBLISHED
        self.attendance: dict[UUID, Attendance] = {}
        self.waitlist: list[UUID] = []
        self.team_id: UUID | None = None

    # -- queries ---------------------------------------------------------------

    @property
    def enrolled(self) -> list[UUID]:
        return [v for v, a in self.attendance.items() if a.status == SignupStatus.ENROLLED]

    @property
    def places_left(self) -> int:
        return max(self.capacity - len(self.enrolled), 0)

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    def confirmation_id_for(self, volunteer_id: UUID) -> UUID:
        return name_id("confirmation", self.id, volunteer_id)

    # -- sign-up and waitlist ----------------------------------------------------

    def sign_up(self, volunteer: Volunteer, now: datetime) -> SignupStatus:
        self._ensure_published()
        volunteer.ensure_active()
        if now >= self.starts_at:
            raise ConflictError("sign-up closed when the activity started", code="started")
        if volunteer.id in self.attendance:
            raise ConflictError("the volunteer has already signed up", code="already-signed-up")
        if self.places_left > 0:
            self._sign_up(volunteer_id=volunteer.id)
            return SignupStatus.ENROLLED
        self._waitlist(volunteer_id=volunteer.id)
        return SignupStatus.WAITLISTED

    @event(SignedUp)
    def _sign_up(self, volunteer_id: UUID) -> None:
        self.attendance[volunteer_id] = Attendance(SignupStatus.ENROLLED)

    @event(Waitlisted)
    def _waitlist(self, volunteer_id: UUID) -> None:
        self.attendance[volunteer_id] = Attendance(SignupStatus.WAITLISTED)
        self.waitlist.append(volunteer_id)

    def cancel_signup(self, volunteer_id: UUID, reason: str, now: datetime) -> UUID | None:
        """Cancel a sign-up; returns the volunteer promoted from the waitlist, if any."""
        self._ensure_published()
        attendance = self.attendance.get(volunteer_id)
        if attendance is None:
            raise ConflictError("the volunteer has not signed up", code="not-signed-up")
        if attendance.checked_in_at is not None:
            raise ConflictError("the volunteer has already checked in", code="already-checked-in")
        was_enrolled = attendance.status == SignupStatus.ENROLLED
        self._cancel_signup(volunteer_id=volunteer_id, reason=reason)
        if was_enrolled and self.waitlist and now < self.ends_at:
            promoted = self.waitlist[0]
            self._promote(volunteer_id=promoted)
            return promoted
        return None

    @event(SignupCancelled)
    def _cancel_signup(self, volunteer_id: UUID, reason: str) -> None:
        del self.attendance[volunteer_id]
        if volunteer_id in self.waitlist:
            self.waitlist.remove(volunteer_id)

    @event(PromotedFromWaitlist)
    def _promote(self, volunteer_id: UUID) -> None:
        self.waitlist.remove(volunteer_id)
        self.attendance[volunteer_id].status = SignupStatus.ENROLLED

    # -- attendance --------------------------------------------------------------

    def check_in(self, volunteer_id: UUID, at: datetime) -> None:
        self._ensure_published()
        attendance = self._enrolled(volunteer_id)
        self._ensure_not_confirmed(attendance)
        if attendance.checked_in_at is not None:
            raise ConflictError("already checked in", code="already-checked-in")
        if at < self.starts_at - CHECKIN_OPENS_BEFORE_START:
            raise ConflictError("check-in opens one hour before the start", code="too-early")
        if at > self.ends_at:
            raise ConflictError("the activity has ended", code="ended")
        self._check_in(volunteer_id=volunteer_id, at=at)

    @event(CheckedIn)
    def _check_in(self, volunteer_id: UUID, at: datetime) -> None:
        self.attendance[volunteer_id].checked_in_at = at

    def check_out(self, volunteer_id: UUID, at: datetime) -> None:
        self._ensure_published()
        attendance = self._enrolled(volunteer_id)
        self._ensure_not_confirmed(attendance)
        if attendance.checked_in_at is None:
            raise ConflictError("not checked in", code="not-checked-in")
        if attendance.checked_out_at is not None:
            raise ConflictError("already checked out", code="already-checked-out")
        if at <= attendance.checked_in_at:
            raise RuleViolationError("check-out must follow check-in", code="bad-times")
        self._check_out(volunteer_id=volunteer_id, at=at)

    @event(CheckedOut)
    def _check_out(self, volunteer_id: UUID, at: datetime) -> None:
        self.attendance[volunteer_id].checked_out_at = at

    @staticmethod
    def _ensure_not_confirmed(attendance: Attendance) -> None:
        """Attendance is frozen once the service is confirmed: the confirmed minutes
        rest on it (a correction is the way to change them)."""
        if attendance.confirmed:
            raise ConflictError(
                "service already confirmed; attendance can no longer change",
                code="already-confirmed",
            )

    def attended_minutes(self, volunteer_id: UUID) -> int | None:
        a = self.attendance.get(volunteer_id)
        if a is None or a.checked_in_at is None or a.checked_out_at is None:
            return None
        return int((a.checked_out_at - a.checked_in_at).total_seconds() // 60)

    # -- confirmation ------------------------------------------------------------

    def confirm_service(
        self,
        volunteer_id: UUID,
        *,
        minutes: int | None,
        people_served: int,
        now: datetime,
        note: str = "",
    ) -> ServiceRecord:
        """Confirm a volunteer's service. ``minutes=None`` takes the attended time.

        Hours measured by check-in/out may not exceed the attended time; hours the
        organizer enters without them may not exceed the activity's length. The
        activity's hour cap, if any, applies to both.
        """
        if self.status == ActivityStatus.CANCELLED:
            raise ConflictError("the activity was cancelled", code="activity-cancelled")
        attendance = self._enrolled(volunteer_id)
        if attendance.confirmed:
            raise ConflictError("service already confirmed", code="already-confirmed")
        if now < self.starts_at:
            raise ConflictError("the activity has not started", code="not-started")
        if people_served < 0:
            raise RuleViolationError("people served cannot be negative", code="bad-count")
        attended = self.attended_minutes(volunteer_id)
        if attendance.checked_in_at is not None and attended is None:
            raise ConflictError(
                "the volunteer checked in but has not checked out", code="not-checked-out"
            )
        if attended is not None:
            source, limit = HoursSource.CHECKIN, attended
        else:
            source = HoursSource.ORGANIZER
            limit = int((self.ends_at - self.starts_at).total_seconds() // 60)
        if minutes is None:
            if attended is None:
                raise RuleViolationError(
                    "hours are required when the volunteer did not check in and out",
                    code="hours-required",
                )
            minutes = attended
        if minutes <= 0:
            raise RuleViolationError("service time must be positive", code="bad-hours")
        if minutes > limit:
            raise RuleViolationError(
                f"{minutes} minutes exceed the {limit} minutes "
                + ("attended" if source == HoursSource.CHECKIN else "the activity lasted"),
                code="hours-exceed-attendance",
            )
        if self.hour_cap_minutes is not None and minutes > self.hour_cap_minutes:
            raise RuleViolationError(
                f"{minutes} minutes exceed this activity's cap of {self.hour_cap_minutes}",
                code="hours-exceed-cap",
            )
        confirmation_id = self.confirmation_id_for(volunteer_id)
        self._confirm(
            volunteer_id=volunteer_id,
            confirmation_id=confirmation_id,
            minutes=minutes,
            people_served=people_served,
            hours_source=source.value,
            note=note,
        )
        return ServiceRecord(
            confirmation_id=confirmation_id,
            activity_id=self.id,
            volunteer_id=volunteer_id,
            minutes=minutes,
            people_served=people_served,
            source=source,
            category=self.category,
            points_per_hour=self.points_per_hour,
        )

    @event(ServiceConfirmed)
    def _confirm(
        self,
        volunteer_id: UUID,
        confirmation_id: UUID,
        minutes: int,
        people_served: int,
        hours_source: str,
        note: str,
    ) -> None:
        attendance = self.attendance[volunteer_id]
        attendance.confirmed = True
        attendance.minutes = minutes
        attendance.hours_source = hours_source

    # -- corrections ---------------------------------------------------------------

    def check_correction(self, volunteer_id: UUID, minutes: int) -> int:
        """Whether a confirmed service may be corrected to ``minutes``; returns the
        minutes now on record. A correction may credit up to the activity's length
        (the measured time may be what was wrong) and never beyond its hour cap."""
        attendance = self.attendance.get(volunteer_id)
        if attendance is None or not attendance.confirmed:
            raise ConflictError(
                "no confirmed service of this volunteer to correct", code="not-confirmed"
            )
        if minutes <= 0:
            raise RuleViolationError("service time must be positive", code="bad-hours")
        length = int((self.ends_at - self.starts_at).total_seconds() // 60)
        if minutes > length:
            raise RuleViolationError(
                f"{minutes} minutes exceed the {length} minutes the activity lasted",
                code="hours-exceed-attendance",
            )
        if self.hour_cap_minutes is not None and minutes > self.hour_cap_minutes:
            raise RuleViolationError(
                f"{minutes} minutes exceed this activity's cap of {self.hour_cap_minutes}",
                code="hours-exceed-cap",
            )
        if minutes == attendance.minutes:
            raise ConflictError("the record already says so", code="unchanged")
        return attendance.minutes

    def service_record(self, volunteer_id: UUID, minutes: int) -> ServiceRecord:
        """The record a confirmed service would have with ``minutes`` (for points)."""
        attendance = self.attendance[volunteer_id]
        return ServiceRecord(
            confirmation_id=self.confirmation_id_for(volunteer_id),
            activity_id=self.id,
            volunteer_id=volunteer_id,
            minutes=minutes,
            people_served=0,
            source=HoursSource(attendance.hours_source or HoursSource.ORGANIZER.value),
            category=self.category,
            points_per_hour=self.points_per_hour,
        )

    def correct_service(
        self,
        volunteer_id: UUID,
        *,
        minutes: int,
        correction_id: UUID,
        service_at: datetime,
        reason: str,
        approved_by: str,
    ) -> int:
        """Record an approved correction; returns the minutes it replaces."""
        old = self.check_correction(volunteer_id, minutes)
        self._correct(
            volunteer_id=volunteer_id,
            confirmation_id=self.confirmation_id_for(volunteer_id),
            correction_id=correction_id,
            old_minutes=old,
            new_minutes=minutes,
            service_at=service_at,
            reason=reason,
            approved_by=approved_by,
        )
        return old

    @event(ServiceCorrected)
    def _correct(
        self,
        volunteer_id: UUID,
        confirmation_id: UUID,
        correction_id: UUID,
        old_minutes: int,
        new_minutes: int,
        service_at: datetime,
        reason: str,
        approved_by: str,
    ) -> None:
        self.attendance[volunteer_id].minutes = new_minutes

    # -- lifecycle ---------------------------------------------------------------

    def cancel(self, reason: str) -> None:
        self._ensure_published()
        if any(a.confirmed for a in self.attendance.values()):
            raise ConflictError(
                "service was already confirmed; close the activity instead",
                code="has-confirmations",
            )
        self._cancel(reason=reason)

    @event(Cancelled)
    def _cancel(self, reason: str) -> None:
        self.status = ActivityStatus.CANCELLED

    def close(self, now: datetime) -> None:
        self._ensure_published()
        if now < self.starts_at:
            raise ConflictError("an activity closes after it starts", code="not-started")
        self._close()

    @event(Closed)
    def _close(self) -> None:
        self.status = ActivityStatus.CLOSED

    # -- teams -------------------------------------------------------------------

    def assign_to_team(self, team_id: UUID, team_lineage: list[UUID], reason: str) -> None:
        """Give the activity to a team whose unit is on the activity's unit's line
        (the same unit, one above it or one below it)."""
        self._ensure_published()
        if team_id == self.team_id:
            raise ConflictError("the team is already assigned", code="unchanged")
        if self.unit_id not in team_lineage and team_lineage[-1] not in self.unit_path:
            raise RuleViolationError(
                "the team's unit is neither above nor below the activity's unit",
                code="team-outside-subtree",
            )
        self._assign_to_team(team_id=team_id, reason=reason)

    @event(AssignedToTeam)
    def _assign_to_team(self, team_id: UUID, reason: str) -> None:
        self.team_id = team_id

    def _ensure_published(self) -> None:
        if self.status != ActivityStatus.PUBLISHED:
            raise ConflictError(f"the activity is {self.status.value}", code="activity-not-open")

    def _enrolled(self, volunteer_id: UUID) -> Attendance:
        attendance = self.attendance.get(volunteer_id)
        if attendance is None:
            raise ConflictError("the volunteer has not signed up", code="not-signed-up")
        if attendance.status != SignupStatus.ENROLLED:
            raise ConflictError("the volunteer is on the waitlist", code="waitlisted")
        return attendance
