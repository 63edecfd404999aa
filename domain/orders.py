"""Service orders (服务订单): the 点单→审单→派单→接单→评单→晒单 loop.

A resident orders an item of a unit's service menu (directly, or staff enter it
for them) → a unit admin reviews it: approves it into the unit's queue or
rejects it with a reason → dispatches it to a team within the handling unit's
subtree, or passes it down to a lower unit (whose queue it joins) → the team
accepts it, or declines and it returns to the queue (when the order is open to
teams, a team may also take it from the queue first-come) → the team reports
completion with each volunteer's time, which feeds their passbooks like a
confirmed activity → the resident rates it (1-5 with a comment) → an admin may
showcase it (a short story, photo links).

Every transition records the time it happened (``at``), so the time to review,
dispatch, accept and complete can be derived, and the moment the order entered
its current step, against which the step's deadline runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, name_id
from domain.categories import Category
from domain.errors import ConflictError, RuleViolationError
from domain.randomness import new_id
from domain.service_menu import MenuItem
from domain.teams import Team
from domain.units import PracticeUnit

MAX_STARS = 5
MAX_PHOTOS = 9


class OrderStatus(StrEnum):
    PLACED = "placed"  # 点单: waiting for review
    APPROVED = "approved"  # 审单 passed: in the handling unit's queue
    REJECTED = "rejected"
    DISPATCHED = "dispatched"  # 派单: waiting for the team
    IN_PROGRESS = "in_progress"  # 接单: the team is on it
    COMPLETED = "completed"


class Channel(StrEnum):
    RESIDENT = "resident"  # the resident ordered (e.g. through a mini-program)
    STAFF = "staff"  # staff entered it for them (phone, walk-in)


# the step an open order waits in, by status, and so which deadline runs
STEP_OF: dict[OrderStatus, str] = {
    OrderStatus.PLACED: "review",
    OrderStatus.APPROVED: "dispatch",
    OrderStatus.DISPATCHED: "accept",
    OrderStatus.IN_PROGRESS: "complete",
}
OPEN_STATUSES = frozenset(STEP_OF)


@dataclass(frozen=True)
class OrderDeadlines:
    """How long each step may take, in minutes (a menu item may override them)."""

    review: int = 24 * 60
    dispatch: int = 24 * 60
    accept: int = 24 * 60
    complete: int = 7 * 24 * 60

    def minutes(self, step: str, override: dict[str, int] | None = None) -> int:
        if override and step in override:
            return override[step]
        minutes: int = getattr(self, step)
        return minutes


@dataclass(frozen=True)
class OrderService:
    """One volunteer's service on a completed order; the award is derived from it."""

    completion_id: UUID
    volunteer_id: UUID
    minutes: int


def _minutes(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() // 60)


class ServiceOrder(CivicAggregate):
    class Placed(CivicAggregate.Created):
        menu_item_id: UUID
        unit_id: UUID
        unit_path: list[UUID]
        category: str
        title: str
        points_per_hour: int
        first_come: bool
        deadline_minutes: dict[str, int] | None
        channel: str
        resident_ref: str | None
        resident_name: str | None
        resident_phone: str | None
        address: str | None
        details: str
        at: datetime

    class Approved(CivicAggregate.Event):
        note: str
        open_to_teams: bool
        at: datetime

    class Rejected(CivicAggregate.Event):
        reason: str
        at: datetime

    class Dispatched(CivicAggregate.Event):
        team_id: UUID
        team_path: list[UUID]
        at: datetime

    class PassedDown(CivicAggregate.Event):
        unit_id: UUID
        unit_path: list[UUID]
        reason: str
        at: datetime

    class TakenByTeam(CivicAggregate.Event):
        """A team took an order open to teams from the queue (first come)."""

        team_id: UUID
        team_path: list[UUID]
        at: datetime

    class AcceptedByTeam(CivicAggregate.Event):
        team_id: UUID
        at: datetime

    class DeclinedByTeam(CivicAggregate.Event):
        team_id: UUID
        reason: str
        at: datetime

    class Completed(CivicAggregate.Event):
        team_id: UUID
        services: list[tuple[UUID, int]]  # (volunteer id, minutes)
        people_served: int
        note: str
        at: datetime

    class Rated(CivicAggregate.Event):
        stars: int
        comment: str
        at: datetime

    class Showcased(CivicAggregate.Event):
        story: str
        photo_links: list[str]
        at: datetime

    class ResidentDataErased(CivicAggregate.Event):
        """The resident's personal data on this order was erased (right to erasure).
        Carries no personal data: the service layer then deletes the order's key, so
        the sealed reference, name, phone and address become unreadable."""

        reason: str

    # -- placing ---------------------------------------------------------------------

    @classmethod
    def place(
        cls,
        *,
        item: MenuItem,
        channel: Channel,
        now: datetime,
        resident_ref: str | None = None,
        resident_name: str | None = None,
        resident_phone: str | None = None,
        address: str | None = None,
        details: str = "",
        order_id: UUID | None = None,
    ) -> ServiceOrder:
        item.ensure_orderable()
        if channel == Channel.RESIDENT and not resident_ref:
            raise RuleViolationError(
                "a resident's own order carries the resident's reference",
                code="resident-ref-required",
            )
        return cls._create(
            cls.Placed,
            id=order_id or new_id(),
            menu_item_id=item.id,
            unit_id=item.unit_id,
            unit_path=item.lineage,
            category=item.category.value,
            title=item.title,
            points_per_hour=item.points_per_hour,
            first_come=item.first_come,
            deadline_minutes=item.deadline_minutes,
            channel=channel.value,
            resident_ref=resident_ref,
            resident_name=resident_name,
            resident_phone=resident_phone,
            address=address,
            details=details,
            at=now,
        )

    @event(Placed)
    def __init__(
        self,
        menu_item_id: UUID,
        unit_id: UUID,
        unit_path: list[UUID],
        category: str,
        title: str,
        points_per_hour: int,
        first_come: bool,
        deadline_minutes: dict[str, int] | None,
        channel: str,
        resident_ref: str | None,
        resident_name: str | None,
        resident_phone: str | None,
        address: str | None,
        details: str,
        at: datetime,
    ) -> None:
        self.menu_item_id = menu_item_id
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.handling_unit_id = unit_id
        self.handling_path = list(unit_path)
        self.category = Category(category)
        self.title = title
        self.points_per_hour = points_per_hour
        self.open_to_teams = first_come
        self.deadline_minutes = dict(deadline_minutes) if deadline_minutes else None
        self.channel = Channel(channel)
        self.resident_ref = resident_ref
        self.resident_name = resident_name
        self.resident_phone = resident_phone
        self.address = address
        self.details = details
        self.status = OrderStatus.PLACED
        self.team_id: UUID | None = None
        self.placed_at = at
        self.step_since = at
        self.reviewed_at: datetime | None = None
        self.first_dispatched_at: datetime | None = None
        self.dispatched_at: datetime | None = None
        self.accepted_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.declines = 0
        self.reject_reason: str | None = None
        self.services: list[tuple[UUID, int]] = []
        self.people_served = 0
        self.stars: int | None = None
        self.comment: str | None = None
        self.story: str | None = None
        self.photo_links: list[str] = []
        self.resident_erased = False

    # -- queries ---------------------------------------------------------------------

    @property
    def lineage(self) -> list[UUID]:
        """The lineage of the unit that received the order."""
        return list(self.unit_path)

    def completion_id_for(self, volunteer_id: UUID) -> UUID:
        return name_id("order-service", self.id, volunteer_id)

    @property
    def time_to_review(self) -> int | None:
        return _minutes(self.placed_at, self.reviewed_at)

    @property
    def time_to_dispatch(self) -> int | None:
        return _minutes(self.reviewed_at, self.first_dispatched_at)

    @property
    def time_to_accept(self) -> int | None:
        return _minutes(self.dispatched_at, self.accepted_at)

    @property
    def time_to_complete(self) -> int | None:
        """From placing to completion: what the resident waited."""
        return _minutes(self.placed_at, self.completed_at)

    def due_at(self, deadlines: OrderDeadlines) -> datetime | None:
        """When the current step's deadline passes (None once the order is closed)."""
        step = STEP_OF.get(self.status)
        if step is None:
            return None
        return self.step_since + timedelta(minutes=deadlines.minutes(step, self.deadline_minutes))

    def is_overdue(self, now: datetime, deadlines: OrderDeadlines) -> bool:
        due = self.due_at(deadlines)
        return due is not None and now > due

    # -- review (审单) ----------------------------------------------------------------

    def approve(self, *, now: datetime, note: str = "", open_to_teams: bool | None = None) -> None:
        self._ensure(OrderStatus.PLACED, "the order was already reviewed", "already-reviewed")
        self._approve(
            note=note,
            open_to_teams=self.open_to_teams if open_to_teams is None else open_to_teams,
            at=now,
        )

    @event(Approved)
    def _approve(self, note: str, open_to_teams: bool, at: datetime) -> None:
        self.status = OrderStatus.APPROVED
        self.open_to_teams = open_to_teams
        self.reviewed_at = self.step_since = at

    def reject(self, *, reason: str, now: datetime) -> None:
        self._ensure(OrderStatus.PLACED, "the order was already reviewed", "already-reviewed")
        self._reject(reason=reason, at=now)

    @event(Rejected)
    def _reject(self, reason: str, at: datetime) -> None:
        self.status = OrderStatus.REJECTED
        self.reject_reason = reason
        self.reviewed_at = self.step_since = at

    # -- dispatch (派单) --------------------------------------------------------------

    def _ensure_in_subtree(self, team: Team) -> None:
        team.ensure_active()
        if self.handling_unit_id not in team.unit_path:
            raise RuleViolationError(
                "the team is outside the handling unit's subtree", code="team-outside-subtree"
            )

    def dispatch(self, team: Team, *, now: datetime) -> None:
        self._ensure(OrderStatus.APPROVED, "only an approved order in the queue is dispatched")
        self._ensure_in_subtree(team)
        self._dispatch(team_id=team.id, team_path=team.unit_path, at=now)

    @event(Dispatched)
    def _dispatch(self, team_id: UUID, team_path: list[UUID], at: datetime) -> None:
        self.status = OrderStatus.DISPATCHED
        self.team_id = team_id
        self.dispatched_at = self.step_since = at
        if self.first_dispatched_at is None:
            self.first_dispatched_at = at

    def pass_down(self, unit: PracticeUnit, *, reason: str, now: datetime) -> None:
        self._ensure(OrderStatus.APPROVED, "only an approved order in the queue is passed down")
        if self.handling_unit_id not in unit.path:
            raise RuleViolationError(
                "an order is passed down to a unit below the one handling it",
                code="not-a-lower-unit",
            )
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        self._pass_down(unit_id=unit.id, unit_path=unit.lineage, reason=reason, at=now)

    @event(PassedDown)
    def _pass_down(self, unit_id: UUID, unit_path: list[UUID], reason: str, at: datetime) -> None:
        self.handling_unit_id = unit_id
        self.handling_path = list(unit_path)
        self.step_since = at

    def take(self, team: Team, *, now: datetime) -> None:
        self._ensure(OrderStatus.APPROVED, "only an order in the queue can be taken")
        if not self.open_to_teams:
            raise ConflictError("the order is not open to teams", code="not-open-to-teams")
        self._ensure_in_subtree(team)
        self._take(team_id=team.id, team_path=team.unit_path, at=now)

    @event(TakenByTeam)
    def _take(self, team_id: UUID, team_path: list[UUID], at: datetime) -> None:
        self.status = OrderStatus.IN_PROGRESS
        self.team_id = team_id
        self.dispatched_at = self.accepted_at = self.step_since = at
        if self.first_dispatched_at is None:
            self.first_dispatched_at = at

    # -- the team (接单) ---------------------------------------------------------------

    def _ensure_dispatched_to(self, team_id: UUID) -> None:
        self._ensure(OrderStatus.DISPATCHED, "the order is not waiting for a team")
        if team_id != self.team_id:
            raise ConflictError(
                "the order was not dispatched to this team", code="not-dispatched-to-team"
            )

    def accept(self, team_id: UUID, *, now: datetime) -> None:
        self._ensure_dispatched_to(team_id)
        self._accept(team_id=team_id, at=now)

    @event(AcceptedByTeam)
    def _accept(self, team_id: UUID, at: datetime) -> None:
        self.status = OrderStatus.IN_PROGRESS
        self.accepted_at = self.step_since = at

    def decline(self, team_id: UUID, *, reason: str, now: datetime) -> None:
        self._ensure_dispatched_to(team_id)
        self._decline(team_id=team_id, reason=reason, at=now)

    @event(DeclinedByTeam)
    def _decline(self, team_id: UUID, reason: str, at: datetime) -> None:
        self.status = OrderStatus.APPROVED
        self.team_id = None
        self.declines += 1
        self.step_since = at

    # -- completion ------------------------------------------------------------------

    def complete(
        self,
        team: Team,
        services: list[tuple[UUID, int]],
        *,
        people_served: int,
        now: datetime,
        note: str = "",
    ) -> list[OrderService]:
        """The team reports who served and for how long; each volunteer's time may
        not exceed the time since the team took the order on."""
        if self.status == OrderStatus.COMPLETED:
            raise ConflictError("the order was already completed", code="already-completed")
        self._ensure(OrderStatus.IN_PROGRESS, "the order is not in progress")
        if team.id != self.team_id:
            raise ConflictError("the order is not with this team", code="not-assigned-to-team")
        if not services:
            raise RuleViolationError("name at least one volunteer", code="no-volunteers")
        volunteers = [v for v, _ in services]
        if len(set(volunteers)) != len(volunteers):
            raise RuleViolationError("a volunteer is named twice", code="duplicate-volunteer")
        if people_served < 0:
            raise RuleViolationError("people served cannot be negative", code="bad-count")
        window = _minutes(self.accepted_at, now) or 0
        for volunteer_id, minutes in services:
            team.ensure_member(volunteer_id)
            if minutes <= 0:
                raise RuleViolationError("service time must be positive", code="bad-hours")
            if minutes > window:
                raise RuleViolationError(
                    f"{minutes} minutes exceed the {window} minutes since the team took "
                    "the order on",
                    code="hours-exceed-window",
                )
        self._complete(
            team_id=team.id,
            services=[(v, m) for v, m in services],
            people_served=people_served,
            note=note,
            at=now,
        )
        return [OrderService(self.completion_id_for(v), v, m) for v, m in services]

    @event(Completed)
    def _complete(
        self,
        team_id: UUID,
        services: list[tuple[UUID, int]],
        people_served: int,
        note: str,
        at: datetime,
    ) -> None:
        self.status = OrderStatus.COMPLETED
        self.services = [(UUID(str(v)), int(m)) for v, m in services]
        self.people_served = people_served
        self.completed_at = self.step_since = at

    # -- rating (评单) and showcase (晒单) --------------------------------------------

    def rate(self, *, stars: int, comment: str, resident_ref: str | None, now: datetime) -> None:
        self._ensure(OrderStatus.COMPLETED, "only a completed order is rated", "not-completed")
        if self.stars is not None:
            raise ConflictError("the order was already rated", code="already-rated")
        if not 1 <= stars <= MAX_STARS:
            raise RuleViolationError("a rating is 1 to 5 stars", code="bad-rating")
        if self.resident_ref is not None and self.resident_erased:
            raise ConflictError(
                "the resident's data on this order was erased", code="resident-erased"
            )
        if self.resident_ref is not None and resident_ref != self.resident_ref:
            raise RuleViolationError(
                "only the resident who ordered rates the order", code="not-the-resident"
            )
        self._rate(stars=stars, comment=comment, at=now)

    @event(Rated)
    def _rate(self, stars: int, comment: str, at: datetime) -> None:
        self.stars = stars
        self.comment = comment

    def showcase(self, *, story: str, photo_links: list[str], now: datetime) -> None:
        self._ensure(OrderStatus.COMPLETED, "only a completed order is showcased", "not-completed")
        if self.story is not None:
            raise ConflictError("the order is already showcased", code="already-showcased")
        if not story.strip():
            raise RuleViolationError("a showcase tells a story", code="story-required")
        if len(photo_links) > MAX_PHOTOS:
            raise RuleViolationError(f"at most {MAX_PHOTOS} photos", code="too-many-photos")
        self._showcase(story=story, photo_links=list(photo_links), at=now)

    @event(Showcased)
    def _showcase(self, story: str, photo_links: list[str], at: datetime) -> None:
        self.story = story
        self.photo_links = list(photo_links)

    # -- erasure -----------------------------------------------------------------------

    def erase_resident_data(self, reason: str) -> None:
        if self.resident_erased:
            raise ConflictError(
                "the resident's data on this order was already erased", code="resident-erased"
            )
        self._erase_resident_data(reason=reason)

    @event(ResidentDataErased)
    def _erase_resident_data(self, reason: str) -> None:
        self.resident_erased = True

    def _ensure(self, status: OrderStatus, detail: str, code: str = "wrong-status") -> None:
        if self.status != status:
            raise ConflictError(f"{detail} (it is {self.status.value})", code=code)
