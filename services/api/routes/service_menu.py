"""A unit's service menu (服务菜单): the items residents may order."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from projections import order_board
from services import commands as c
from services import order_queries, queries
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.order_schemas import MenuItemResult, ReviseMenuItemBody
from services.api.problems import problems
from services.api.routes.reports import MinPosition, _reader
from services.api.schemas import ReasonBody

router = APIRouter(prefix="/v1/service-menu", tags=["service menu"])


@router.post(
    "",
    status_code=201,
    summary="Add an item to a unit's service menu",
    responses=problems(403, 404, 409),
)
async def add_item(command: c.AddMenuItem, write: WriteDep) -> MenuItemResult:
    return await run(
        write, command, MenuItemResult, location=lambda r: f"/v1/service-menu/{r.item_id}"
    )


class Menu(BaseModel):
    unit_id: UUID
    items: list[order_board.MenuEntry]
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "",
    summary="The menu items of a unit and of the units below it",
    responses=problems(403, 404, 503),
)
def list_items(
    unit_id: UUID,
    platform: PlatformDep,
    principal: PrincipalDep,
    include_withdrawn: bool = False,
    min_position: MinPosition = None,
) -> Menu:
    principal.ensure_can_read(queries.unit_lineage(platform.app, unit_id))
    conn = _reader(platform, order_board.OrderBoardProjection.name, min_position)
    items = order_board.menu(conn, str(unit_id), include_withdrawn=include_withdrawn)
    position = platform.runners[order_board.OrderBoardProjection.name].position
    return Menu(unit_id=unit_id, items=items, position=position)


@router.get("/{item_id}", summary="A menu item", responses=problems(403, 404))
def get_item(
    item_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> order_queries.MenuItemView:
    return order_queries.get_menu_item(platform.app, principal, item_id)


@router.post(
    "/{item_id}/revise",
    summary="Revise a menu item (orders already placed keep what they were placed with)",
    responses=problems(403, 404, 409),
)
async def revise_item(item_id: UUID, body: ReviseMenuItemBody, write: WriteDep) -> MenuItemResult:
    command = c.ReviseMenuItem(item_id=item_id, **body.model_dump())
    return await run(write, command, MenuItemResult)


@router.post(
    "/{item_id}/withdraw",
    summary="Withdraw a menu item (no new orders; open orders go on)",
    responses=problems(403, 404, 409),
)
async def withdraw_item(item_id: UUID, body: ReasonBody, write: WriteDep) -> MenuItemResult:
    command = c.WithdrawMenuItem(item_id=item_id, reason=body.reason)
    return await run(write, command, MenuItemResult)
