"""Commands on service orders: the 点单→审单→派单→接单→评单→晒单 loop."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

from domain.orders import Channel
from services.commands.base import Command, Hours, LongText, Phone, Reason, Text

ResidentRef = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._:@-]{1,64}$")
]


class PlaceOrder(Command):
    """点单: a resident orders a menu item (``channel=resident``, with their reference),
    or staff enter the order for them (``channel=staff``)."""

    type: Literal["place_order"] = "place_order"
    order_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    menu_item_id: UUID
    channel: Channel = Channel.STAFF
    resident_ref: ResidentRef | None = Field(
        default=None,
        description="the resident's reference in the ordering app (required "
        "when the resident orders)",
    )
    resident_name: Text | None = Field(default=None, description="personal data, optional")
    resident_phone: Phone | None = Field(default=None, description="personal data, optional")
    address: Text | None = Field(default=None, description="personal data, optional")
    details: LongText = ""


class ApproveOrder(Command):
    type: Literal["approve_order"] = "approve_order"
    order_id: UUID
    note: LongText = ""
    open_to_teams: bool | None = Field(
        default=None, description="let teams take it first-come (default: the menu item's)"
    )


class RejectOrder(Command):
    type: Literal["reject_order"] = "reject_order"
    order_id: UUID
    reason: Reason


class DispatchOrder(Command):
    type: Literal["dispatch_order"] = "dispatch_order"
    order_id: UUID
    team_id: UUID


class PassOrderDown(Command):
    type: Literal["pass_order_down"] = "pass_order_down"
    order_id: UUID
    unit_id: UUID = Field(description="a unit below the one handling the order")
    reason: Reason = "passed down"


class TakeOrder(Command):
    type: Literal["take_order"] = "take_order"
    order_id: UUID
    team_id: UUID


class AcceptOrder(Command):
    type: Literal["accept_order"] = "accept_order"
    order_id: UUID
    team_id: UUID


class DeclineOrder(Command):
    type: Literal["decline_order"] = "decline_order"
    order_id: UUID
    team_id: UUID
    reason: Reason


class ServiceLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    volunteer_id: UUID
    hours: Hours


class CompleteOrder(Command):
    type: Literal["complete_order"] = "complete_order"
    order_id: UUID
    team_id: UUID
    services: list[ServiceLine] = Field(min_length=1, max_length=200)
    people_served: int = Field(default=1, ge=0, le=1_000_000)
    note: LongText = ""


class RateOrder(Command):
    type: Literal["rate_order"] = "rate_order"
    order_id: UUID
    stars: int = Field(ge=1, le=5)
    comment: LongText = ""
    resident_ref: ResidentRef | None = None


class ShowcaseOrder(Command):
    type: Literal["showcase_order"] = "showcase_order"
    order_id: UUID
    story: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    photo_links: list[AnyHttpUrl] = Field(default_factory=list, max_length=9)


class EraseOrderResidentData(Command):
    """Right to erasure for the resident of one order: their sealed reference, name,
    phone and address become unreadable everywhere; the order's figures stay. Not a
    batch item: erasure is one deliberate act."""

    type: Literal["erase_order_resident_data"] = "erase_order_resident_data"
    order_id: UUID
    reason: Reason
