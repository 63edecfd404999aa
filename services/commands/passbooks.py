"""Commands on love passbooks (爱心存折): awards, adjustments, expiry."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from services.commands.base import Command, Reason


class AwardPoints(Command):
    """A manual award, e.g. for a household civility check (文明户评比)."""

    type: Literal["award_points"] = "award_points"
    volunteer_id: UUID
    points: int = Field(ge=1, le=100_000)
    reason: Reason
    award_id: UUID | None = Field(default=None, description="makes the award idempotent")


class AdjustPoints(Command):
    """An admin's correction, positive or negative, always with a reason."""

    type: Literal["adjust_points"] = "adjust_points"
    volunteer_id: UUID
    delta: int = Field(ge=-100_000, le=100_000)
    reason: Reason
    adjustment_id: UUID | None = None


class ExpirePoints(Command):
    type: Literal["expire_points"] = "expire_points"
    volunteer_id: UUID
