"""Command handlers for a unit's service menu."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from domain.service_menu import MenuItem
from domain.units import PracticeUnit
from services import commands as c
from services.commands.service_menu import Step
from services.handlers.base import Context, Handler, Result, ensure_new_id
from services.unit_of_work import UnitOfWork


def _deadlines(minutes: Mapping[Step, int] | None) -> dict[str, int] | None:
    return {str(step): m for step, m in minutes.items()} if minutes else None


def add_menu_item(cmd: c.AddMenuItem, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    ensure_new_id(uow, cmd.item_id, "a menu item", "item-exists")
    item = MenuItem.add(
        unit=unit,
        category=cmd.category,
        title=cmd.title,
        description=cmd.description,
        points_per_hour=cmd.points_per_hour,
        first_come=cmd.first_come,
        deadline_minutes=_deadlines(cmd.deadline_minutes),
        item_id=cmd.item_id,
    )
    uow.add(item)
    return {"item_id": str(item.id), "withdrawn": False}


def _item_for_write(uow: UnitOfWork, ctx: Context, item_id: UUID) -> MenuItem:
    item = uow.get(MenuItem, item_id)
    ctx.principal.ensure_can_write(item.lineage)
    return item


def revise_menu_item(cmd: c.ReviseMenuItem, uow: UnitOfWork, ctx: Context) -> Result:
    item = _item_for_write(uow, ctx, cmd.item_id)
    item.revise(
        category=cmd.category,
        title=cmd.title,
        description=cmd.description,
        points_per_hour=cmd.points_per_hour,
        first_come=cmd.first_come,
        deadline_minutes=_deadlines(cmd.deadline_minutes),
        reason=cmd.reason,
    )
    return {"item_id": str(item.id), "withdrawn": False}


def withdraw_menu_item(cmd: c.WithdrawMenuItem, uow: UnitOfWork, ctx: Context) -> Result:
    item = _item_for_write(uow, ctx, cmd.item_id)
    item.withdraw(cmd.reason)
    return {"item_id": str(item.id), "withdrawn": True}


HANDLERS: dict[type[c.Command], Handler] = {
    c.AddMenuItem: add_menu_item,
    c.ReviseMenuItem: revise_menu_item,
    c.WithdrawMenuItem: withdraw_menu_item,
}
