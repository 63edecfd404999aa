"""Commands on micro-wishes (微心愿)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from domain.wishes import MAX_WISH_POINTS
from services.commands.base import Command, LongText, Reason, Text

ResidentRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class PostWish(Command):
    type: Literal["post_wish"] = "post_wish"
    wish_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    unit_id: UUID
    title: Text = Field(description="the wish, e.g. 一个新书包")
    description: LongText = ""
    resident_ref: ResidentRef = Field(
        description="the unit's own reference to the resident (a file number): no names, "
        "phones or identity numbers; never shown in lists or the audit trail"
    )
    points: int = Field(
        default=0, ge=0, le=MAX_WISH_POINTS, description="awarded to a volunteer claimant"
    )


class ClaimWish(Command):
    """A volunteer (by id) or a member (by reference) claims an open wish."""

    type: Literal["claim_wish"] = "claim_wish"
    wish_id: UUID
    volunteer_id: UUID | None = None
    claimant_ref: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = Field(
        default="", description="a member's reference, e.g. a party branch (no volunteer_id)"
    )

    @model_validator(mode="after")
    def _one_claimant(self) -> ClaimWish:
        if (self.volunteer_id is None) == (not self.claimant_ref):
            msg = "give either volunteer_id or claimant_ref"
            raise ValueError(msg)
        return self


class ReleaseWish(Command):
    type: Literal["release_wish"] = "release_wish"
    wish_id: UUID
    reason: Reason = "claim withdrawn"


class FulfilWish(Command):
    type: Literal["fulfil_wish"] = "fulfil_wish"
    wish_id: UUID
    note: LongText = ""


class ConfirmWish(Command):
    type: Literal["confirm_wish"] = "confirm_wish"
    wish_id: UUID
    note: LongText = ""


class CancelWish(Command):
    type: Literal["cancel_wish"] = "cancel_wish"
    wish_id: UUID
    reason: Reason


class EraseWishResidentData(Command):
    """Right to erasure for the people named on one wish (the resident's reference, a
    member claimant's reference): unreadable everywhere; the wish's figures stay. Not
    a batch item: erasure is one deliberate act."""

    type: Literal["erase_wish_resident_data"] = "erase_wish_resident_data"
    wish_id: UUID
    reason: Reason
