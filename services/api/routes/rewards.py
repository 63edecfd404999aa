"""The exchange bank's rewards (公益兑换储蓄银行) and their redemptions."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from domain.redemptions import RedemptionStatus
from projections import listings
from services import commands as c
from services import queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.routes.reports import MinPosition, _reader, _scope
from services.api.schemas import (
    FulfilBody,
    ReasonBody,
    Redeemed,
    RedemptionCancelled,
    RedemptionStatusResult,
    RestockBody,
    RewardDelisted,
    RewardStock,
)

rewards = APIRouter(prefix="/v1/rewards", tags=["rewards"])
redemptions = APIRouter(prefix="/v1/redemptions", tags=["redemptions"])


@rewards.post(
    "",
    status_code=201,
    summary="List a reward at a unit, with its cost in points and its stock",
    responses=problems(403, 404, 409),
)
async def list_reward(command: c.ListReward, write: WriteDep) -> RewardStock:
    return await run(write, command, RewardStock, location=lambda r: f"/v1/rewards/{r.reward_id}")


class RewardList(BaseModel):
    unit_id: UUID | None
    items: list[listings.RewardSummary]
    position: int = Field(description="the store position the read model has applied")


@rewards.get(
    "",
    summary="The gift catalogue of a unit's subtree: cost and stock (from the read model)",
    responses=problems(403, 404, 503),
)
def list_rewards(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    in_stock: Annotated[bool, Query(description="only gifts with stock left")] = False,
    include_delisted: Annotated[bool, Query(description="also withdrawn gifts")] = False,
    limit: Annotated[int, Query(ge=1, le=listings.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> RewardList:
    unit_id = _scope(platform, principal, unit_id)
    name = listings.ListingsProjection.name
    conn = _reader(platform, name, min_position)
    items = listings.rewards(
        conn,
        str(unit_id) if unit_id is not None else None,
        in_stock=in_stock,
        include_delisted=include_delisted,
        limit=limit,
        offset=offset,
    )
    return RewardList(unit_id=unit_id, items=items, position=platform.runners[name].position)


@rewards.get(
    "/{reward_id}", summary="A reward: cost, stock, listed or not", responses=problems(403, 404)
)
def get_reward(
    reward_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> queries.RewardView:
    return queries.get_reward(platform.app, principal, reward_id)


@rewards.post(
    "/{reward_id}/restock",
    summary="Add stock to a reward",
    responses=problems(403, 404, 409),
)
async def restock(reward_id: UUID, body: RestockBody, write: WriteDep) -> RewardStock:
    command = c.RestockReward(reward_id=reward_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, RewardStock)


@rewards.post(
    "/{reward_id}/delist",
    summary="Withdraw a reward (open redemptions stay valid)",
    responses=problems(403, 404, 409),
)
async def delist(reward_id: UUID, body: ReasonBody, write: WriteDep) -> RewardDelisted:
    command = c.DelistReward(reward_id=reward_id, reason=body.reason)
    return await run(write, command, RewardDelisted)


@redemptions.post(
    "",
    status_code=201,
    summary="Redeem points for a reward: debit, reserve stock, record, in one transaction",
    description="Racing for the last item, exactly one request wins; the others get 409.",
    responses=problems(403, 404, 409),
)
async def redeem(command: c.Redeem, write: WriteDep) -> Redeemed:
    return await run(
        write, command, Redeemed, location=lambda r: f"/v1/redemptions/{r.redemption_id}"
    )


class RedemptionList(BaseModel):
    unit_id: UUID | None
    items: list[listings.RedemptionSummary]
    position: int = Field(description="the store position the read model has applied")


@redemptions.get(
    "",
    summary="The redemptions at a unit's subtree, e.g. those waiting to be picked up "
    "(status=requested), or one volunteer's (from the read model)",
    responses=problems(403, 404, 503),
)
def list_redemptions(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    status: RedemptionStatus | None = None,
    volunteer_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=listings.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> RedemptionList:
    unit_id = _scope(platform, principal, unit_id)
    name = listings.ListingsProjection.name
    conn = _reader(platform, name, min_position)
    items = listings.redemptions(
        conn,
        str(unit_id) if unit_id is not None else None,
        status=status,
        volunteer_id=str(volunteer_id) if volunteer_id is not None else None,
        limit=limit,
        offset=offset,
    )
    return RedemptionList(unit_id=unit_id, items=items, position=platform.runners[name].position)


@redemptions.get(
    "/{redemption_id}",
    summary="A redemption: reward, points, the lots they came from, status",
    responses=problems(403, 404),
)
def get_redemption(
    redemption_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> queries.RedemptionView:
    return queries.get_redemption(platform.app, principal, redemption_id)


@redemptions.post(
    "/{redemption_id}/fulfil",
    summary="Record that the volunteer picked the reward up",
    responses=problems(403, 404, 409),
)
async def fulfil(
    redemption_id: UUID, write: WriteDep, body: FulfilBody | None = None
) -> RedemptionStatusResult:
    command = c.FulfilRedemption(redemption_id=redemption_id, note=body.note if body else "")
    return await run(write, command, RedemptionStatusResult)


@redemptions.post(
    "/{redemption_id}/cancel",
    summary="Cancel before pick-up: points return to their lots, the reward to stock",
    responses=problems(403, 404, 409),
)
async def cancel(redemption_id: UUID, body: ReasonBody, write: WriteDep) -> RedemptionCancelled:
    command = c.CancelRedemption(redemption_id=redemption_id, reason=body.reason)
    return await run(write, command, RedemptionCancelled)
