"""Commands on activities: publishing, sign-ups, attendance, confirmation."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from domain.categories import Category
from services.commands.base import Command, Hours, LongText, Reason, Text, When


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
