"""Service orders: 点单 place → 审单 review → 派单 dispatch (or pass down) → 接单 accept
→ completion → 评单 rate → 晒单 showcase."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from domain.orders import OrderStatus
from projections import order_board
from services import commands as c
from services import order_queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.order_schemas import (
    ApproveBody,
    CompleteBody,
    DeclineBody,
    OrderCompleted,
    OrderResult,
    PassDownBody,
    RateBody,
    ShowcaseBody,
    TeamBody,
)
from services.api.problems import problems
from services.api.routes.reports import MinPosition, _reader, _scope
from services.api.schemas import ReasonBody
from services.bootstrap import Platform
from services.principals import Principal

router = APIRouter(prefix="/v1/orders", tags=["orders"])

WRITE_PROBLEMS = problems(403, 404, 409)


def _order(order_id: UUID) -> str:
    return f"/v1/orders/{order_id}"


def _location(r: OrderResult) -> str:
    return _order(r.order_id)


@router.post(
    "",
    status_code=201,
    summary="点单: place an order for a menu item (by the resident or entered by staff)",
    description=(
        "`channel=resident` orders carry the resident's `resident_ref` (the one that "
        "may rate the order later). Name, phone and address are optional personal data: "
        "shown on the order to staff who may read it, kept out of every read model."
    ),
    responses=WRITE_PROBLEMS,
)
async def place(command: c.PlaceOrder, write: WriteDep) -> OrderResult:
    return await run(write, command, OrderResult, location=_location)


class OrderList(BaseModel):
    unit_id: UUID | None = Field(description="the subtree listed; null for the whole network")
    items: list[order_board.OrderSummary]
    position: int = Field(description="the store position the read model has applied")


def _list(
    platform: Platform,
    principal: Principal,
    unit_id: UUID | None,
    min_position: int | None,
    **filters: Any,
) -> OrderList:
    scope = _scope(platform, principal, unit_id)
    conn = _reader(platform, order_board.OrderBoardProjection.name, min_position)
    items = order_board.orders(
        conn,
        str(scope) if scope is not None else None,
        platform.settings.order_deadlines,
        now=platform.app.clock(),
        **filters,
    )
    position = platform.runners[order_board.OrderBoardProjection.name].position
    return OrderList(unit_id=scope, items=items, position=position)


@router.get(
    "",
    summary="A unit's orders (received or handled in its subtree), oldest first",
    description="Filter by `status` and `team_id`; each order shows its step's deadline.",
    responses=problems(403, 404, 503),
)
def list_orders(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    status: OrderStatus | None = None,
    team_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=order_board.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> OrderList:
    return _list(
        platform,
        principal,
        unit_id,
        min_position,
        status=status,
        team_id=str(team_id) if team_id else None,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/overdue",
    summary="A unit's open orders past the deadline of the step they wait in",
    description=(
        "Deadlines per step (review, dispatch, accept, complete) come from the settings "
        "(`CIVIC_ORDER_*_MINUTES`) unless the menu item overrides them."
    ),
    responses=problems(403, 404, 503),
)
def list_overdue(
    platform: PlatformDep,
    principal: PrincipalDep,
    unit_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=order_board.MAX_PAGE)] = 100,
    min_position: MinPosition = None,
) -> OrderList:
    return _list(platform, principal, unit_id, min_position, overdue_only=True, limit=limit)


@router.get(
    "/{order_id}",
    summary="An order: status, handling unit, team, timers, deadline, rating, showcase",
    responses=problems(403, 404),
)
def get_order(
    order_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> order_queries.OrderView:
    return order_queries.get_order(
        platform.app, principal, order_id, platform.settings.order_deadlines
    )


@router.post(
    "/{order_id}/approve",
    summary="审单: approve the order into the handling unit's queue",
    responses=WRITE_PROBLEMS,
)
async def approve(order_id: UUID, body: ApproveBody, write: WriteDep) -> OrderResult:
    command = c.ApproveOrder(order_id=order_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/reject",
    summary="审单: reject the order, with the reason",
    responses=WRITE_PROBLEMS,
)
async def reject(order_id: UUID, body: ReasonBody, write: WriteDep) -> OrderResult:
    command = c.RejectOrder(order_id=order_id, **body.model_dump())
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/dispatch",
    summary="派单: dispatch the order to a team within the handling unit's subtree",
    responses=WRITE_PROBLEMS,
)
async def dispatch(order_id: UUID, body: TeamBody, write: WriteDep) -> OrderResult:
    command = c.DispatchOrder(order_id=order_id, **body.model_dump())
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/pass-down",
    summary="Pass the order down to a lower unit, whose queue it joins",
    responses=WRITE_PROBLEMS,
)
async def pass_down(order_id: UUID, body: PassDownBody, write: WriteDep) -> OrderResult:
    command = c.PassOrderDown(order_id=order_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/take",
    summary="A team takes an order open to teams from the queue (first come)",
    responses=WRITE_PROBLEMS,
)
async def take(order_id: UUID, body: TeamBody, write: WriteDep) -> OrderResult:
    command = c.TakeOrder(order_id=order_id, **body.model_dump())
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/accept",
    summary="接单: the team the order was dispatched to accepts it",
    responses=WRITE_PROBLEMS,
)
async def accept(order_id: UUID, body: TeamBody, write: WriteDep) -> OrderResult:
    command = c.AcceptOrder(order_id=order_id, **body.model_dump())
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/decline",
    summary="The team declines; the order returns to the queue",
    responses=WRITE_PROBLEMS,
)
async def decline(order_id: UUID, body: DeclineBody, write: WriteDep) -> OrderResult:
    command = c.DeclineOrder(order_id=order_id, **body.model_dump())
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/complete",
    summary="The team reports completion; each volunteer's points are awarded (once)",
    responses=WRITE_PROBLEMS,
)
async def complete(order_id: UUID, body: CompleteBody, write: WriteDep) -> OrderCompleted:
    command = c.CompleteOrder(order_id=order_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, OrderCompleted)


@router.post(
    "/{order_id}/rate",
    summary="评单: the resident's rating (1-5 stars, a comment), once, after completion",
    responses=WRITE_PROBLEMS,
)
async def rate(order_id: UUID, body: RateBody, write: WriteDep) -> OrderResult:
    command = c.RateOrder(order_id=order_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, OrderResult)


@router.post(
    "/{order_id}/showcase",
    summary="晒单: an admin showcases a completed order (a story, photo links)",
    responses=WRITE_PROBLEMS,
)
async def showcase(order_id: UUID, body: ShowcaseBody, write: WriteDep) -> OrderResult:
    command = c.ShowcaseOrder(order_id=order_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, OrderResult)


class OrderErased(OrderResult):
    resident_erased: bool


@router.post(
    "/{order_id}/erasure",
    summary="Erase the resident's personal data on an order (right to erasure; admins only)",
    description=(
        "Records a `ServiceOrder.ResidentDataErased` fact (no personal data in it) and "
        "deletes the order's personal-data key: the resident's reference, name, phone and "
        'address become unreadable everywhere (the order shows "[erased]"), while the '
        "order's status, timers, service hours, points, metrics and the audit trail stay. "
        "Final."
    ),
    responses=WRITE_PROBLEMS,
)
async def erase(order_id: UUID, body: ReasonBody, write: WriteDep) -> OrderErased:
    command = c.EraseOrderResidentData(order_id=order_id, reason=body.reason)
    return await run(write, command, OrderErased)
