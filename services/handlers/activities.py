"""Command handlers for activities: sign-ups, attendance, confirmation (with its award)."""

from __future__ import annotations

from uuid import UUID

from domain.activities import Activity
from domain.passbook import AwardKind, Passbook
from domain.units import PracticeUnit
from domain.volunteers import (
    Volunteer,
)
from services import commands as c
from services.handlers.base import Context, Handler, Result, at_or_now, ensure_new_id
from services.unit_of_work import UnitOfWork


def publish_activity(cmd: c.PublishActivity, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    ensure_new_id(uow, cmd.activity_id, "an activity", "activity-exists")
    activity = Activity.publish(
        unit=unit,
        title=cmd.title,
        category=cmd.category,
        starts_at=cmd.starts_at,
        ends_at=cmd.ends_at,
        location=cmd.location,
        capacity=cmd.capacity,
        points_per_hour=cmd.points_per_hour,
        hour_cap_minutes=c.minutes(cmd.hour_cap),
        description=cmd.description,
        activity_id=cmd.activity_id,
    )
    uow.add(activity)
    return {"activity_id": str(activity.id)}


def _activity_for_write(uow: UnitOfWork, ctx: Context, activity_id: UUID) -> Activity:
    activity = uow.get(Activity, activity_id)
    ctx.principal.ensure_can_write(activity.lineage)
    return activity


def sign_up(cmd: c.SignUp, uow: UnitOfWork, ctx: Context) -> Result:
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    volunteer = uow.get(Volunteer, cmd.volunteer_id)
    status = activity.sign_up(volunteer, ctx.now)
    return {
        "activity_id": str(activity.id),
        "volunteer_id": str(volunteer.id),
        "status": status.value,
        "waitlist_position": (
            activity.waitlist.index(volunteer.id) + 1 if volunteer.id in activity.waitlist else None
        ),
    }


def cancel_signup(cmd: c.CancelSignup, uow: UnitOfWork, ctx: Context) -> Result:
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    promoted = activity.cancel_signup(cmd.volunteer_id, cmd.reason, ctx.now)
    return {
        "activity_id": str(activity.id),
        "volunteer_id": str(cmd.volunteer_id),
        "promoted_volunteer_id": str(promoted) if promoted else None,
    }


def check_in(cmd: c.CheckIn, uow: UnitOfWork, ctx: Context) -> Result:
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    at = at_or_now(cmd.at, ctx.now)
    activity.check_in(cmd.volunteer_id, at)
    return {"activity_id": str(activity.id), "volunteer_id": str(cmd.volunteer_id), "at": at}


def check_out(cmd: c.CheckOut, uow: UnitOfWork, ctx: Context) -> Result:
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    at = at_or_now(cmd.at, ctx.now)
    activity.check_out(cmd.volunteer_id, at)
    return {
        "activity_id": str(activity.id),
        "volunteer_id": str(cmd.volunteer_id),
        "at": at,
        "attended_minutes": activity.attended_minutes(cmd.volunteer_id),
    }


def confirm_service(cmd: c.ConfirmService, uow: UnitOfWork, ctx: Context) -> Result:
    """Confirm one volunteer's service and award its points: one confirmation, one
    award, ever — both land in the same transaction."""
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    passbook = uow.get(Passbook, Passbook.create_id(cmd.volunteer_id))
    record = activity.confirm_service(
        cmd.volunteer_id,
        minutes=c.minutes(cmd.hours),
        people_served=cmd.people_served,
        now=ctx.now,
        note=cmd.note,
    )
    points = ctx.points_rule.points_for(
        minutes=record.minutes,
        points_per_hour=record.points_per_hour,
        source=record.source,
        category=record.category,
    )
    lot_id = passbook.award(
        points=points,
        kind=AwardKind.SERVICE,
        source_id=record.confirmation_id,
        reason=f"service at {activity.title}",
        now=ctx.now,
        policy=ctx.expiry_policy,
        activity_id=activity.id,
        minutes=record.minutes,
    )
    return {
        "activity_id": str(activity.id),
        "volunteer_id": str(cmd.volunteer_id),
        "confirmation_id": str(record.confirmation_id),
        "minutes": record.minutes,
        "hours_source": record.source.value,
        "points": points,
        "lot_id": str(lot_id),
    }


def cancel_activity(cmd: c.CancelActivity, uow: UnitOfWork, ctx: Context) -> Result:
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    activity.cancel(cmd.reason)
    return {"activity_id": str(activity.id), "status": activity.status.value}


def close_activity(cmd: c.CloseActivity, uow: UnitOfWork, ctx: Context) -> Result:
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    activity.close(ctx.now)
    return {"activity_id": str(activity.id), "status": activity.status.value}


HANDLERS: dict[type[c.Command], Handler] = {
    c.PublishActivity: publish_activity,
    c.SignUp: sign_up,
    c.CancelSignup: cancel_signup,
    c.CheckIn: check_in,
    c.CheckOut: check_out,
    c.ConfirmService: confirm_service,
    c.CancelActivity: cancel_activity,
    c.CloseActivity: close_activity,
}
