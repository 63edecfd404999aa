"""Passbooks (爱心存折): balance, lots and statement; awards, adjustments, expiry."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from services import commands as c
from services import queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.schemas import AdjustBody, AwardBody, PointsAdjusted, PointsAwarded, PointsExpired

router = APIRouter(prefix="/v1/passbooks", tags=["passbooks"])


def _passbook(volunteer_id: UUID) -> str:
    return f"/v1/passbooks/{volunteer_id}"


@router.get(
    "/{volunteer_id}",
    summary="A volunteer's passbook: balance, open lots and the full statement",
    description=(
        "Read from the passbook's own events, so always current. With `as_of`, only "
        "the events recorded at or before that instant count: the balance, lots and "
        "statement as they stood then (e.g. on 31 March)."
    ),
    responses=problems(403, 404),
)
def get_passbook(
    volunteer_id: UUID,
    platform: PlatformDep,
    principal: PrincipalDep,
    as_of: Annotated[
        AwareDatetime | None,
        Query(description="an instant with a timezone, e.g. 2026-03-31T23:59:59+08:00"),
    ] = None,
) -> queries.PassbookView:
    return queries.get_passbook(platform.app, principal, volunteer_id, as_of)


@router.post(
    "/{volunteer_id}/awards",
    status_code=201,
    summary="Award points by hand (e.g. a household civility check, 文明户评比)",
    responses=problems(403, 404, 409),
)
async def award(volunteer_id: UUID, body: AwardBody, write: WriteDep) -> PointsAwarded:
    command = c.AwardPoints(volunteer_id=volunteer_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, PointsAwarded, location=lambda r: _passbook(r.volunteer_id))


@router.post(
    "/{volunteer_id}/adjustments",
    status_code=201,
    summary="Correct a balance up or down, with a reason (admins only)",
    responses=problems(403, 404, 409),
)
async def adjust(volunteer_id: UUID, body: AdjustBody, write: WriteDep) -> PointsAdjusted:
    command = c.AdjustPoints(volunteer_id=volunteer_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, PointsAdjusted, location=lambda r: _passbook(r.volunteer_id))


@router.post(
    "/{volunteer_id}/expiry",
    summary="Record the expiry of every lot past its expiry date",
    responses=problems(403, 404, 409),
)
async def expire(volunteer_id: UUID, write: WriteDep) -> PointsExpired:
    command = c.ExpirePoints(volunteer_id=volunteer_id)
    return await run(write, command, PointsExpired)
