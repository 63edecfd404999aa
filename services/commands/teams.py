"""Commands on volunteer teams (志愿服务队) and their activities."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from domain.categories import Category
from domain.teams import TeamKind
from services.commands.base import Command, LongText, Reason, Text


class FormTeam(Command):
    type: Literal["form_team"] = "form_team"
    team_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    unit_id: UUID
    name: Text
    kind: TeamKind = Field(description="corps 总队, detachment 分队, specialised 专业队, team")
    parent_team_id: UUID | None = Field(default=None, description="a team of a higher kind")
    leader_id: UUID = Field(description="the leading volunteer (the first member)")
    specialty: Category | None = Field(default=None, description="a specialised team's field")
    description: LongText = ""


class JoinTeam(Command):
    type: Literal["join_team"] = "join_team"
    team_id: UUID
    volunteer_id: UUID
    reason: Reason = "joined"


class LeaveTeam(Command):
    type: Literal["leave_team"] = "leave_team"
    team_id: UUID
    volunteer_id: UUID
    reason: Reason = "left"


class ChangeTeamLeader(Command):
    type: Literal["change_team_leader"] = "change_team_leader"
    team_id: UUID
    volunteer_id: UUID
    reason: Reason


class DisbandTeam(Command):
    type: Literal["disband_team"] = "disband_team"
    team_id: UUID
    reason: Reason


class AssignActivityToTeam(Command):
    type: Literal["assign_activity_to_team"] = "assign_activity_to_team"
    activity_id: UUID
    team_id: UUID
    reason: Reason = "assigned"
