"""Commands on volunteers."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from services.commands.base import Command, Phone, Reason, Text


class RegisterVolunteer(Command):
    type: Literal["register_volunteer"] = "register_volunteer"
    home_station_id: UUID
    name: Text
    phone: Phone
    id_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=6, max_length=32)
    ] = Field(description="resident identity number (18 characters, checked) — never stored")


class UpdateVolunteerProfile(Command):
    type: Literal["update_volunteer_profile"] = "update_volunteer_profile"
    volunteer_id: UUID
    name: Text | None = None
    phone: Phone | None = None
    reason: Reason


class SuspendVolunteer(Command):
    type: Literal["suspend_volunteer"] = "suspend_volunteer"
    volunteer_id: UUID
    reason: Reason


class ReinstateVolunteer(Command):
    type: Literal["reinstate_volunteer"] = "reinstate_volunteer"
    volunteer_id: UUID
    reason: Reason


class EraseVolunteer(Command):
    """Right to erasure (PIPL art. 47, GDPR art. 17): the volunteer's personal data
    becomes unreadable everywhere; points, service and the audit trail stay. Not a
    batch item: erasure is one deliberate act."""

    type: Literal["erase_volunteer"] = "erase_volunteer"
    volunteer_id: UUID
    reason: Reason
