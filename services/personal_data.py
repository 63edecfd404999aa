"""Residents' personal data on orders, wishes and fund movements, sealed in the vault.

Volunteers have a key each (``services/handlers/volunteers.py``). A resident has no
record of their own: a resident's reference (``resident_ref``) is the ordering app's
or the unit's own label and is not a verified identity, staff-entered orders often
have none, and the same person may appear under different references. So the
vault subject is the record that holds the data: the order, the wish, or the fund
movement (its aggregate or movement id). Erasing a resident's data on an order or
a wish deletes that record's key; a resident who asks to be erased everywhere has
each of their orders and wishes erased. Sealed references are not comparable across
records (each seal is randomised), so no read model can link a resident's orders.

Values are sealed here, in the service layer, before the domain sees them; they are
opened only where they are shown (one order, one wish), as ``[erased]`` afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.errors import ConflictError
from domain.funds import Fund
from domain.orders import ServiceOrder
from domain.volunteers import Volunteer
from domain.wishes import Wish
from infra.vault import ERASED, PersonalDataVault, SubjectErasedError, is_token

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, Mapper

# vault field names (they are part of each token's associated data)
RESIDENT_REF: Final = "resident_ref"
RESIDENT_NAME: Final = "resident_name"
RESIDENT_PHONE: Final = "resident_phone"
ADDRESS: Final = "address"
CLAIMANT_REF: Final = "claimant_ref"
DONOR: Final = "donor"


def seal(vault: PersonalDataVault, subject: UUID, field: str, value: str | None) -> str | None:
    """The token for ``value`` (None and blank values pass unchanged, so the domain's
    own "required" checks still see them)."""
    if value is None or not value.strip():
        return value
    try:
        return vault.seal(subject, field, value)
    except SubjectErasedError as exc:  # an erasure whose fact was not recorded
        raise ConflictError(
            "the personal data of this record was erased", code="resident-erased"
        ) from exc


def reveal(
    vault: PersonalDataVault, subject: UUID, field: str, value: str | None, *, erased: bool
) -> str | None:
    """For display: the plaintext, or ``[erased]``. A value recorded in clear before
    sealing was introduced is shown as stored until the record is erased."""
    if value is None or value == "":
        return value
    if erased:
        return ERASED
    if not is_token(value):
        return value
    return vault.reveal(subject, field, value)


def matches(vault: PersonalDataVault, subject: UUID, field: str, token: str, value: str) -> bool:
    """Whether a sealed value is ``value`` (seals are randomised: compare plaintexts)."""
    opened = vault.open(subject, field, token) if is_token(token) else token
    return opened is not None and opened == value


# the facts of erasure; each names the vault subject whose key was deleted
ERASURES: Final = (
    Volunteer.Erased,
    ServiceOrder.ResidentDataErased,
    Wish.ResidentDataErased,
    Fund.DonorDataErased,
)


def vault_subject(event: Any) -> UUID:
    """The subject an event's personal data is sealed under, or its erasure names:
    the fund movement for a fund's events (a donor's name), else the aggregate (the
    volunteer, the order, the wish)."""
    movement_id = getattr(event, "movement_id", None)
    return movement_id if isinstance(movement_id, UUID) else UUID(str(event.originator_id))


def shred_erased(
    recorder: ApplicationRecorder,
    mapper: Mapper[UUID],
    vault: PersonalDataVault,
    page: int = 1000,
) -> int:
    """Delete the key of every subject the store records as erased that the vault
    still holds (after restoring a vault backup older than an erasure, say); run at
    start-up. Erasures are facts in the store, so they win over any vault copy.
    Returns how many keys it deleted."""
    topics = [get_topic(cls) for cls in ERASURES]
    start, shredded = 1, 0
    while True:
        notifications = recorder.select_notifications(start=start, limit=page, topics=topics)
        for n in notifications:
            subject = vault_subject(mapper.to_domain_event(n))
            if not vault.is_erased(subject) and vault.shred(subject):
                shredded += 1
        if len(notifications) < page:
            return shredded
        start = notifications[-1].id + 1
