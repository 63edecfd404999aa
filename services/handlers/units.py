"""Command handlers for practice units."""

from __future__ import annotations

from domain.errors import ConflictError
from domain.units import PracticeUnit, UnitTier
from services import commands as c
from services.handlers.base import Context, Handler, Result
from services.unit_of_work import UnitOfWork


def open_unit(cmd: c.OpenUnit, uow: UnitOfWork, ctx: Context) -> Result:
    parent = uow.get(PracticeUnit, cmd.parent_id) if cmd.parent_id else None
    if parent is None or cmd.tier == UnitTier.CENTER:
        ctx.principal.ensure_admin()
    else:
        ctx.principal.ensure_can_write(parent.lineage)
    if uow.find(PracticeUnit, PracticeUnit.create_id(cmd.code)) is not None:
        raise ConflictError(f"unit code {cmd.code!r} is taken", code="unit-exists")
    unit = PracticeUnit.open(code=cmd.code, name=cmd.name, tier=cmd.tier, parent=parent)
    uow.add(unit)
    return {"unit_id": str(unit.id)}


def rename_unit(cmd: c.RenameUnit, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    unit.rename(cmd.name, cmd.reason)
    return {"unit_id": str(unit.id)}


def close_unit(cmd: c.CloseUnit, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.path)  # a unit is closed from above
    unit.close(cmd.reason)
    return {"unit_id": str(unit.id)}


HANDLERS: dict[type[c.Command], Handler] = {
    c.OpenUnit: open_unit,
    c.RenameUnit: rename_unit,
    c.CloseUnit: close_unit,
}
