"""Practice units: the center > institute > station hierarchy."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from domain.units import UnitTier
from projections import listings
from services import commands as c
from services import queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.routes.reports import MinPosition, _reader, _scope
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


class UnitList(BaseModel):
    unit_id: UUID | None = Field(description="the subtree listed (none: the whole network)")
    items: list[listings.UnitSummary]
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "",
    summary="The units of a unit's subtree, itself included, by code; a tier's or a "
    "unit's children (from the read model)",
    responses=problems(403, 404, 503),
)
def list_units(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    tier: UnitTier | None = None,
    parent_id: UUID | None = None,
    include_closed: Annotated[bool, Query(description="also closed units")] = False,
    limit: Annotated[int, Query(ge=1, le=listings.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> UnitList:
    unit_id = _scope(platform, principal, unit_id)
    name = listings.ListingsProjection.name
    conn = _reader(platform, name, min_position)
    items = listings.units(
        conn,
        str(unit_id) if unit_id is not None else None,
        tier=tier,
        parent_id=str(parent_id) if parent_id is not None else None,
        include_closed=include_closed,
        limit=limit,
        offset=offset,
    )
    return UnitList(unit_id=unit_id, items=items, position=platform.runners[name].position)


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
