"""Reads of volunteer teams served straight from the aggregate (always current)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from domain.teams import Team, TeamKind
from services.application import CivicApplication
from services.principals import Principal
from services.queries import ReadModel, load


class MembershipView(ReadModel):
    volunteer_id: UUID
    joined_at: datetime
    left_at: datetime | None = Field(description="null while the membership lasts")


class TeamView(ReadModel):
    team_id: UUID
    unit_id: UUID
    unit_path: list[UUID]
    name: str
    kind: TeamKind
    parent_team_id: UUID | None
    leader_id: UUID
    specialty: str | None
    description: str
    disbanded: bool
    members: list[UUID] = Field(description="current members, the leader included")
    history: list[MembershipView] = Field(description="every membership period, in order")
    version: int


def get_team(app: CivicApplication, principal: Principal, team_id: UUID) -> TeamView:
    team = load(app, Team, team_id)
    principal.ensure_can_read(team.lineage)
    history = sorted(
        (
            MembershipView(volunteer_id=vid, joined_at=m.joined_at, left_at=m.left_at)
            for vid, periods in team.history.items()
            for m in periods
        ),
        key=lambda m: (m.joined_at, str(m.volunteer_id)),
    )
    return TeamView(
        team_id=team.id,
        unit_id=team.unit_id,
        unit_path=team.unit_path,
        name=team.name,
        kind=team.kind,
        parent_team_id=team.parent_team_id,
        leader_id=team.leader_id,
        specialty=team.specialty.value if team.specialty is not None else None,
        description=team.description,
        disbanded=team.disbanded,
        members=team.members,
        history=history,
        version=team.version,
    )
