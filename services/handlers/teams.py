"""Command handlers for volunteer teams."""

from __future__ import annotations

from uuid import UUID

from domain.activities import Activity
from domain.teams import Team
from domain.units import PracticeUnit
from domain.volunteers import Volunteer
from services import commands as c
from services.handlers.base import Context, Handler, Result, ensure_new_id
from services.unit_of_work import UnitOfWork


def form_team(cmd: c.FormTeam, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    ensure_new_id(uow, cmd.team_id, "a team", "team-exists")
    parent = uow.get(Team, cmd.parent_team_id) if cmd.parent_team_id is not None else None
    leader = uow.get(Volunteer, cmd.leader_id)
    team = Team.form(
        unit=unit,
        name=cmd.name,
        kind=cmd.kind,
        leader=leader,
        now=ctx.now,
        parent=parent,
        specialty=cmd.specialty,
        description=cmd.description,
        team_id=cmd.team_id,
    )
    uow.add(team)
    return {"team_id": str(team.id), "members": len(team.members)}


def _team_for_write(uow: UnitOfWork, ctx: Context, team_id: UUID) -> Team:
    team = uow.get(Team, team_id)
    ctx.principal.ensure_can_write(team.lineage)
    return team


def join_team(cmd: c.JoinTeam, uow: UnitOfWork, ctx: Context) -> Result:
    team = _team_for_write(uow, ctx, cmd.team_id)
    team.join(uow.get(Volunteer, cmd.volunteer_id), now=ctx.now, reason=cmd.reason)
    return {
        "team_id": str(team.id),
        "volunteer_id": str(cmd.volunteer_id),
        "members": len(team.members),
    }


def leave_team(cmd: c.LeaveTeam, uow: UnitOfWork, ctx: Context) -> Result:
    team = _team_for_write(uow, ctx, cmd.team_id)
    team.leave(cmd.volunteer_id, now=ctx.now, reason=cmd.reason)
    return {
        "team_id": str(team.id),
        "volunteer_id": str(cmd.volunteer_id),
        "members": len(team.members),
    }


def change_team_leader(cmd: c.ChangeTeamLeader, uow: UnitOfWork, ctx: Context) -> Result:
    team = _team_for_write(uow, ctx, cmd.team_id)
    team.change_leader(uow.get(Volunteer, cmd.volunteer_id), reason=cmd.reason)
    return {"team_id": str(team.id), "leader_id": str(team.leader_id)}


def disband_team(cmd: c.DisbandTeam, uow: UnitOfWork, ctx: Context) -> Result:
    team = uow.get(Team, cmd.team_id)
    ctx.principal.ensure_can_write(team.lineage)
    team.disband(now=ctx.now, reason=cmd.reason)
    return {"team_id": str(team.id), "disbanded": True}


def assign_activity_to_team(cmd: c.AssignActivityToTeam, uow: UnitOfWork, ctx: Context) -> Result:
    """The caller must reach the activity; the team must be active and on its line."""
    activity = uow.get(Activity, cmd.activity_id)
    ctx.principal.ensure_can_write(activity.lineage)
    team = uow.get(Team, cmd.team_id)
    team.ensure_active()
    activity.assign_to_team(team.id, team.lineage, cmd.reason)
    return {"activity_id": str(activity.id), "team_id": str(team.id)}


HANDLERS: dict[type[c.Command], Handler] = {
    c.FormTeam: form_team,
    c.JoinTeam: join_team,
    c.LeaveTeam: leave_team,
    c.ChangeTeamLeader: change_team_leader,
    c.DisbandTeam: disband_team,
    c.AssignActivityToTeam: assign_activity_to_team,
}
