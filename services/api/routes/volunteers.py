"""Volunteers: registration, profile, suspension, erasure."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from domain.volunteers import Volunteer
from projections import listings
from services import commands as c
from services import queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.routes.reports import MinPosition, _reader
from services.api.schemas import (
    ReasonBody,
    UpdateProfileBody,
    VolunteerRegistered,
    VolunteerResult,
    VolunteerStatusResult,
)

router = APIRouter(prefix="/v1/volunteers", tags=["volunteers"])


@router.post(
    "",
    status_code=201,
    summary="Register a volunteer at a station (opens the volunteer's passbook)",
    description=(
        "The identity number is checked and kept only as a keyed hash (one person, one "
        "volunteer) and a masked form; it never appears in a response or an event."
    ),
    responses=problems(403, 404, 409),
)
async def register_volunteer(command: c.RegisterVolunteer, write: WriteDep) -> VolunteerRegistered:
    return await run(
        write, command, VolunteerRegistered, location=lambda r: f"/v1/volunteers/{r.volunteer_id}"
    )


@router.get(
    "/{volunteer_id}",
    summary="A volunteer's profile (identity number masked)",
    responses=problems(403, 404),
)
def get_volunteer(
    volunteer_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> queries.VolunteerView:
    return queries.get_volunteer(platform.app, principal, volunteer_id)


class SignupList(BaseModel):
    volunteer_id: UUID
    items: list[listings.SignupSummary]
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "/{volunteer_id}/signups",
    summary="The activities a volunteer is signed up for or waitlisted on, by start time "
    "(from the read model)",
    responses=problems(403, 404, 503),
)
def list_signups(
    volunteer_id: UUID,
    platform: PlatformDep,
    principal: PrincipalDep,
    starts_from: Annotated[
        AwareDatetime | None, Query(description="starting at or after (ISO 8601, with offset)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=listings.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> SignupList:
    principal.ensure_can_read(queries.load(platform.app, Volunteer, volunteer_id).home_path)
    name = listings.ListingsProjection.name
    conn = _reader(platform, name, min_position)
    items = listings.signups_of(
        conn, str(volunteer_id), starts_from=starts_from, limit=limit, offset=offset
    )
    return SignupList(
        volunteer_id=volunteer_id, items=items, position=platform.runners[name].position
    )


@router.patch(
    "/{volunteer_id}",
    summary="Update a volunteer's name or phone, with a reason",
    responses=problems(403, 404, 409),
)
async def update_profile(
    volunteer_id: UUID, body: UpdateProfileBody, write: WriteDep
) -> VolunteerResult:
    command = c.UpdateVolunteerProfile(
        volunteer_id=volunteer_id, **body.model_dump(exclude_unset=True)
    )
    return await run(write, command, VolunteerResult)


@router.post(
    "/{volunteer_id}/suspend",
    summary="Suspend a volunteer (no sign-ups or redemptions until reinstated)",
    responses=problems(403, 404, 409),
)
async def suspend(volunteer_id: UUID, body: ReasonBody, write: WriteDep) -> VolunteerStatusResult:
    command = c.SuspendVolunteer(volunteer_id=volunteer_id, reason=body.reason)
    return await run(write, command, VolunteerStatusResult)


@router.post(
    "/{volunteer_id}/reinstate",
    summary="Reinstate a suspended volunteer",
    responses=problems(403, 404, 409),
)
async def reinstate(volunteer_id: UUID, body: ReasonBody, write: WriteDep) -> VolunteerStatusResult:
    command = c.ReinstateVolunteer(volunteer_id=volunteer_id, reason=body.reason)
    return await run(write, command, VolunteerStatusResult)


@router.post(
    "/{volunteer_id}/erasure",
    summary="Erase a volunteer's personal data (right to erasure; admins only)",
    description=(
        "Records a `Volunteer.Erased` fact (no personal data in it) and deletes the "
        "volunteer's personal-data key: their name, phone and masked identity number "
        'become unreadable everywhere (responses show "[erased]"), while points, '
        "service hours, unit metrics and the audit trail stay. Final: the person may "
        "register again, as a new volunteer with a new passbook."
    ),
    responses=problems(403, 404, 409),
)
async def erase(volunteer_id: UUID, body: ReasonBody, write: WriteDep) -> VolunteerStatusResult:
    command = c.EraseVolunteer(volunteer_id=volunteer_id, reason=body.reason)
    return await run(write, command, VolunteerStatusResult)
