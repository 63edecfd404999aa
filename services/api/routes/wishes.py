"""Micro-wishes (微心愿): a unit posts a resident's small wish; a volunteer or a
member claims it, fulfils it; the unit confirms (and may award points)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator

from domain.wishes import WishStatus
from projections import wish_board
from services import commands as c
from services import community_queries as q
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.routes.reports import MinPosition, _reader, _scope
from services.api.schemas import Body, FulfilBody, ReasonBody, WriteResponse
from services.commands.base import LongText

router = APIRouter(prefix="/v1/wishes", tags=["wishes"])


class WishResult(WriteResponse):
    wish_id: UUID
    status: WishStatus
    volunteer_id: UUID | None = None


class WishConfirmed(WishResult):
    confirmation_id: UUID
    points: int = Field(description="points awarded to the volunteer claimant's passbook")
    lot_id: UUID | None


class ClaimBody(Body):
    volunteer_id: UUID | None = None
    claimant_ref: Annotated[str, Field(max_length=100)] = Field(
        default="", description="a member's reference (a party branch, a work unit)"
    )

    @model_validator(mode="after")
    def _one_claimant(self) -> ClaimBody:
        if (self.volunteer_id is None) == (not self.claimant_ref):
            msg = "give either volunteer_id or claimant_ref"
            raise ValueError(msg)
        return self


class ReleaseBody(Body):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "claim withdrawn"


class ConfirmWishBody(Body):
    note: LongText = ""


class WishList(BaseModel):
    unit_id: UUID | None
    status: WishStatus | None
    items: list[wish_board.WishSummary]
    position: int = Field(description="the store position the read model has applied")


@router.post(
    "",
    status_code=201,
    summary="Post a resident's micro-wish at a unit",
    responses=problems(403, 404, 409),
)
async def post_wish(command: c.PostWish, write: WriteDep) -> WishResult:
    return await run(write, command, WishResult, location=lambda r: f"/v1/wishes/{r.wish_id}")


@router.get(
    "",
    summary="The wishes of a unit's subtree, optionally of one status (from the read model)",
    responses=problems(403, 404, 503),
)
def list_wishes(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    status: WishStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=wish_board.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> WishList:
    unit_id = _scope(platform, principal, unit_id)
    name = wish_board.WishBoardProjection.name
    conn = _reader(platform, name, min_position)
    items = wish_board.wishes(
        conn,
        str(unit_id) if unit_id is not None else None,
        status=status,
        limit=limit,
        offset=offset,
    )
    return WishList(
        unit_id=unit_id, status=status, items=items, position=platform.runners[name].position
    )


@router.get(
    "/{wish_id}",
    summary="A wish: status, claimant, points (the resident's reference for the unit's staff)",
    responses=problems(403, 404),
)
def get_wish(wish_id: UUID, platform: PlatformDep, principal: PrincipalDep) -> q.WishView:
    return q.get_wish(platform.app, principal, wish_id)


@router.post(
    "/{wish_id}/claims",
    summary="Claim an open wish, as a volunteer (by id) or a member (by reference)",
    responses=problems(403, 404, 409),
)
async def claim(wish_id: UUID, body: ClaimBody, write: WriteDep) -> WishResult:
    command = c.ClaimWish(wish_id=wish_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, WishResult)


@router.post(
    "/{wish_id}/release",
    summary="Withdraw or release a claim: the wish is open again",
    responses=problems(403, 404, 409),
)
async def release(wish_id: UUID, write: WriteDep, body: ReleaseBody | None = None) -> WishResult:
    command = c.ReleaseWish(wish_id=wish_id, **(body.model_dump() if body else {}))
    return await run(write, command, WishResult)


@router.post(
    "/{wish_id}/fulfil",
    summary="The claimant reports the wish fulfilled",
    responses=problems(403, 404, 409),
)
async def fulfil(wish_id: UUID, write: WriteDep, body: FulfilBody | None = None) -> WishResult:
    command = c.FulfilWish(wish_id=wish_id, note=body.note if body else "")
    return await run(write, command, WishResult)


@router.post(
    "/{wish_id}/confirm",
    summary="The unit confirms the fulfilment; a volunteer claimant earns the wish's points",
    description="One confirmation, one award, ever: the wish and the passbook are saved "
    "in the same transaction.",
    responses=problems(403, 404, 409),
)
async def confirm(
    wish_id: UUID, write: WriteDep, body: ConfirmWishBody | None = None
) -> WishConfirmed:
    command = c.ConfirmWish(wish_id=wish_id, note=body.note if body else "")
    return await run(write, command, WishConfirmed)


@router.post(
    "/{wish_id}/cancel",
    summary="Cancel an open or claimed wish",
    responses=problems(403, 404, 409),
)
async def cancel(wish_id: UUID, body: ReasonBody, write: WriteDep) -> WishResult:
    command = c.CancelWish(wish_id=wish_id, reason=body.reason)
    return await run(write, command, WishResult)


class WishErased(WishResult):
    resident_erased: bool


@router.post(
    "/{wish_id}/erasure",
    summary="Erase the personal data on a wish (right to erasure; admins only)",
    description=(
        "Records a `Wish.ResidentDataErased` fact (no personal data in it) and deletes "
        "the wish's personal-data key: the resident's reference and a member claimant's "
        'reference become unreadable everywhere (the wish shows "[erased]"), while its '
        "status, points, metrics and the audit trail stay. Final."
    ),
    responses=problems(403, 404, 409),
)
async def erase(wish_id: UUID, body: ReasonBody, write: WriteDep) -> WishErased:
    command = c.EraseWishResidentData(wish_id=wish_id, reason=body.reason)
    return await run(write, command, WishErased)
