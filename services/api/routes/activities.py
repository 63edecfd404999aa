"""Activities: publication, sign-ups and the waitlist, attendance, confirmation."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from domain.activities import ActivityStatus
from domain.categories import Category
from projections import listings
from services import commands as c
from services import queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.routes.reports import MinPosition, _reader, _scope
from services.api.schemas import (
    ActivityResult,
    ActivityStatusResult,
    AttendanceBody,
    CheckedIn,
    CheckedOut,
    ConfirmBody,
    ReasonBody,
    ServiceConfirmed,
    SignedUp,
    SignUpBody,
    SignupCancelled,
)
from services.commands import Reason

router = APIRouter(prefix="/v1/activities", tags=["activities"])


def _activity(activity_id: UUID) -> str:
    return f"/v1/activities/{activity_id}"


@router.post(
    "",
    status_code=201,
    summary="Publish an activity at a unit",
    responses=problems(403, 404, 409),
)
async def publish(command: c.PublishActivity, write: WriteDep) -> ActivityResult:
    return await run(write, command, ActivityResult, location=lambda r: _activity(r.activity_id))


class ActivityList(BaseModel):
    unit_id: UUID | None
    items: list[listings.ActivitySummary]
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "",
    summary="The activities of a unit's subtree by start time, with places left "
    "(from the read model)",
    responses=problems(403, 404, 503),
)
def list_activities(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    category: Category | None = None,
    status: ActivityStatus | None = None,
    starts_from: Annotated[
        AwareDatetime | None, Query(description="starting at or after (ISO 8601, with offset)")
    ] = None,
    starts_before: Annotated[AwareDatetime | None, Query(description="starting before")] = None,
    with_places: Annotated[bool, Query(description="only those with places left")] = False,
    limit: Annotated[int, Query(ge=1, le=listings.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> ActivityList:
    unit_id = _scope(platform, principal, unit_id)
    name = listings.ListingsProjection.name
    conn = _reader(platform, name, min_position)
    items = listings.activities(
        conn,
        str(unit_id) if unit_id is not None else None,
        category=category,
        status=status,
        starts_from=starts_from,
        starts_before=starts_before,
        with_places=with_places,
        limit=limit,
        offset=offset,
    )
    return ActivityList(unit_id=unit_id, items=items, position=platform.runners[name].position)


@router.get(
    "/{activity_id}",
    summary="An activity: status, places left, enrolled count, waitlist and attendance",
    responses=problems(403, 404),
)
def get_activity(
    activity_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> queries.ActivityView:
    return queries.get_activity(platform.app, principal, activity_id)


@router.post(
    "/{activity_id}/signups",
    status_code=201,
    summary="Sign a volunteer up (enrolled while places last, then waitlisted)",
    responses=problems(403, 404, 409),
)
async def sign_up(activity_id: UUID, body: SignUpBody, write: WriteDep) -> SignedUp:
    command = c.SignUp(activity_id=activity_id, volunteer_id=body.volunteer_id)
    return await run(write, command, SignedUp, location=lambda r: _activity(r.activity_id))


@router.delete(
    "/{activity_id}/signups/{volunteer_id}",
    summary="Cancel a sign-up; the first waitlisted volunteer takes a freed place",
    responses=problems(403, 404, 409),
)
async def cancel_signup(
    activity_id: UUID,
    volunteer_id: UUID,
    write: WriteDep,
    reason: Annotated[Reason | None, Query(description="why (recorded on the event)")] = None,
) -> SignupCancelled:
    command = (
        c.CancelSignup(activity_id=activity_id, volunteer_id=volunteer_id)
        if reason is None
        else c.CancelSignup(activity_id=activity_id, volunteer_id=volunteer_id, reason=reason)
    )
    return await run(write, command, SignupCancelled)


@router.post(
    "/{activity_id}/checkins",
    status_code=201,
    summary="Check an enrolled volunteer in (from one hour before the start)",
    responses=problems(403, 404, 409),
)
async def check_in(activity_id: UUID, body: AttendanceBody, write: WriteDep) -> CheckedIn:
    command = c.CheckIn(activity_id=activity_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, CheckedIn, location=lambda r: _activity(r.activity_id))


@router.post(
    "/{activity_id}/checkouts",
    status_code=201,
    summary="Check a volunteer out; the attended time is measured",
    responses=problems(403, 404, 409),
)
async def check_out(activity_id: UUID, body: AttendanceBody, write: WriteDep) -> CheckedOut:
    command = c.CheckOut(activity_id=activity_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, CheckedOut, location=lambda r: _activity(r.activity_id))


@router.post(
    "/{activity_id}/confirmations",
    status_code=201,
    summary="Confirm a volunteer's service and award its points (once per volunteer)",
    description=(
        "Without `hours`, credits the time between check-in and check-out. Hours "
        "entered by the organizer for a volunteer who did not check in and out are "
        "limited to the activity's length and earn points at the organizer factor."
    ),
    responses=problems(403, 404, 409),
)
async def confirm(activity_id: UUID, body: ConfirmBody, write: WriteDep) -> ServiceConfirmed:
    command = c.ConfirmService(activity_id=activity_id, **body.model_dump(exclude_unset=True))
    return await run(
        write, command, ServiceConfirmed, location=lambda r: f"/v1/passbooks/{r.volunteer_id}"
    )


@router.post(
    "/{activity_id}/cancel",
    summary="Cancel an activity (only before any service is confirmed)",
    responses=problems(403, 404, 409),
)
async def cancel(activity_id: UUID, body: ReasonBody, write: WriteDep) -> ActivityStatusResult:
    command = c.CancelActivity(activity_id=activity_id, reason=body.reason)
    return await run(write, command, ActivityStatusResult)


@router.post(
    "/{activity_id}/close",
    summary="Close an activity after it started (no more sign-ups or attendance)",
    responses=problems(403, 404, 409),
)
async def close(activity_id: UUID, write: WriteDep) -> ActivityStatusResult:
    command = c.CloseActivity(activity_id=activity_id)
    return await run(write, command, ActivityStatusResult)
