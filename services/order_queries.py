"""Reads of menu items and service orders served straight from the aggregates.

An order's view includes the resident's contact details (personal data) for the
staff who may read the order, opened from their seals (``[erased]`` once erased);
the read models (lists, metrics, audit) never hold them.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from domain.orders import OrderDeadlines, OrderStatus, ServiceOrder
from domain.service_menu import MenuItem
from services import personal_data as pd
from services.application import CivicApplication
from services.principals import Principal
from services.queries import ReadModel, load


class MenuItemView(ReadModel):
    item_id: UUID
    unit_id: UUID
    unit_path: list[UUID]
    category: str
    title: str
    description: str
    points_per_hour: int
    first_come: bool
    deadline_minutes: dict[str, int] | None
    withdrawn: bool
    version: int


def get_menu_item(app: CivicApplication, principal: Principal, item_id: UUID) -> MenuItemView:
    item = load(app, MenuItem, item_id)
    principal.ensure_can_read(item.lineage)
    return MenuItemView(
        item_id=item.id,
        unit_id=item.unit_id,
        unit_path=item.unit_path,
        category=item.category.value,
        title=item.title,
        description=item.description,
        points_per_hour=item.points_per_hour,
        first_come=item.first_come,
        deadline_minutes=item.deadline_minutes,
        withdrawn=item.withdrawn,
        version=item.version,
    )


class ServiceLineView(ReadModel):
    volunteer_id: UUID
    minutes: int


class Timers(ReadModel):
    """Minutes each step took (null until the step is done)."""

    to_review: int | None
    to_dispatch: int | None = Field(description="from review to the first dispatch")
    to_accept: int | None = Field(description="from the last dispatch to the team's yes")
    to_complete: int | None = Field(description="from placing to completion")


class OrderView(ReadModel):
    order_id: UUID
    menu_item_id: UUID
    unit_id: UUID = Field(description="the unit that received the order")
    unit_path: list[UUID]
    handling_unit_id: UUID = Field(description="the unit whose queue holds it now")
    handling_path: list[UUID]
    category: str
    title: str
    channel: str
    resident_ref: str | None = Field(description='personal data; "[erased]" after erasure')
    resident_name: str | None = Field(description='personal data; "[erased]" after erasure')
    resident_phone: str | None = Field(description='personal data; "[erased]" after erasure')
    address: str | None = Field(description='personal data; "[erased]" after erasure')
    resident_erased: bool = Field(description="the resident's personal data was erased")
    details: str
    status: OrderStatus
    open_to_teams: bool
    team_id: UUID | None
    declines: int
    reject_reason: str | None
    placed_at: datetime
    reviewed_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    completed_at: datetime | None
    due_at: datetime | None = Field(description="when the current step's deadline passes")
    overdue: bool
    timers: Timers
    services: list[ServiceLineView]
    people_served: int
    stars: int | None
    comment: str | None
    story: str | None
    photo_links: list[str]
    version: int


def get_order(
    app: CivicApplication, principal: Principal, order_id: UUID, deadlines: OrderDeadlines
) -> OrderView:
    order = load(app, ServiceOrder, order_id)
    if not principal.can_read(order.handling_path):
        principal.ensure_can_read(order.lineage)
    now = app.clock()
    vault, erased = app.vault, order.resident_erased

    def shown(field: str, value: str | None) -> str | None:
        return pd.reveal(vault, order.id, field, value, erased=erased)

    return OrderView(
        order_id=order.id,
        menu_item_id=order.menu_item_id,
        unit_id=order.unit_id,
        unit_path=order.unit_path,
        handling_unit_id=order.handling_unit_id,
        handling_path=order.handling_path,
        category=order.category.value,
        title=order.title,
        channel=order.channel.value,
        resident_ref=shown(pd.RESIDENT_REF, order.resident_ref),
        resident_name=shown(pd.RESIDENT_NAME, order.resident_name),
        resident_phone=shown(pd.RESIDENT_PHONE, order.resident_phone),
        address=shown(pd.ADDRESS, order.address),
        resident_erased=erased,
        details=order.details,
        status=order.status,
        open_to_teams=order.open_to_teams,
        team_id=order.team_id,
        declines=order.declines,
        reject_reason=order.reject_reason,
        placed_at=order.placed_at,
        reviewed_at=order.reviewed_at,
        dispatched_at=order.dispatched_at,
        accepted_at=order.accepted_at,
        completed_at=order.completed_at,
        due_at=order.due_at(deadlines),
        overdue=order.is_overdue(now, deadlines),
        timers=Timers(
            to_review=order.time_to_review,
            to_dispatch=order.time_to_dispatch,
            to_accept=order.time_to_accept,
            to_complete=order.time_to_complete,
        ),
        services=[ServiceLineView(volunteer_id=v, minutes=m) for v, m in order.services],
        people_served=order.people_served,
        stars=order.stars,
        comment=order.comment,
        story=order.story,
        photo_links=order.photo_links,
        version=order.version,
    )
