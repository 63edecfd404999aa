"""Commands on venture philanthropy calls (公益创投) and their projects."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from domain.venture import MAX_SCORE, MIN_SCORE
from services.commands.base import Command, LongText, Reason, Text, When
from services.commands.funds import Fen

Score = Annotated[int, Field(strict=True, ge=MIN_SCORE, le=MAX_SCORE)]


class OpenVentureCall(Command):
    type: Literal["open_venture_call"] = "open_venture_call"
    call_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    unit_id: UUID
    title: Text
    description: LongText = ""
    budget_fen: Fen
    deadline: When = Field(description="submissions close then")


class SubmitProject(Command):
    type: Literal["submit_project"] = "submit_project"
    call_id: UUID
    project_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    title: Text
    organisation: Text
    requested_fen: Fen
    summary: LongText = ""


class ScoreProject(Command):
    type: Literal["score_project"] = "score_project"
    call_id: UUID
    project_id: UUID
    reviewer: Text = Field(description="the reviewer's name or panel seat; once per project")
    score: Score
    comment: LongText = ""


class FundProject(Command):
    type: Literal["fund_project"] = "fund_project"
    call_id: UUID
    project_id: UUID
    amount_fen: Fen
    reason: Reason = "funded"


class DeclineProject(Command):
    type: Literal["decline_project"] = "decline_project"
    call_id: UUID
    project_id: UUID
    reason: Reason


class ReportMilestone(Command):
    type: Literal["report_milestone"] = "report_milestone"
    call_id: UUID
    project_id: UUID
    title: Text
    note: LongText = ""


class AcceptProject(Command):
    type: Literal["accept_project"] = "accept_project"
    call_id: UUID
    project_id: UUID
    final_score: Score
    evaluation: LongText = ""


class PublishVentureResults(Command):
    type: Literal["publish_venture_results"] = "publish_venture_results"
    call_id: UUID
    summary: LongText = ""
