"""Volunteers (志愿者): one person, one volunteer.

The volunteer's id is derived from a keyed hash (HMAC) of the identity-document
number, so a second registration of the same person lands on the same aggregate
id and is refused, while the raw number never appears in an event.

Personal data (name, phone, masked document number) reaches the aggregate already
sealed by the service layer (``infra/vault.py``): the domain holds opaque tokens and
never needs the plaintext. Erasure (:meth:`Volunteer.erase`) is a fact like any
other; the service layer then deletes the volunteer's key, which makes every token
unreadable. A person whose record was erased may register again: the next
registration takes the next *generation* of the id (a new volunteer, a new
passbook), so the erased history stays with its pseudonymous id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, name_id
from domain.errors import ConflictError, RuleViolationError
from domain.units import PracticeUnit, UnitTier


class VolunteerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ERASED = "erased"


MAX_GENERATIONS = 16  # registrations of one person, counting those later erased

_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def normalise_document_number(number: str) -> str:
    return number.strip().upper().replace(" ", "")


def is_valid_resident_id(number: str) -> bool:
    """GB 11643 resident identity number: 18 characters with an ISO 7064 check digit."""
    n = normalise_document_number(number)
    if not _RESIDENT_ID.match(n):
        return False
    total = sum(int(d) * w for d, w in zip(n[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == n[17]


def document_digest(secret: bytes, number: str) -> str:
    """Keyed hash of an identity-document number (never store the number itself)."""
    n = normalise_document_number(number)
    return hmac.new(secret, n.encode(), hashlib.sha256).hexdigest()


def mask_document_number(number: str) -> str:
    n = normalise_document_number(number)
    return n[:3] + "*" * max(len(n) - 7, 0) + n[-4:] if len(n) > 7 else "*" * len(n)


class Volunteer(CivicAggregate):
    class Registered(CivicAggregate.Created):
        home_station_id: UUID
        home_path: list[UUID]
        name: str
        phone: str
        document_masked: str

    class ProfileUpdated(CivicAggregate.Event):
        name: str
        phone: str
        reason: str

    class Suspended(CivicAggregate.Event):
        reason: str

    class Reinstated(CivicAggregate.Event):
        reason: str

    class Erased(CivicAggregate.Event):
        """The volunteer's personal data was erased (right to erasure). Carries no
        personal data itself; the points and service history stay."""

        reason: str

    @staticmethod
    def create_id(document_digest: str, generation: int = 0) -> UUID:
        if generation == 0:
            return name_id("volunteer", document_digest)
        return name_id("volunteer", document_digest, generation)

    @classmethod
    def register(
        cls,
        *,
        document_digest: str,
        document_masked: str,
        home_station: PracticeUnit,
        name: str,
        phone: str,
        generation: int = 0,
    ) -> Volunteer:
        if home_station.tier != UnitTier.STATION:
            raise RuleViolationError(
                "volunteers register at a station", code="home-must-be-station"
            )
        if home_station.closed:
            raise ConflictError("the station is closed", code="unit-closed")
        return cls._create(
            cls.Registered,
            id=cls.create_id(document_digest, generation),
            home_station_id=home_station.id,
            home_path=home_station.lineage,
            name=name,
            phone=phone,
            document_masked=document_masked,
        )

    @event(Registered)
    def __init__(
        self,
        home_station_id: UUID,
        home_path: list[UUID],
        name: str,
        phone: str,
        document_masked: str,
    ) -> None:
        self.home_station_id = home_station_id
        self.home_path = list(home_path)
        self.name = name
        self.phone = phone
        self.document_masked = document_masked
        self.status = VolunteerStatus.ACTIVE

    @property
    def is_active(self) -> bool:
        return self.status == VolunteerStatus.ACTIVE

    @property
    def is_erased(self) -> bool:
        return self.status == VolunteerStatus.ERASED

    def ensure_not_erased(self) -> None:
        if self.is_erased:
            raise ConflictError("the volunteer's record was erased", code="volunteer-erased")

    def ensure_active(self) -> None:
        self.ensure_not_erased()
        if not self.is_active:
            raise ConflictError("the volunteer is suspended", code="volunteer-suspended")

    def update_profile(self, *, name: str | None, phone: str | None, reason: str) -> None:
        self.ensure_not_erased()
        new_name = name if name is not None else self.name
        new_phone = phone if phone is not None else self.phone
        if (new_name, new_phone) == (self.name, self.phone):
            raise ConflictError("nothing to change", code="unchanged")
        self._update_profile(name=new_name, phone=new_phone, reason=reason)

    @event(ProfileUpdated)
    def _update_profile(self, name: str, phone: str, reason: str) -> None:
        self.name = name
        self.phone = phone

    def suspend(self, reason: str) -> None:
        self.ensure_not_erased()
        if self.status == VolunteerStatus.SUSPENDED:
            raise ConflictError("the volunteer is already suspended", code="already-suspended")
        self._suspend(reason=reason)

    @event(Suspended)
    def _suspend(self, reason: str) -> None:
        self.status = VolunteerStatus.SUSPENDED

    def reinstate(self, reason: str) -> None:
        self.ensure_not_erased()
        if self.status == VolunteerStatus.ACTIVE:
            raise ConflictError("the volunteer is not suspended", code="not-suspended")
        self._reinstate(reason=reason)

    @event(Reinstated)
    def _reinstate(self, reason: str) -> None:
        self.status = VolunteerStatus.ACTIVE

    def erase(self, reason: str) -> None:
        self.ensure_not_erased()
        self._erase(reason=reason)

    @event(Erased)
    def _erase(self, reason: str) -> None:
        self.status = VolunteerStatus.ERASED
        self.name = ""
        self.phone = ""
        self.document_masked = ""
