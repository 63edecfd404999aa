"""Volunteer teams (志愿服务队): formed under a practice unit, led by a volunteer.

A district's "1 general corps (总队), 8 standing detachments (常设分队), 22
specialised teams (专业队)" is expressed by each team's ``kind`` and an optional
parent team of a higher kind. Volunteers join and leave; every membership period
is kept, so a volunteer's history with the team survives their leaving.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate
from domain.categories import Category
from domain.errors import ConflictError, RuleViolationError
from domain.randomness import new_id
from domain.units import PracticeUnit
from domain.volunteers import Volunteer


class TeamKind(StrEnum):
    CORPS = "corps"  # 志愿服务总队
    DETACHMENT = "detachment"  # 常设分队
    SPECIALISED = "specialised"  # 专业志愿服务队
    TEAM = "team"  # 志愿服务队 (e.g. a station's own team)


# the kinds a team of each kind may sit under (a corps sits under none)
PARENT_KINDS: dict[TeamKind, frozenset[TeamKind]] = {
    TeamKind.CORPS: frozenset(),
    TeamKind.DETACHMENT: frozenset({TeamKind.CORPS}),
    TeamKind.SPECIALISED: frozenset({TeamKind.CORPS, TeamKind.DETACHMENT}),
    TeamKind.TEAM: frozenset({TeamKind.CORPS, TeamKind.DETACHMENT, TeamKind.SPECIALISED}),
}


@dataclass(frozen=True)
class Membership:
    """One period of membership; ``left_at`` is None while it lasts."""

    joined_at: datetime
    left_at: datetime | None = None


class Team(CivicAggregate):
    class Formed(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]
        name: str
        kind: str
        parent_team_id: UUID | None
        leader_id: UUID
        specialty: str | None
        description: str
        at: datetime

    class MemberJoined(CivicAggregate.Event):
        volunteer_id: UUID
        reason: str
        at: datetime

    class MemberLeft(CivicAggregate.Event):
        volunteer_id: UUID
        reason: str
        at: datetime

    class LeaderChanged(CivicAggregate.Event):
        volunteer_id: UUID
        previous_leader_id: UUID
        reason: str

    class Disbanded(CivicAggregate.Event):
        reason: str
        at: datetime

    @classmethod
    def form(
        cls,
        *,
        unit: PracticeUnit,
        name: str,
        kind: TeamKind,
        leader: Volunteer,
        now: datetime,
        parent: Team | None = None,
        specialty: Category | None = None,
        description: str = "",
        team_id: UUID | None = None,
    ) -> Team:
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        allowed = PARENT_KINDS[kind]
        if parent is not None:
            if parent.kind not in allowed:
                raise RuleViolationError(
                    f"a {kind.value} cannot sit under a {parent.kind.value}",
                    code="wrong-parent-kind",
                )
            parent.ensure_active()
            if parent.unit_id not in unit.lineage:
                raise RuleViolationError(
                    "a team's unit must lie within its parent team's unit",
                    code="parent-outside-subtree",
                )
        elif kind == TeamKind.DETACHMENT:
            raise RuleViolationError("a detachment belongs to a corps", code="parent-required")
        _ensure_can_serve(leader, unit.id)
        return cls._create(
            cls.Formed,
            id=team_id or new_id(),
            unit_id=unit.id,
            unit_path=unit.lineage,
            name=name,
            kind=kind.value,
            parent_team_id=parent.id if parent is not None else None,
            leader_id=leader.id,
            specialty=specialty.value if specialty is not None else None,
            description=description,
            at=now,
        )

    @event(Formed)
    def __init__(
        self,
        unit_id: UUID,
        unit_path: list[UUID],
        name: str,
        kind: str,
        parent_team_id: UUID | None,
        leader_id: UUID,
        specialty: str | None,
        description: str,
        at: datetime,
    ) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.name = name
        self.kind = TeamKind(kind)
        self.parent_team_id = parent_team_id
        self.leader_id = leader_id
        self.specialty = Category(specialty) if specialty is not None else None
        self.description = description
        self.disbanded = False
        # the leader is the first member
        self.history: dict[UUID, list[Membership]] = {leader_id: [Membership(at)]}

    # -- queries -------------------------------------------------------------------

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    @property
    def members(self) -> list[UUID]:
        return [v for v, periods in self.history.items() if periods[-1].left_at is None]

    def is_member(self, volunteer_id: UUID) -> bool:
        periods = self.history.get(volunteer_id)
        return periods is not None and periods[-1].left_at is None

    def ensure_active(self) -> None:
        if self.disbanded:
            raise ConflictError("the team was disbanded", code="team-disbanded")

    def ensure_member(self, volunteer_id: UUID) -> None:
        if not self.is_member(volunteer_id):
            raise ConflictError(
                f"volunteer {volunteer_id} is not a member of the team", code="not-a-member"
            )

    # -- membership ----------------------------------------------------------------

    def join(self, volunteer: Volunteer, *, now: datetime, reason: str = "joined") -> None:
        self.ensure_active()
        if self.is_member(volunteer.id):
            raise ConflictError("the volunteer is already a member", code="already-a-member")
        _ensure_can_serve(volunteer, self.unit_id)
        self._join(volunteer_id=volunteer.id, reason=reason, at=now)

    @event(MemberJoined)
    def _join(self, volunteer_id: UUID, reason: str, at: datetime) -> None:
        self.history.setdefault(volunteer_id, []).append(Membership(at))

    def leave(self, volunteer_id: UUID, *, now: datetime, reason: str) -> None:
        self.ensure_active()
        self.ensure_member(volunteer_id)
        if volunteer_id == self.leader_id:
            raise ConflictError(
                "the leader cannot leave; hand the team over first", code="leader-cannot-leave"
            )
        self._leave(volunteer_id=volunteer_id, reason=reason, at=now)

    @event(MemberLeft)
    def _leave(self, volunteer_id: UUID, reason: str, at: datetime) -> None:
        periods = self.history[volunteer_id]
        periods[-1] = Membership(periods[-1].joined_at, at)

    def change_leader(self, volunteer: Volunteer, *, reason: str) -> None:
        self.ensure_active()
        if volunteer.id == self.leader_id:
            raise ConflictError("the volunteer already leads the team", code="unchanged")
        self.ensure_member(volunteer.id)
        volunteer.ensure_active()
        self._change_leader(
            volunteer_id=volunteer.id, previous_leader_id=self.leader_id, reason=reason
        )

    @event(LeaderChanged)
    def _change_leader(self, volunteer_id: UUID, previous_leader_id: UUID, reason: str) -> None:
        self.leader_id = volunteer_id

    def disband(self, *, now: datetime, reason: str) -> None:
        self.ensure_active()
        self._disband(reason=reason, at=now)

    @event(Disbanded)
    def _disband(self, reason: str, at: datetime) -> None:
        self.disbanded = True


def _ensure_can_serve(volunteer: Volunteer, unit_id: UUID) -> None:
    """A team takes volunteers who live within its unit's subtree."""
    volunteer.ensure_active()
    if unit_id not in volunteer.home_path:
        raise RuleViolationError(
            "the volunteer's home station is outside the team's unit", code="outside-team-unit"
        )
