"""Command handlers: load aggregates, check the caller's reach, call the domain.

Each handler takes a command, a unit of work and the command context, and
returns the command's result as simple JSON-ready values. Authorisation happens
here because this is where the target's place in the hierarchy is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from domain.activities import Activity
from domain.errors import ConflictError, RuleViolationError
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryPolicy, PointsRule
from domain.redemptions import Redemption, redeem
from domain.rewards import Reward
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import (
    Volunteer,
    document_digest,
    is_valid_resident_id,
    mask_document_number,
)
from services import commands as c
from services.principals import Principal
from services.unit_of_work import UnitOfWork

Result = dict[str, Any]


@dataclass(frozen=True)
class Context:
    principal: Principal
    now: datetime
    points_rule: PointsRule
    expiry_policy: ExpiryPolicy
    document_secret: bytes


def _at(at: datetime | None, now: datetime) -> datetime:
    if at is None:
        return now
    if (at - now).total_seconds() > 300:
        raise RuleViolationError("that time is in the future", code="future-time")
    return at


# -- units ---------------------------------------------------------------------------


def open_unit(cmd: c.OpenUnit, uow: UnitOfWork, ctx: Context) -> Result:
    parent = uow.get(PracticeUnit, cmd.parent_id) if cmd.parent_id else None
    if parent is None or cmd.tier == UnitTier.CENTER:
        ctx.principal.ensure_admin()
    else:
        ctx.principal.ensure_can_write(parent.lineage)
    if uow.find(PracticeUnit, PracticeUnit.create_id(cmd.code)) is not None:
        raise ConflictError(f"unit code {cmd.code!r} is taken", code="unit-exists")
    unit = PracticeUnit.open(code=cmd.code, name=cmd.name, tier=cmd.tier, parent=parent)
    uow.add(unit)
    return {"unit_id": str(unit.id)}


def rename_unit(cmd: c.RenameUnit, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    unit.rename(cmd.name, cmd.reason)
    return {"unit_id": str(unit.id)}


def close_unit(cmd: c.CloseUnit, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.path)  # a unit is closed from above
    unit.close(cmd.reason)
    return {"unit_id": str(unit.id)}


# -- volunteers ----------------------------------------------------------------------


def register_volunteer(cmd: c.RegisterVolunteer, uow: UnitOfWork, ctx: Context) -> Result:
    station = uow.get(PracticeUnit, cmd.home_station_id)
    ctx.principal.ensure_can_write(station.lineage)
    if not is_valid_resident_id(cmd.id_number):
        raise RuleViolationError("not a valid resident identity number", code="invalid-id-number")
    digest = document_digest(ctx.document_secret, cmd.id_number)
    if uow.find(Volunteer, Volunteer.create_id(digest)) is not None:
        raise ConflictError(
            "a volunteer with this identity number is already registered",
            code="already-registered",
        )
    volunteer = Volunteer.register(
        document_digest=digest,
        document_masked=mask_document_number(cmd.id_number),
        home_station=station,
        name=cmd.name,
        phone=cmd.phone,
    )
    passbook = Passbook.open_for(volunteer.id, volunteer.home_path)
    uow.add(volunteer)
    uow.add(passbook)
    return {"volunteer_id": str(volunteer.id), "passbook_id": str(passbook.id)}


def _volunteer_for_write(uow: UnitOfWork, ctx: Context, volunteer_id: UUID) -> Volunteer:
    volunteer = uow.get(Volunteer, volunteer_id)
    ctx.principal.ensure_can_write(volunteer.home_path)
    return volunteer


def update_volunteer_profile(
    cmd: c.UpdateVolunteerProfile, uow: UnitOfWork, ctx: Context
) -> Result:
    volunteer = _volunteer_for_write(uow, ctx, cmd.volunteer_id)
    volunteer.update_profile(name=cmd.name, phone=cmd.phone, reason=cmd.reason)
    return {"volunteer_id": str(volunteer.id)}


def suspend_volunteer(cmd: c.SuspendVolunteer, uow: UnitOfWork, ctx: Context) -> Result:
    volunteer = _volunteer_for_write(uow, ctx, cmd.volunteer_id)
    volunteer.suspend(cmd.reason)
    return {"volunteer_id": str(volunteer.id), "status": volunteer.status.value}


def reinstate_volunteer(cmd: c.ReinstateVolunteer, uow: UnitOfWork, ctx: Context) -> Result:
    volunteer = _volunteer_for_write(uow, ctx, cmd.volunteer_id)
    volunteer.reinstate(cmd.reason)
    return {"volunteer_id": str(volunteer.id), "status": volunteer.status.value}


# -- activities ----------------------------------------------------------------------


def publish_activity(cmd: c.PublishActivity, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    if cmd.activity_id is not None and uow.find(Activity, cmd.activity_id) is not None:
        raise ConflictError("an activity with this id exists", code="activity-exists")
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
    at = _at(cmd.at, ctx.now)
    activity.check_in(cmd.volunteer_id, at)
    return {"activity_id": str(activity.id), "volunteer_id": str(cmd.volunteer_id), "at": at}


def check_out(cmd: c.CheckOut, uow: UnitOfWork, ctx: Context) -> Result:
    activity = _activity_for_write(uow, ctx, cmd.activity_id)
    at = _at(cmd.at, ctx.now)
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


# -- passbooks -----------------------------------------------------------------------


def _passbook_for_write(uow: UnitOfWork, ctx: Context, volunteer_id: UUID) -> Passbook:
    passbook = uow.get(Passbook, Passbook.create_id(volunteer_id))
    ctx.principal.ensure_can_write(passbook.home_path)
    return passbook


def award_points(cmd: c.AwardPoints, uow: UnitOfWork, ctx: Context) -> Result:
    passbook = _passbook_for_write(uow, ctx, cmd.volunteer_id)
    award_id = cmd.award_id or uuid4()
    lot_id = passbook.award(
        points=cmd.points,
        kind=AwardKind.MANUAL,
        source_id=award_id,
        reason=cmd.reason,
        now=ctx.now,
        policy=ctx.expiry_policy,
    )
    return {
        "volunteer_id": str(cmd.volunteer_id),
        "award_id": str(award_id),
        "lot_id": str(lot_id),
        "points": cmd.points,
        "balance": passbook.balance,
    }


def adjust_points(cmd: c.AdjustPoints, uow: UnitOfWork, ctx: Context) -> Result:
    ctx.principal.ensure_admin()
    passbook = _passbook_for_write(uow, ctx, cmd.volunteer_id)
    adjustment_id = cmd.adjustment_id or uuid4()
    if cmd.delta == 0:
        raise RuleViolationError("an adjustment must change the balance", code="bad-points")
    if cmd.delta > 0:
        passbook.award(
            points=cmd.delta,
            kind=AwardKind.ADJUSTMENT,
            source_id=adjustment_id,
            reason=cmd.reason,
            now=ctx.now,
            policy=ctx.expiry_policy,
        )
    else:
        passbook.deduct(
            points=-cmd.delta, reason=cmd.reason, adjustment_id=adjustment_id, now=ctx.now
        )
    return {
        "volunteer_id": str(cmd.volunteer_id),
        "adjustment_id": str(adjustment_id),
        "delta": cmd.delta,
        "balance": passbook.balance,
    }


def expire_points(cmd: c.ExpirePoints, uow: UnitOfWork, ctx: Context) -> Result:
    passbook = _passbook_for_write(uow, ctx, cmd.volunteer_id)
    expired = passbook.expire_due(ctx.now)
    if not expired:
        raise ConflictError("no points are due to expire", code="nothing-to-expire")
    return {"volunteer_id": str(cmd.volunteer_id), "expired": expired, "balance": passbook.balance}


# -- rewards and redemptions ---------------------------------------------------------


def list_reward(cmd: c.ListReward, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    if cmd.reward_id is not None and uow.find(Reward, cmd.reward_id) is not None:
        raise ConflictError("a reward with this id exists", code="reward-exists")
    reward = Reward.list_at(
        unit=unit,
        name=cmd.name,
        description=cmd.description,
        cost_points=cmd.cost_points,
        stock=cmd.stock,
        reward_id=cmd.reward_id,
    )
    uow.add(reward)
    return {"reward_id": str(reward.id), "stock": reward.stock}


def _reward_for_write(uow: UnitOfWork, ctx: Context, reward_id: UUID) -> Reward:
    reward = uow.get(Reward, reward_id)
    ctx.principal.ensure_can_write(reward.lineage)
    return reward


def restock_reward(cmd: c.RestockReward, uow: UnitOfWork, ctx: Context) -> Result:
    reward = _reward_for_write(uow, ctx, cmd.reward_id)
    reward.restock(cmd.quantity, cmd.reason)
    return {"reward_id": str(reward.id), "stock": reward.stock}


def delist_reward(cmd: c.DelistReward, uow: UnitOfWork, ctx: Context) -> Result:
    reward = _reward_for_write(uow, ctx, cmd.reward_id)
    reward.delist(cmd.reason)
    return {"reward_id": str(reward.id), "delisted": True}


def redeem_reward(cmd: c.Redeem, uow: UnitOfWork, ctx: Context) -> Result:
    """Debit, reserve and record in one transaction; racing for the last item,
    exactly one wins (the loser's save conflicts, retries and finds no stock)."""
    reward = _reward_for_write(uow, ctx, cmd.reward_id)
    volunteer = uow.get(Volunteer, cmd.volunteer_id)
    passbook = uow.get(Passbook, Passbook.create_id(volunteer.id))
    redemption_id = cmd.redemption_id or uuid4()
    if uow.find(Redemption, redemption_id) is not None:
        raise ConflictError("a redemption with this id exists", code="redemption-exists")
    redemption = redeem(
        redemption_id=redemption_id,
        volunteer=volunteer,
        passbook=passbook,
        reward=reward,
        quantity=cmd.quantity,
        now=ctx.now,
    )
    uow.add(redemption)
    return {
        "redemption_id": str(redemption.id),
        "volunteer_id": str(volunteer.id),
        "reward_id": str(reward.id),
        "points": redemption.points,
        "balance": passbook.balance,
        "stock_left": reward.stock,
        "spent_lots": [{"lot_id": str(lot), "points": p} for lot, p in redemption.spent],
    }


def _redemption_for_write(uow: UnitOfWork, ctx: Context, redemption_id: UUID) -> Redemption:
    redemption = uow.get(Redemption, redemption_id)
    ctx.principal.ensure_can_write(redemption.lineage)
    return redemption


def fulfil_redemption(cmd: c.FulfilRedemption, uow: UnitOfWork, ctx: Context) -> Result:
    redemption = _redemption_for_write(uow, ctx, cmd.redemption_id)
    redemption.fulfil(cmd.note)
    return {"redemption_id": str(redemption.id), "status": redemption.status.value}


def cancel_redemption(cmd: c.CancelRedemption, uow: UnitOfWork, ctx: Context) -> Result:
    redemption = _redemption_for_write(uow, ctx, cmd.redemption_id)
    passbook = uow.get(Passbook, redemption.passbook_id)
    reward = uow.get(Reward, redemption.reward_id)
    redemption.cancel(cmd.reason, passbook, reward)
    return {
        "redemption_id": str(redemption.id),
        "status": redemption.status.value,
        "balance": passbook.balance,
        "stock": reward.stock,
    }


Handler = Callable[[Any, UnitOfWork, Context], Result]

HANDLERS: dict[type[c.Command], Handler] = {
    c.OpenUnit: open_unit,
    c.RenameUnit: rename_unit,
    c.CloseUnit: close_unit,
    c.RegisterVolunteer: register_volunteer,
    c.UpdateVolunteerProfile: update_volunteer_profile,
    c.SuspendVolunteer: suspend_volunteer,
    c.ReinstateVolunteer: reinstate_volunteer,
    c.PublishActivity: publish_activity,
    c.SignUp: sign_up,
    c.CancelSignup: cancel_signup,
    c.CheckIn: check_in,
    c.CheckOut: check_out,
    c.ConfirmService: confirm_service,
    c.CancelActivity: cancel_activity,
    c.CloseActivity: close_activity,
    c.AwardPoints: award_points,
    c.AdjustPoints: adjust_points,
    c.ExpirePoints: expire_points,
    c.ListReward: list_reward,
    c.RestockReward: restock_reward,
    c.DelistReward: delist_reward,
    c.Redeem: redeem_reward,
    c.FulfilRedemption: fulfil_redemption,
    c.CancelRedemption: cancel_redemption,
}
