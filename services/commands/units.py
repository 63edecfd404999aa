"""Commands on practice units (center, institutes, stations)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from domain.units import UnitTier
from services.commands.base import Code, Command, Reason, Text


class OpenUnit(Command):
    type: Literal["open_unit"] = "open_unit"
    code: Code = Field(description="stable unit code; the unit id is derived from it")
    name: Text
    tier: UnitTier
    parent_id: UUID | None = None


class RenameUnit(Command):
    type: Literal["rename_unit"] = "rename_unit"
    unit_id: UUID
    name: Text
    reason: Reason


class CloseUnit(Command):
    type: Literal["close_unit"] = "close_unit"
    unit_id: UUID
    reason: Reason
