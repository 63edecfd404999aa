"""Command handlers for volunteers.

Personal data is sealed here, with the volunteer's own key from the vault
(``infra/vault.py``), before it reaches the domain: events, the Kafka topic and the
read models carry only tokens. Erasure records the fact, then deletes the key.
"""

from __future__ import annotations

from uuid import UUID

from domain.errors import ConflictError, RuleViolationError
from domain.passbook import Passbook
from domain.units import PracticeUnit
from domain.volunteers import (
    MAX_GENERATIONS,
    Volunteer,
    document_digest,
    is_valid_resident_id,
    mask_document_number,
)
from infra.vault import SubjectErasedError
from services import commands as c
from services.handlers.base import Context, Handler, Result
from services.unit_of_work import UnitOfWork

# the personal fields of a volunteer, as sealed in the vault (field name = AAD)
NAME, PHONE, DOCUMENT = "name", "phone", "document_masked"


def _free_generation(uow: UnitOfWork, digest: str) -> int:
    """The first id generation of this person not yet taken; an active (not erased)
    registration is a conflict."""
    for generation in range(MAX_GENERATIONS):
        existing = uow.find(Volunteer, Volunteer.create_id(digest, generation))
        if existing is None:
            return generation
        if not existing.is_erased:
            raise ConflictError(
                "a volunteer with this identity number is already registered",
                code="already-registered",
            )
    raise ConflictError(
        "this person has been registered and erased too many times",
        code="too-many-registrations",
    )


def register_volunteer(cmd: c.RegisterVolunteer, uow: UnitOfWork, ctx: Context) -> Result:
    station = uow.get(PracticeUnit, cmd.home_station_id)
    ctx.principal.ensure_can_write(station.lineage)
    if not is_valid_resident_id(cmd.id_number):
        raise RuleViolationError("not a valid resident identity number", code="invalid-id-number")
    digest = document_digest(ctx.document_secret, cmd.id_number)
    generation = _free_generation(uow, digest)
    volunteer_id = Volunteer.create_id(digest, generation)
    try:
        name = ctx.vault.seal(volunteer_id, NAME, cmd.name)
        phone = ctx.vault.seal(volunteer_id, PHONE, cmd.phone)
        masked = ctx.vault.seal(volunteer_id, DOCUMENT, mask_document_number(cmd.id_number))
    except SubjectErasedError as exc:  # an erasure whose fact was not recorded
        raise ConflictError("this registration was erased", code="volunteer-erased") from exc
    volunteer = Volunteer.register(
        document_digest=digest,
        document_masked=masked,
        home_station=station,
        name=name,
        phone=phone,
        generation=generation,
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
    volunteer.ensure_not_erased()  # before sealing: an erased volunteer has no key
    vault = ctx.vault
    # compare plaintexts (two seals of one value differ); seal only what changes
    name = cmd.name
    if name is not None and name == vault.open(volunteer.id, NAME, volunteer.name):
        name = None
    phone = cmd.phone
    if phone is not None and phone == vault.open(volunteer.id, PHONE, volunteer.phone):
        phone = None
    if name is None and phone is None:
        raise ConflictError("nothing to change", code="unchanged")
    volunteer.update_profile(
        name=None if name is None else vault.seal(volunteer.id, NAME, name),
        phone=None if phone is None else vault.seal(volunteer.id, PHONE, phone),
        reason=cmd.reason,
    )
    return {"volunteer_id": str(volunteer.id)}


def suspend_volunteer(cmd: c.SuspendVolunteer, uow: UnitOfWork, ctx: Context) -> Result:
    volunteer = _volunteer_for_write(uow, ctx, cmd.volunteer_id)
    volunteer.suspend(cmd.reason)
    return {"volunteer_id": str(volunteer.id), "status": volunteer.status.value}


def reinstate_volunteer(cmd: c.ReinstateVolunteer, uow: UnitOfWork, ctx: Context) -> Result:
    volunteer = _volunteer_for_write(uow, ctx, cmd.volunteer_id)
    volunteer.reinstate(cmd.reason)
    return {"volunteer_id": str(volunteer.id), "status": volunteer.status.value}


def erase_volunteer(cmd: c.EraseVolunteer, uow: UnitOfWork, ctx: Context) -> Result:
    """Admins only. The key is deleted once the domain has accepted the erasure and
    before the fact is committed: should the commit then fail, the data is already
    unreadable (the safe side) and a retry records the fact."""
    ctx.principal.ensure_admin()
    volunteer = uow.get(Volunteer, cmd.volunteer_id)
    volunteer.erase(cmd.reason)
    ctx.vault.shred(volunteer.id)
    return {"volunteer_id": str(volunteer.id), "status": volunteer.status.value}


HANDLERS: dict[type[c.Command], Handler] = {
    c.RegisterVolunteer: register_volunteer,
    c.UpdateVolunteerProfile: update_volunteer_profile,
    c.SuspendVolunteer: suspend_volunteer,
    c.ReinstateVolunteer: reinstate_volunteer,
    c.EraseVolunteer: erase_volunteer,
}
