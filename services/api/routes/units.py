"""Practice units: the center > institute > station hierarchy."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services import commands as c
from services import queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.schemas import ReasonBody, RenameUnitBody, UnitResult

router = APIRouter(prefix="/v1/units", tags=["units"])


@router.post(
    "",
    status_code=201,
    summary="Open a unit (a center, an institute under a center, a station under an institute)",
    responses=problems(403, 404, 409),
)
async def open_unit(command: c.OpenUnit, write: WriteDep) -> UnitResult:
    return await run(write, command, UnitResult, location=lambda r: f"/v1/units/{r.unit_id}")


@router.get(
    "/{unit_id}",
    summary="A unit: name, tier, parent and ancestors",
    responses=problems(403, 404),
)
def get_unit(unit_id: UUID, platform: PlatformDep, principal: PrincipalDep) -> queries.UnitView:
    return queries.get_unit(platform.app, principal, unit_id)


@router.post(
    "/{unit_id}/rename",
    summary="Rename a unit, with a reason",
    responses=problems(403, 404, 409),
)
async def rename_unit(unit_id: UUID, body: RenameUnitBody, write: WriteDep) -> UnitResult:
    command = c.RenameUnit(unit_id=unit_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, UnitResult)


@router.post(
    "/{unit_id}/close",
    summary="Close a unit (from its parent's level); nothing new may open under it",
    responses=problems(403, 404, 409),
)
async def close_unit(unit_id: UUID, body: ReasonBody, write: WriteDep) -> UnitResult:
    command = c.CloseUnit(unit_id=unit_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, UnitResult)
