"""Commands on a unit's service menu (服务菜单)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from domain.categories import Category
from services.commands.base import Command, LongText, Reason, Text

Step = Literal["review", "dispatch", "accept", "complete"]
StepMinutes = Annotated[
    dict[Step, Annotated[int, Field(ge=1, le=365 * 24 * 60)]],
    Field(max_length=4),
]


class AddMenuItem(Command):
    type: Literal["add_menu_item"] = "add_menu_item"
    item_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    unit_id: UUID
    category: Category
    title: Text
    description: LongText = ""
    points_per_hour: int = Field(default=10, ge=0, le=1000)
    first_come: bool = Field(
        default=False, description="teams may take this item's orders from the queue"
    )
    deadline_minutes: StepMinutes | None = Field(
        default=None, description="per-step deadlines overriding the network's defaults"
    )


class ReviseMenuItem(Command):
    type: Literal["revise_menu_item"] = "revise_menu_item"
    item_id: UUID
    category: Category
    title: Text
    description: LongText = ""
    points_per_hour: int = Field(default=10, ge=0, le=1000)
    first_come: bool = False
    deadline_minutes: StepMinutes | None = None
    reason: Reason


class WithdrawMenuItem(Command):
    type: Literal["withdraw_menu_item"] = "withdraw_menu_item"
    item_id: UUID
    reason: Reason
