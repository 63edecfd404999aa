"""Command handlers for volunteers."""

from __future__ import annotations

from uuid import UUID

from domain.errors import ConflictError, RuleViolationError
from domain.passbook import Passbook
from domain.units import PracticeUnit
from domain.volunteers import (
    Volunteer,
    document_digest,
    is_valid_resident_id,
    mask_document_number,
)
from services import commands as c
from services.handlers.base import Context, Handler, Result
from services.unit_of_work import UnitOfWork


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


HANDLERS: dict[type[c.Command], Handler] = {
    c.RegisterVolunteer: register_volunteer,
    c.UpdateVolunteerProfile: update_volunteer_profile,
    c.SuspendVolunteer: suspend_volunteer,
    c.ReinstateVolunteer: reinstate_volunteer,
}
