"""Request bodies for routes whose path names the target, and write responses.

Routes without path parameters take the command model itself as their body.
Where the path names the target (``/v1/activities/{id}/signups``), the body holds
the rest of the command's fields, with the same types, and the route merges the
path in. Write responses carry the command's result plus ``position`` (for
read-your-writes: pass it as ``min_position`` to a projection-backed read) and
``replayed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.commands import Hours, LongText, Phone, Reason, Text
from services.keys import KeyInfo
from services.principals import Role
from services.queries import SpentLot

# -- request bodies ------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReasonBody(Body):
    reason: Reason


class RenameUnitBody(Body):
    name: Text
    reason: Reason


class UpdateProfileBody(Body):
    name: Text | None = None
    phone: Phone | None = None
    reason: Reason


class SignUpBody(Body):
    volunteer_id: UUID


class AttendanceBody(Body):
    volunteer_id: UUID
    at: AwareDatetime | None = Field(default=None, description="defaults to now")


class ConfirmBody(Body):
    volunteer_id: UUID
    hours: Hours | None = Field(
        default=None, description="omit to credit the time between check-in and check-out"
    )
    people_served: int = Field(default=0, ge=0, le=1_000_000)
    note: LongText = ""


class AwardBody(Body):
    points: int = Field(ge=1, le=100_000)
    reason: Reason
    award_id: UUID | None = Field(default=None, description="makes the award idempotent")


class AdjustBody(Body):
    delta: int = Field(ge=-100_000, le=100_000, description="positive or negative, never 0")
    reason: Reason
    adjustment_id: UUID | None = None


class RestockBody(Body):
    quantity: int = Field(ge=1, le=1_000_000)
    reason: Reason = "restocked"


class FulfilBody(Body):
    note: LongText = ""


class KeyCreateBody(Body):
    name: Text = Field(description="who or what uses the key")
    role: Role
    unit_id: UUID | None = Field(
        default=None, description="required for unit_admin and service keys; none otherwise"
    )


# -- write responses -----------------------------------------------------------------


class WriteResponse(BaseModel):
    """A command's result. Further result fields may be added over time."""

    model_config = ConfigDict(extra="allow")

    position: int | None = Field(
        description="store position of the command's last event (pass as min_position)"
    )
    replayed: bool = Field(description="true when answered from an earlier Idempotency-Key")


class UnitResult(WriteResponse):
    unit_id: UUID


class VolunteerRegistered(WriteResponse):
    volunteer_id: UUID
    passbook_id: UUID


class VolunteerResult(WriteResponse):
    volunteer_id: UUID


class VolunteerStatusResult(WriteResponse):
    volunteer_id: UUID
    status: Literal["active", "suspended", "erased"]


class ActivityResult(WriteResponse):
    activity_id: UUID


class ActivityStatusResult(WriteResponse):
    activity_id: UUID
    status: str


class SignedUp(WriteResponse):
    activity_id: UUID
    volunteer_id: UUID
    status: Literal["enrolled", "waitlisted"]
    waitlist_position: int | None = Field(description="1 = next to be promoted")


class SignupCancelled(WriteResponse):
    activity_id: UUID
    volunteer_id: UUID
    promoted_volunteer_id: UUID | None = Field(
        description="the waitlisted volunteer who took the freed place, if any"
    )


class CheckedIn(WriteResponse):
    activity_id: UUID
    volunteer_id: UUID
    at: datetime


class CheckedOut(CheckedIn):
    attended_minutes: int | None


class ServiceConfirmed(WriteResponse):
    activity_id: UUID
    volunteer_id: UUID
    confirmation_id: UUID
    minutes: int
    hours_source: Literal["checkin", "organizer"]
    points: int = Field(description="points awarded to the volunteer's passbook")
    lot_id: UUID


class PointsAwarded(WriteResponse):
    volunteer_id: UUID
    award_id: UUID
    lot_id: UUID
    points: int
    balance: int


class PointsAdjusted(WriteResponse):
    volunteer_id: UUID
    adjustment_id: UUID
    delta: int
    balance: int


class PointsExpired(WriteResponse):
    volunteer_id: UUID
    expired: int
    balance: int


class RewardStock(WriteResponse):
    reward_id: UUID
    stock: int


class RewardDelisted(WriteResponse):
    reward_id: UUID
    delisted: bool


class Redeemed(WriteResponse):
    redemption_id: UUID
    volunteer_id: UUID
    reward_id: UUID
    points: int
    balance: int = Field(description="the volunteer's balance after the redemption")
    stock_left: int
    spent_lots: list[SpentLot] = Field(description="the lots the points came from, oldest first")


class RedemptionStatusResult(WriteResponse):
    redemption_id: UUID
    status: str


class RedemptionCancelled(RedemptionStatusResult):
    balance: int
    stock: int


# -- keys ----------------------------------------------------------------------------


class KeyView(BaseModel):
    key_id: str
    name: str
    role: Role
    unit_id: UUID | None
    created_at: datetime
    revoked_at: datetime | None
    replaces: str | None = Field(default=None, description="the key this one rotated")
    created_by: str | None = Field(default=None, description="who created it, e.g. key:<id>")
    revoked_by: str | None = None

    @classmethod
    def of(cls, info: KeyInfo) -> KeyView:
        return cls(
            key_id=info.key_id,
            name=info.name,
            role=info.role,
            unit_id=info.unit_id,
            created_at=info.created_at,
            revoked_at=info.revoked_at,
            replaces=info.replaces,
            created_by=info.created_by,
            revoked_by=info.revoked_by,
        )


class KeyCreated(KeyView):
    key: str = Field(description="the API key: shown once, store it now")


# -- batch ---------------------------------------------------------------------------


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="the HTTP status the item would have had on its own")
    result: dict[str, Any] | None = None
    problem: dict[str, Any] | None = Field(default=None, description="a problem details object")
    position: int | None = None
    replayed: bool = False


class BatchResponse(BaseModel):
    succeeded: int
    failed: int
    position: int | None = Field(description="the highest position among the items")
    items: list[BatchItemResult]
