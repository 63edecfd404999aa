"""Command handlers for service orders.

Who may act: the unit that receives an order (its subtree's keys) places and
reviews it; the unit handling it (after passing down, the lower unit) dispatches
or passes it further down; the team's unit accepts, declines, takes and
completes; the receiving unit records the resident's rating and an admin or unit
admin showcases it; only an admin erases the resident's personal data.

The resident's reference, name, phone and address are sealed with the order's own
key (``services/personal_data.py``) before the domain sees them; erasure records
the fact, then deletes the key.
"""

from __future__ import annotations

from uuid import UUID

from domain.orders import ServiceOrder
from domain.passbook import AwardKind, Passbook
from domain.points import HoursSource
from domain.randomness import new_id
from domain.service_menu import MenuItem
from domain.teams import Team
from domain.units import PracticeUnit
from services import commands as c
from services import personal_data as pd
from services.handlers.base import Context, Handler, Result, ensure_new_id
from services.principals import ForbiddenError, Role
from services.unit_of_work import UnitOfWork


def _status(order: ServiceOrder, **extra: object) -> Result:
    return {"order_id": str(order.id), "status": order.status.value, **extra}


def place_order(cmd: c.PlaceOrder, uow: UnitOfWork, ctx: Context) -> Result:
    item = uow.get(MenuItem, cmd.menu_item_id)
    ctx.principal.ensure_can_write(item.lineage)
    ensure_new_id(uow, cmd.order_id, "an order", "order-exists")
    order_id = cmd.order_id or new_id()  # the vault subject: chosen before sealing
    vault = ctx.vault
    order = ServiceOrder.place(
        item=item,
        channel=cmd.channel,
        now=ctx.now,
        resident_ref=pd.seal(vault, order_id, pd.RESIDENT_REF, cmd.resident_ref),
        resident_name=pd.seal(vault, order_id, pd.RESIDENT_NAME, cmd.resident_name),
        resident_phone=pd.seal(vault, order_id, pd.RESIDENT_PHONE, cmd.resident_phone),
        address=pd.seal(vault, order_id, pd.ADDRESS, cmd.address),
        details=cmd.details,
        order_id=order_id,
    )
    uow.add(order)
    return _status(order, unit_id=str(order.unit_id))


def _order(uow: UnitOfWork, order_id: UUID) -> ServiceOrder:
    return uow.get(ServiceOrder, order_id)


def _order_for_handling_unit(uow: UnitOfWork, ctx: Context, order_id: UUID) -> ServiceOrder:
    order = _order(uow, order_id)
    ctx.principal.ensure_can_write(order.handling_path)
    return order


def _team_for_write(uow: UnitOfWork, ctx: Context, team_id: UUID) -> Team:
    team = uow.get(Team, team_id)
    ctx.principal.ensure_can_write(team.lineage)
    return team


def approve_order(cmd: c.ApproveOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order_for_handling_unit(uow, ctx, cmd.order_id)
    order.approve(now=ctx.now, note=cmd.note, open_to_teams=cmd.open_to_teams)
    return _status(order, open_to_teams=order.open_to_teams)


def reject_order(cmd: c.RejectOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order_for_handling_unit(uow, ctx, cmd.order_id)
    order.reject(reason=cmd.reason, now=ctx.now)
    return _status(order)


def dispatch_order(cmd: c.DispatchOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order_for_handling_unit(uow, ctx, cmd.order_id)
    team = uow.get(Team, cmd.team_id)
    order.dispatch(team, now=ctx.now)
    return _status(order, team_id=str(team.id))


def pass_order_down(cmd: c.PassOrderDown, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order_for_handling_unit(uow, ctx, cmd.order_id)
    unit = uow.get(PracticeUnit, cmd.unit_id)
    order.pass_down(unit, reason=cmd.reason, now=ctx.now)
    return _status(order, handling_unit_id=str(order.handling_unit_id))


def take_order(cmd: c.TakeOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order(uow, cmd.order_id)
    team = _team_for_write(uow, ctx, cmd.team_id)
    order.take(team, now=ctx.now)
    return _status(order, team_id=str(team.id))


def accept_order(cmd: c.AcceptOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order(uow, cmd.order_id)
    team = _team_for_write(uow, ctx, cmd.team_id)
    order.accept(team.id, now=ctx.now)
    return _status(order, team_id=str(team.id))


def decline_order(cmd: c.DeclineOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order(uow, cmd.order_id)
    team = _team_for_write(uow, ctx, cmd.team_id)
    order.decline(team.id, reason=cmd.reason, now=ctx.now)
    return _status(order, team_id=None)


def complete_order(cmd: c.CompleteOrder, uow: UnitOfWork, ctx: Context) -> Result:
    """Complete the order and award each volunteer's points, like a confirmed
    activity (organizer-entered hours): one completion, one award per volunteer,
    ever — all in the same transaction."""
    order = _order(uow, cmd.order_id)
    team = _team_for_write(uow, ctx, cmd.team_id)
    lines = [(line.volunteer_id, c.minutes(line.hours) or 0) for line in cmd.services]
    passbooks = {v: uow.get(Passbook, Passbook.create_id(v)) for v, _ in lines}
    services = order.complete(
        team, lines, people_served=cmd.people_served, now=ctx.now, note=cmd.note
    )
    awards = []
    for service in services:
        points = ctx.points_rule.points_for(
            minutes=service.minutes,
            points_per_hour=order.points_per_hour,
            source=HoursSource.ORGANIZER,
            category=order.category,
        )
        lot_id = passbooks[service.volunteer_id].award(
            points=points,
            kind=AwardKind.SERVICE,
            source_id=service.completion_id,
            reason=f"service order: {order.title}",
            now=ctx.now,
            policy=ctx.expiry_policy,
            minutes=service.minutes,
        )
        awards.append(
            {
                "volunteer_id": str(service.volunteer_id),
                "completion_id": str(service.completion_id),
                "minutes": service.minutes,
                "points": points,
                "lot_id": str(lot_id),
            }
        )
    return _status(order, team_id=str(team.id), awards=awards)


def rate_order(cmd: c.RateOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order(uow, cmd.order_id)
    ctx.principal.ensure_can_write(order.lineage)
    resident_ref = cmd.resident_ref
    stored = order.resident_ref
    if (
        stored is not None
        and resident_ref is not None
        and pd.matches(ctx.vault, order.id, pd.RESIDENT_REF, stored, resident_ref)
    ):
        resident_ref = stored  # the domain compares the sealed reference with itself
    order.rate(stars=cmd.stars, comment=cmd.comment, resident_ref=resident_ref, now=ctx.now)
    return _status(order, stars=order.stars)


def showcase_order(cmd: c.ShowcaseOrder, uow: UnitOfWork, ctx: Context) -> Result:
    order = _order(uow, cmd.order_id)
    ctx.principal.ensure_can_write(order.lineage)
    if ctx.principal.role not in (Role.ADMIN, Role.UNIT_ADMIN):
        raise ForbiddenError("only an admin or a unit admin showcases an order")
    order.showcase(story=cmd.story, photo_links=[str(u) for u in cmd.photo_links], now=ctx.now)
    return _status(order, showcased=True)


def erase_order_resident_data(
    cmd: c.EraseOrderResidentData, uow: UnitOfWork, ctx: Context
) -> Result:
    """Admins only. As for a volunteer: the key is deleted once the domain has
    accepted the erasure and before the fact is committed (a failed commit leaves
    the data unreadable, the safe side; a retry records the fact)."""
    ctx.principal.ensure_admin()
    order = _order(uow, cmd.order_id)
    order.erase_resident_data(cmd.reason)
    ctx.vault.shred(order.id)
    return _status(order, resident_erased=True)


HANDLERS: dict[type[c.Command], Handler] = {
    c.PlaceOrder: place_order,
    c.ApproveOrder: approve_order,
    c.RejectOrder: reject_order,
    c.DispatchOrder: dispatch_order,
    c.PassOrderDown: pass_order_down,
    c.TakeOrder: take_order,
    c.AcceptOrder: accept_order,
    c.DeclineOrder: decline_order,
    c.CompleteOrder: complete_order,
    c.RateOrder: rate_order,
    c.ShowcaseOrder: showcase_order,
    c.EraseOrderResidentData: erase_order_resident_data,
}
