"""Commands: what a caller asks the platform to do, one pydantic model each.

The same models validate single HTTP requests (path parameters merged in) and the
items of a batch, where the ``type`` field says which command an item is.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from domain.categories import Category
from domain.units import UnitTier

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 -]{5,20}$")]
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._-]{1,64}$")]


def _in_range(t: datetime) -> datetime:
    if not 2000 <= t.year <= 2100:
        msg = "must be between the years 2000 and 2100"
        raise ValueError(msg)
    return t


When = Annotated[AwareDatetime, AfterValidator(_in_range)]
Hours = Annotated[Decimal, Field(gt=0, le=24 * 7, max_digits=6, decimal_places=2)]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# -- units ---------------------------------------------------------------------------


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


# -- volunteers ----------------------------------------------------------------------


class RegisterVolunteer(Command):
    type: Literal["register_volunteer"] = "register_volunteer"
    home_station_id: UUID
    name: Text
    phone: Phone
    id_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=6, max_length=32)
    ] = Field(description="resident identity number (18 characters, checked) — never stored")


class UpdateVolunteerProfile(Command):
    type: Literal["update_volunteer_profile"] = "update_volunteer_profile"
    volunteer_id: UUID
    name: Text | None = None
    phone: Phone | None = None
    reason: Reason


class SuspendVolunteer(Command):
    type: Literal["suspend_volunteer"] = "suspend_volunteer"
    volunteer_id: UUID
    reason: Reason


class ReinstateVolunteer(Command):
    type: Literal["reinstate_volunteer"] = "reinstate_volunteer"
    volunteer_id: UUID
    reason: Reason


# -- activities ----------------------------------------------------------------------


class PublishActivity(Command):
    type: Literal["publish_activity"] = "publish_activity"
    activity_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    unit_id: UUID
    title: Text
    category: Category
    starts_at: When
    ends_at: When
    location: Text
    capacity: int = Field(ge=1, le=100_000)
    points_per_hour: int = Field(ge=0, le=1000)
    hour_cap: Hours | None = Field(default=None, description="max hours credited per volunteer")
    description: LongText = ""


class SignUp(Command):
    type: Literal["sign_up"] = "sign_up"
    activity_id: UUID
    volunteer_id: UUID


class CancelSignup(Command):
    type: Literal["cancel_signup"] = "cancel_signup"
    activity_id: UUID
    volunteer_id: UUID
    reason: Reason = "cancelled by the volunteer"


class CheckIn(Command):
    type: Literal["check_in"] = "check_in"
    activity_id: UUID
    volunteer_id: UUID
    at: When | None = Field(default=None, description="defaults to now")


class CheckOut(Command):
    type: Literal["check_out"] = "check_out"
    activity_id: UUID
    volunteer_id: UUID
    at: When | None = Field(default=None, description="defaults to now")


class ConfirmService(Command):
    type: Literal["confirm_service"] = "confirm_service"
    activity_id: UUID
    volunteer_id: UUID
    hours: Hours | None = Field(
        default=None, description="omit to credit the time between check-in and check-out"
    )
    people_served: int = Field(default=0, ge=0, le=1_000_000)
    note: LongText = ""


class CancelActivity(Command):
    type: Literal["cancel_activity"] = "cancel_activity"
    activity_id: UUID
    reason: Reason


class CloseActivity(Command):
    type: Literal["close_activity"] = "close_activity"
    activity_id: UUID


# -- passbooks -----------------------------------------------------------------------


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


# -- rewards and redemptions ---------------------------------------------------------


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


AnyCommand = Annotated[
    OpenUnit
    | RenameUnit
    | CloseUnit
    | RegisterVolunteer
    | UpdateVolunteerProfile
    | SuspendVolunteer
    | ReinstateVolunteer
    | PublishActivity
    | SignUp
    | CancelSignup
    | CheckIn
    | CheckOut
    | ConfirmService
    | CancelActivity
    | CloseActivity
    | AwardPoints
    | AdjustPoints
    | ExpirePoints
    | ListReward
    | RestockReward
    | DelistReward
    | Redeem
    | FulfilRedemption
    | CancelRedemption,
    Field(discriminator="type"),
]


def minutes(hours: Decimal | None) -> int | None:
    return None if hours is None else int((hours * 60).to_integral_value())
