"""Request bodies and write responses of the service-menu and order routes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, Field, StringConstraints

from domain.categories import Category
from services.api.schemas import Body, WriteResponse
from services.commands import LongText, Reason, ServiceLine, Text
from services.commands.orders import ResidentRef
from services.commands.service_menu import StepMinutes

# -- bodies --------------------------------------------------------------------------


class ReviseMenuItemBody(Body):
    category: Category
    title: Text
    description: LongText = ""
    points_per_hour: int = Field(default=10, ge=0, le=1000)
    first_come: bool = False
    deadline_minutes: StepMinutes | None = None
    reason: Reason


class ApproveBody(Body):
    note: LongText = ""
    open_to_teams: bool | None = Field(
        default=None, description="let teams take it first-come (default: the menu item's)"
    )


class TeamBody(Body):
    team_id: UUID


class DeclineBody(Body):
    team_id: UUID
    reason: Reason


class PassDownBody(Body):
    unit_id: UUID = Field(description="a unit below the one handling the order")
    reason: Reason = "passed down"


class CompleteBody(Body):
    team_id: UUID
    services: list[ServiceLine] = Field(min_length=1, max_length=200)
    people_served: int = Field(default=1, ge=0, le=1_000_000)
    note: LongText = ""


class RateBody(Body):
    stars: int = Field(ge=1, le=5)
    comment: LongText = ""
    resident_ref: ResidentRef | None = Field(
        default=None, description="the ordering resident's reference (required if it had one)"
    )


class ShowcaseBody(Body):
    story: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    photo_links: list[AnyHttpUrl] = Field(default_factory=list, max_length=9)


# -- responses -----------------------------------------------------------------------


class MenuItemResult(WriteResponse):
    item_id: UUID
    withdrawn: bool


class OrderResult(WriteResponse):
    order_id: UUID
    status: str


class Award(BaseModel):
    volunteer_id: UUID
    completion_id: UUID
    minutes: int
    points: int = Field(description="points awarded to the volunteer's passbook")
    lot_id: UUID


class OrderCompleted(OrderResult):
    team_id: UUID
    awards: list[Award]
