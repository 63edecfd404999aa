"""Request bodies and write responses of the team routes."""

from __future__ import annotations

from uuid import UUID

from services.api.schemas import Body, WriteResponse
from services.commands import Reason


class MemberBody(Body):
    volunteer_id: UUID
    reason: Reason = "joined"


class LeaderBody(Body):
    volunteer_id: UUID
    reason: Reason


class AssignActivityBody(Body):
    activity_id: UUID
    reason: Reason = "assigned"


class TeamFormed(WriteResponse):
    team_id: UUID
    members: int


class TeamMembership(WriteResponse):
    team_id: UUID
    volunteer_id: UUID
    members: int


class TeamLeader(WriteResponse):
    team_id: UUID
    leader_id: UUID


class TeamDisbanded(WriteResponse):
    team_id: UUID
    disbanded: bool


class ActivityAssigned(WriteResponse):
    activity_id: UUID
    team_id: UUID
