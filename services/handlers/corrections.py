"""Command handlers for corrections of service records.

Anyone who may write for the activity's unit or for the volunteer's home station
(a station app acting for the volunteer, a unit admin) may ask; only an admin, or
a unit admin of the activity's subtree, decides. Approval records the request's
decision, the activity's ``ServiceCorrected`` and the passbook's points
difference in one transaction.
"""

from __future__ import annotations

from uuid import UUID

from domain.activities import Activity
from domain.base import name_id
from domain.corrections import ServiceCorrectionRequest
from domain.passbook import AwardKind, Passbook
from services import commands as c
from services.handlers.base import Context, Handler, Result, ensure_new_id
from services.principals import ForbiddenError, Role
from services.unit_of_work import UnitOfWork


def _result(request: ServiceCorrectionRequest, **extra: object) -> Result:
    return {
        "correction_id": str(request.id),
        "activity_id": str(request.activity_id),
        "volunteer_id": str(request.volunteer_id),
        "status": request.status.value,
        **extra,
    }


def request_correction(cmd: c.RequestServiceCorrection, uow: UnitOfWork, ctx: Context) -> Result:
    activity = uow.get(Activity, cmd.activity_id)
    passbook = uow.get(Passbook, Passbook.create_id(cmd.volunteer_id))
    try:
        ctx.principal.ensure_can_write(activity.lineage)
    except ForbiddenError:
        ctx.principal.ensure_can_write(passbook.home_path)
    ensure_new_id(uow, cmd.correction_id, "a correction", "correction-exists")
    request = ServiceCorrectionRequest.request(
        activity=activity,
        volunteer_id=cmd.volunteer_id,
        minutes=c.minutes(cmd.hours) or 0,
        reason=cmd.reason,
        correction_id=cmd.correction_id,
    )
    uow.add(request)
    return _result(
        request,
        recorded_minutes=request.recorded_minutes,
        requested_minutes=request.requested_minutes,
    )


def _request_for_decision(
    uow: UnitOfWork, ctx: Context, correction_id: UUID
) -> ServiceCorrectionRequest:
    request = uow.get(ServiceCorrectionRequest, correction_id)
    if ctx.principal.role not in (Role.ADMIN, Role.UNIT_ADMIN):
        raise ForbiddenError("only an admin or a unit admin may decide on a correction")
    ctx.principal.ensure_can_write(request.lineage)
    return request


def approve_correction(cmd: c.ApproveServiceCorrection, uow: UnitOfWork, ctx: Context) -> Result:
    request = _request_for_decision(uow, ctx, cmd.correction_id)
    activity = uow.get(Activity, request.activity_id)
    passbook = uow.get(Passbook, Passbook.create_id(request.volunteer_id))
    new = request.requested_minutes
    old = activity.check_correction(request.volunteer_id, new)
    # the period the service counts in: when it was confirmed (its award's time)
    lot = passbook.lots.get(name_id("lot", passbook.id, request.confirmation_id))
    service_at = lot.awarded_at if lot is not None else activity.starts_at

    def points(minutes: int) -> int:
        record = activity.service_record(request.volunteer_id, minutes)
        return ctx.points_rule.points_for(
            minutes=minutes,
            points_per_hour=record.points_per_hour,
            source=record.source,
            category=record.category,
        )

    delta = points(new) - points(old)
    reason = f"correction of service at {activity.title}: {request.reason}"
    request.approve(old_minutes=old, points_delta=delta, note=cmd.note)
    activity.correct_service(
        request.volunteer_id,
        minutes=new,
        correction_id=request.id,
        service_at=service_at,
        reason=request.reason,
        approved_by=ctx.principal.actor,
    )
    if delta > 0:
        passbook.award(
            points=delta,
            kind=AwardKind.CORRECTION,
            source_id=request.id,
            reason=reason,
            now=service_at,  # back-dated: the award belongs to the service's period
            policy=ctx.expiry_policy,
            activity_id=activity.id,
            minutes=new - old,
        )
    elif delta < 0:
        passbook.debit_correction(
            points=-delta,
            correction_id=request.id,
            activity_id=activity.id,
            minutes=new - old,
            service_at=service_at,
            reason=reason,
            now=ctx.now,
        )
    return _result(
        request,
        old_minutes=old,
        new_minutes=new,
        points_delta=delta,
        service_at=service_at.isoformat(),
        balance=passbook.balance,
    )


def reject_correction(cmd: c.RejectServiceCorrection, uow: UnitOfWork, ctx: Context) -> Result:
    request = _request_for_decision(uow, ctx, cmd.correction_id)
    request.reject(cmd.reason)
    return _result(request, reason=cmd.reason)


HANDLERS: dict[type[c.Command], Handler] = {
    c.RequestServiceCorrection: request_correction,
    c.ApproveServiceCorrection: approve_correction,
    c.RejectServiceCorrection: reject_correction,
}
