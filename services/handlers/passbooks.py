"""Command handlers for love passbooks."""

from __future__ import annotations

from domain.errors import ConflictError, RuleViolationError
from domain.passbook import AwardKind
from domain.randomness import new_id
from services import commands as c
from services.handlers.base import Context, Handler, Result, passbook_for_write
from services.unit_of_work import UnitOfWork


def award_points(cmd: c.AwardPoints, uow: UnitOfWork, ctx: Context) -> Result:
    passbook = passbook_for_write(uow, ctx, cmd.volunteer_id)
    award_id = cmd.award_id or new_id()
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
    passbook = passbook_for_write(uow, ctx, cmd.volunteer_id)
    adjustment_id = cmd.adjustment_id or new_id()
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
    passbook = passbook_for_write(uow, ctx, cmd.volunteer_id)
    expired = passbook.expire_due(ctx.now)
    if not expired:
        raise ConflictError("no points are due to expire", code="nothing-to-expire")
    return {"volunteer_id": str(cmd.volunteer_id), "expired": expired, "balance": passbook.balance}


HANDLERS: dict[type[c.Command], Handler] = {
    c.AwardPoints: award_points,
    c.AdjustPoints: adjust_points,
    c.ExpirePoints: expire_points,
}
