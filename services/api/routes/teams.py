"""Volunteer teams (志愿服务队): forming, membership, leaders, activities."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from projections import team_metrics
from services import commands as c
from services import team_queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import ProblemError, problems
from services.api.routes.reports import MetricGranularity, MinPosition, _reader, _scope
from services.api.schemas import ReasonBody
from services.api.team_schemas import (
    ActivityAssigned,
    AssignActivityBody,
    LeaderBody,
    MemberBody,
    TeamDisbanded,
    TeamFormed,
    TeamLeader,
    TeamMembership,
)
from services.commands import Reason

router = APIRouter(prefix="/v1/teams", tags=["teams"])


def _team(team_id: UUID) -> str:
    return f"/v1/teams/{team_id}"


@router.post(
    "",
    status_code=201,
    summary="Form a team under a unit, with a leading volunteer",
    description=(
        "`kind` expresses a district's structure: one `corps` (总队), standing "
        "`detachment`s (常设分队) under it, `specialised` teams (专业队) under either, "
        "and plain `team`s. The leader must live within the unit's subtree."
    ),
    responses=problems(403, 404, 409),
)
async def form(command: c.FormTeam, write: WriteDep) -> TeamFormed:
    return await run(write, command, TeamFormed, location=lambda r: _team(r.team_id))


class TeamBoard(BaseModel):
    unit_id: UUID | None = Field(description="the subtree ranked; null for the whole network")
    by: team_metrics.TeamRankBy
    granularity: MetricGranularity
    entries: list[team_metrics.TeamFigures]
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "/leaderboard",
    summary="Teams of a subtree ranked by service minutes, orders completed or ratings",
    responses=problems(403, 404, 503),
)
def get_board(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    by: team_metrics.TeamRankBy = "service_minutes",
    granularity: MetricGranularity = "all",
    period_key: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    min_position: MinPosition = None,
) -> TeamBoard:
    scope = _scope(platform, principal, unit_id)
    conn = _reader(platform, team_metrics.TeamMetricsProjection.name, min_position)
    try:
        entries = team_metrics.board(
            conn,
            str(scope) if scope is not None else None,
            by=by,
            granularity=granularity,
            period_key=period_key,
            limit=limit,
        )
    except ValueError as exc:
        raise ProblemError(422, "invalid-period", str(exc)) from None
    position = platform.runners[team_metrics.TeamMetricsProjection.name].position
    return TeamBoard(
        unit_id=scope, by=by, granularity=granularity, entries=entries, position=position
    )


@router.get(
    "/{team_id}/metrics",
    summary="A team's figures for one period: orders, service time, ratings, members",
    responses=problems(403, 404, 503),
)
def get_metrics(
    team_id: UUID,
    platform: PlatformDep,
    principal: PrincipalDep,
    granularity: MetricGranularity = "all",
    period_key: Annotated[str | None, Query(max_length=16)] = None,
    min_position: MinPosition = None,
) -> team_metrics.TeamFigures:
    team_queries.get_team(platform.app, principal, team_id)  # exists, and may be read
    conn = _reader(platform, team_metrics.TeamMetricsProjection.name, min_position)
    try:
        figures = team_metrics.team(conn, str(team_id), granularity, period_key)
    except ValueError as exc:
        raise ProblemError(422, "invalid-period", str(exc)) from None
    if figures is None:
        raise ProblemError(503, "projection-behind", "the team is not in the read model yet")
    return figures


@router.get(
    "/{team_id}",
    summary="A team: kind, leader, current members and membership history",
    responses=problems(403, 404),
)
def get_team(
    team_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> team_queries.TeamView:
    return team_queries.get_team(platform.app, principal, team_id)


@router.post(
    "/{team_id}/members",
    status_code=201,
    summary="A volunteer joins the team",
    responses=problems(403, 404, 409),
)
async def join(team_id: UUID, body: MemberBody, write: WriteDep) -> TeamMembership:
    command = c.JoinTeam(team_id=team_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, TeamMembership, location=lambda r: _team(r.team_id))


@router.delete(
    "/{team_id}/members/{volunteer_id}",
    summary="A volunteer leaves the team (the history keeps the membership)",
    responses=problems(403, 404, 409),
)
async def leave(
    team_id: UUID,
    volunteer_id: UUID,
    write: WriteDep,
    reason: Annotated[Reason | None, Query(description="why (recorded on the event)")] = None,
) -> TeamMembership:
    command = (
        c.LeaveTeam(team_id=team_id, volunteer_id=volunteer_id)
        if reason is None
        else c.LeaveTeam(team_id=team_id, volunteer_id=volunteer_id, reason=reason)
    )
    return await run(write, command, TeamMembership)


@router.post(
    "/{team_id}/leader",
    summary="Hand the team over to another member",
    responses=problems(403, 404, 409),
)
async def change_leader(team_id: UUID, body: LeaderBody, write: WriteDep) -> TeamLeader:
    command = c.ChangeTeamLeader(team_id=team_id, **body.model_dump())
    return await run(write, command, TeamLeader)


@router.post(
    "/{team_id}/disband",
    summary="Disband the team (no more members, orders or activities)",
    responses=problems(403, 404, 409),
)
async def disband(team_id: UUID, body: ReasonBody, write: WriteDep) -> TeamDisbanded:
    command = c.DisbandTeam(team_id=team_id, reason=body.reason)
    return await run(write, command, TeamDisbanded)


@router.post(
    "/{team_id}/activities",
    summary="Make the team responsible for an activity (at, above or below its unit)",
    responses=problems(403, 404, 409),
)
async def assign_activity(
    team_id: UUID, body: AssignActivityBody, write: WriteDep
) -> ActivityAssigned:
    command = c.AssignActivityToTeam(team_id=team_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, ActivityAssigned)
