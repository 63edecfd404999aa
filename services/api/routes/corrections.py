"""Corrections of service records (服务记录更正): asked for by a volunteer or staff
for them, decided by an admin of the activity's subtree; approval records
compensating events, never edits."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from domain.corrections import CorrectionStatus, ServiceCorrectionRequest
from services import commands as c
from services import queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.schemas import Body, ReasonBody, WriteResponse
from services.commands import LongText

router = APIRouter(prefix="/v1/corrections", tags=["corrections"])


class CorrectionResult(WriteResponse):
    correction_id: UUID
    activity_id: UUID
    volunteer_id: UUID
    status: CorrectionStatus


class ApprovalBody(Body):
    note: LongText = ""


class CorrectionView(BaseModel):
    correction_id: UUID
    activity_id: UUID
    volunteer_id: UUID
    confirmation_id: UUID
    recorded_minutes: int
    requested_minutes: int
    reason: str
    status: CorrectionStatus
    decision: str | None
    version: int


def _location(r: CorrectionResult) -> str:
    return f"/v1/corrections/{r.correction_id}"


@router.post(
    "",
    status_code=201,
    summary="Ask for a confirmed service's hours to be corrected, with a reason",
    responses=problems(403, 404, 409, 422),
)
async def request_correction(
    command: c.RequestServiceCorrection, write: WriteDep
) -> CorrectionResult:
    return await run(write, command, CorrectionResult, location=_location)


@router.post(
    "/{correction_id}/approval",
    summary="Approve: record the correction and the points difference (admins)",
    responses=problems(403, 404, 409, 422),
)
async def approve(correction_id: UUID, body: ApprovalBody, write: WriteDep) -> CorrectionResult:
    command = c.ApproveServiceCorrection(correction_id=correction_id, note=body.note)
    return await run(write, command, CorrectionResult)


@router.post(
    "/{correction_id}/rejection",
    summary="Reject, with a reason (admins)",
    responses=problems(403, 404, 409, 422),
)
async def reject(correction_id: UUID, body: ReasonBody, write: WriteDep) -> CorrectionResult:
    command = c.RejectServiceCorrection(correction_id=correction_id, reason=body.reason)
    return await run(write, command, CorrectionResult)


@router.get(
    "/{correction_id}",
    summary="A correction request and its decision",
    responses=problems(403, 404),
)
def get_correction(
    correction_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> CorrectionView:
    request = queries.load(platform.app, ServiceCorrectionRequest, correction_id)
    principal.ensure_can_read(request.lineage)
    return CorrectionView(
        correction_id=request.id,
        activity_id=request.activity_id,
        volunteer_id=request.volunteer_id,
        confirmation_id=request.confirmation_id,
        recorded_minutes=request.recorded_minutes,
        requested_minutes=request.requested_minutes,
        reason=request.reason,
        status=request.status,
        decision=request.decision,
        version=request.version,
    )
