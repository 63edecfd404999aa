"""Commands on the rewards catalogue and redemptions."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from services.commands.base import Command, LongText, Reason, Text


class ListReward(Command):
    type: Literal["list_reward"] = "list_reward"
    reward_id: UUID | None = None
    unit_id: UUID
    name: Text
    description: LongText = ""
    cost_points: int = Field(ge=1, le=1_000_000)
    stock: int = Field(ge=0, le=1_000_000)


class RestockReward(Command):
    type: Literal["restock_reward"] = "restock_reward"
    reward_id: UUID
    quantity: int = Field(ge=1, le=1_000_000)
    reason: Reason = "restocked"


class DelistReward(Command):
    type: Literal["delist_reward"] = "delist_reward"
    reward_id: UUID
    reason: Reason


class Redeem(Command):
    type: Literal["redeem"] = "redeem"
    redemption_id: UUID | None = None
    volunteer_id: UUID
    reward_id: UUID
    quantity: int = Field(default=1, ge=1, le=1000)


class FulfilRedemption(Command):
    type: Literal["fulfil_redemption"] = "fulfil_redemption"
    redemption_id: UUID
    note: LongText = ""


class CancelRedemption(Command):
    type: Literal["cancel_redemption"] = "cancel_redemption"
    redemption_id: UUID
    reason: Reason
