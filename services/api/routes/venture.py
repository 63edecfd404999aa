"""Venture philanthropy calls (公益创投): a call with a budget; projects submitted,
scored, funded within the budget, reporting milestones, accepted; results published."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import Field

from services import commands as c
from services import community_queries as q
from services.api.deps import PlatformDep, PrincipalDep, WriteContext, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.schemas import Body, WriteResponse
from services.commands.base import LongText, Reason, Text
from services.commands.funds import Fen
from services.commands.venture import Score

router = APIRouter(prefix="/v1/venture-calls", tags=["venture"])


class CallResult(WriteResponse):
    call_id: UUID
    status: str
    budget_fen: int
    funded_total_fen: int = Field(description="total funded so far: never above the budget")


class ProjectResult(CallResult):
    project_id: UUID
    project_status: str
    average_score: float | None


class ProjectBody(Body):
    project_id: UUID | None = None
    title: Text
    organisation: Text
    requested_fen: Fen
    summary: LongText = ""


class ScoreBody(Body):
    reviewer: Text
    score: Score
    comment: LongText = ""


class FundingBody(Body):
    amount_fen: Fen
    reason: Reason = "funded"


class DeclineBody(Body):
    reason: Reason


class MilestoneBody(Body):
    title: Text
    note: LongText = ""


class AcceptanceBody(Body):
    final_score: Score
    evaluation: LongText = ""


class ResultsBody(Body):
    summary: LongText = ""


@router.post(
    "",
    status_code=201,
    summary="Open a call for projects with a budget (fen) and a submission deadline",
    responses=problems(403, 404, 409),
)
async def open_call(command: c.OpenVentureCall, write: WriteDep) -> CallResult:
    return await run(
        write, command, CallResult, location=lambda r: f"/v1/venture-calls/{r.call_id}"
    )


@router.get(
    "/{call_id}",
    summary="A call with its projects, their scores, funding, milestones and evaluations",
    responses=problems(403, 404),
)
def get_call(call_id: UUID, platform: PlatformDep, principal: PrincipalDep) -> q.VentureCallView:
    return q.get_venture_call(platform.app, principal, call_id)


@router.post(
    "/{call_id}/projects",
    status_code=201,
    summary="Submit an organisation's project before the deadline",
    responses=problems(403, 404, 409),
)
async def submit(call_id: UUID, body: ProjectBody, write: WriteDep) -> ProjectResult:
    command = c.SubmitProject(call_id=call_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, ProjectResult)


async def _project_command(write: WriteContext, command: c.Command) -> ProjectResult:
    return await run(write, command, ProjectResult)


@router.post(
    "/{call_id}/projects/{project_id}/scores",
    summary="A reviewer's score, 0-100 (each reviewer once per project)",
    responses=problems(403, 404, 409),
)
async def score(call_id: UUID, project_id: UUID, body: ScoreBody, write: WriteDep) -> ProjectResult:
    command = c.ScoreProject(call_id=call_id, project_id=project_id, **body.model_dump())
    return await _project_command(write, command)


@router.post(
    "/{call_id}/projects/{project_id}/funding",
    summary="Fund a scored project (total funding never exceeds the call's budget)",
    responses=problems(403, 404, 409),
)
async def fund(
    call_id: UUID, project_id: UUID, body: FundingBody, write: WriteDep
) -> ProjectResult:
    command = c.FundProject(call_id=call_id, project_id=project_id, **body.model_dump())
    return await _project_command(write, command)


@router.post(
    "/{call_id}/projects/{project_id}/decline",
    summary="Decline a submitted project",
    responses=problems(403, 404, 409),
)
async def decline(
    call_id: UUID, project_id: UUID, body: DeclineBody, write: WriteDep
) -> ProjectResult:
    command = c.DeclineProject(call_id=call_id, project_id=project_id, reason=body.reason)
    return await _project_command(write, command)


@router.post(
    "/{call_id}/projects/{project_id}/milestones",
    summary="A funded project reports a milestone",
    responses=problems(403, 404, 409),
)
async def milestone(
    call_id: UUID, project_id: UUID, body: MilestoneBody, write: WriteDep
) -> ProjectResult:
    command = c.ReportMilestone(call_id=call_id, project_id=project_id, **body.model_dump())
    return await _project_command(write, command)


@router.post(
    "/{call_id}/projects/{project_id}/acceptance",
    summary="Accept a funded project with its final evaluation score (0-100)",
    responses=problems(403, 404, 409),
)
async def accept(
    call_id: UUID, project_id: UUID, body: AcceptanceBody, write: WriteDep
) -> ProjectResult:
    command = c.AcceptProject(call_id=call_id, project_id=project_id, **body.model_dump())
    return await _project_command(write, command)


@router.post(
    "/{call_id}/results",
    summary="Publish the results: every funded project accepted; the call closes",
    responses=problems(403, 404, 409),
)
async def publish(call_id: UUID, write: WriteDep, body: ResultsBody | None = None) -> CallResult:
    command = c.PublishVentureResults(call_id=call_id, summary=body.summary if body else "")
    return await run(write, command, CallResult)
