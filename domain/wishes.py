"""Micro-wishes (微心愿): a resident's small wish — a school bag, a winter coat —
posted by a unit, claimed by a volunteer or a member (党员, a work unit's branch),
fulfilled, and confirmed by the unit.

One claimant at a time: a released or withdrawn claim returns the wish to the
board. The unit's confirmation may award points to a volunteer claimant's
passbook; :func:`confirm_wish` checks every rule before either aggregate changes,
and the confirmation's id is the award's source, so one confirmation means one
award, ever.

The resident is referred to by ``resident_ref``: the unit's own reference (a
household file number, "3栋2单元 小学生"), never a name, phone or identity
number; it stays out of the read models and the audit summary.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, name_id
from domain.errors import ConflictError, RuleViolationError
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryPolicy
from domain.randomness import new_id
from domain.units import PracticeUnit
from domain.volunteers import Volunteer

MAX_WISH_POINTS = 1000


class WishStatus(StrEnum):
    OPEN = "open"  # on the board, waiting for a claimant
    CLAIMED = "claimed"
    FULFILLED = "fulfilled"  # the claimant says it is done; the unit has yet to confirm
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class ClaimantKind(StrEnum):
    VOLUNTEER = "volunteer"  # a registered volunteer: may earn points
    MEMBER = "member"  # a party member or a work unit, by reference (no points)


class Wish(CivicAggregate):
    class Posted(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]
        title: str
        description: str
        resident_ref: str
        points: int

    class Claimed(CivicAggregate.Event):
        claimant_kind: str
        volunteer_id: UUID | None
        claimant_ref: str

    class ClaimReleased(CivicAggregate.Event):
        volunteer_id: UUID | None
        reason: str

    class Fulfilled(CivicAggregate.Event):
        volunteer_id: UUID | None
        note: str

    class Confirmed(CivicAggregate.Event):
        confirmation_id: UUID
        volunteer_id: UUID | None
        points: int
        note: str

    class Cancelled(CivicAggregate.Event):
        reason: str

    class ResidentDataErased(CivicAggregate.Event):
        """The personal data on this wish (the resident's reference, a member
        claimant's reference) was erased. Carries no personal data: the service layer
        then deletes the wish's key, so the sealed references become unreadable."""

        reason: str

    @classmethod
    def post(
        cls,
        *,
        unit: PracticeUnit,
        title: str,
        description: str,
        resident_ref: str,
        points: int = 0,
        wish_id: UUID | None = None,
    ) -> Wish:
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        if not 0 <= points <= MAX_WISH_POINTS:
            raise RuleViolationError(
                f"a wish awards 0 to {MAX_WISH_POINTS} points", code="bad-points"
            )
        if not resident_ref.strip():
            raise RuleViolationError("a wish refers to its resident", code="resident-required")
        return cls._create(
            cls.Posted,
            id=wish_id or new_id(),
            unit_id=unit.id,
            unit_path=unit.lineage,
            title=title,
            description=description,
            resident_ref=resident_ref.strip(),
            points=points,
        )

    @event(Posted)
    def __init__(
        self,
        unit_id: UUID,
        unit_path: list[UUID],
        title: str,
        description: str,
        resident_ref: str,
        points: int,
    ) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.title = title
        self.description = description
        self.resident_ref = resident_ref
        self.points = points
        self.status = WishStatus.OPEN
        self.claimant_kind: ClaimantKind | None = None
        self.volunteer_id: UUID | None = None
        self.claimant_ref = ""
        self.claims = 0
        self.confirmation_id: UUID | None = None
        self.resident_erased = False

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    @property
    def confirmation_id_for(self) -> UUID:
        return name_id("wish-confirmation", self.id)

    # -- claims --------------------------------------------------------------------

    def claim_by_volunteer(self, volunteer: Volunteer) -> None:
        self._ensure_claimable()
        volunteer.ensure_active()
        self._claim(
            claimant_kind=ClaimantKind.VOLUNTEER.value, volunteer_id=volunteer.id, claimant_ref=""
        )

    def claim_by_member(self, claimant_ref: str) -> None:
        self._ensure_claimable()
        self.ensure_personal_data_kept()
        if not claimant_ref.strip():
            raise RuleViolationError("a member claims by a reference", code="claimant-required")
        self._claim(
            claimant_kind=ClaimantKind.MEMBER.value, volunteer_id=None, claimant_ref=claimant_ref
        )

    @event(Claimed)
    def _claim(self, claimant_kind: str, volunteer_id: UUID | None, claimant_ref: str) -> None:
        self.status = WishStatus.CLAIMED
        self.claimant_kind = ClaimantKind(claimant_kind)
        self.volunteer_id = volunteer_id
        self.claimant_ref = claimant_ref
        self.claims += 1

    def release(self, reason: str) -> None:
        """The claimant withdraws, or the unit takes the wish back: it is open again."""
        if self.status != WishStatus.CLAIMED:
            raise ConflictError(f"the wish is {self.status.value}, not claimed", code="not-claimed")
        self._release(volunteer_id=self.volunteer_id, reason=reason)

    @event(ClaimReleased)
    def _release(self, volunteer_id: UUID | None, reason: str) -> None:
        self.status = WishStatus.OPEN
        self.claimant_kind = None
        self.volunteer_id = None
        self.claimant_ref = ""

    # -- fulfilment and confirmation -------------------------------------------------

    def fulfil(self, note: str = "") -> None:
        if self.status != WishStatus.CLAIMED:
            raise ConflictError(
                f"the wish is {self.status.value}; only a claimed wish is fulfilled",
                code="not-claimed",
            )
        self._fulfil(volunteer_id=self.volunteer_id, note=note)

    @event(Fulfilled)
    def _fulfil(self, volunteer_id: UUID | None, note: str) -> None:
        self.status = WishStatus.FULFILLED

    def ensure_confirmable(self) -> None:
        if self.status == WishStatus.CONFIRMED:
            raise ConflictError("the wish was already confirmed", code="already-confirmed")
        if self.status != WishStatus.FULFILLED:
            raise ConflictError(
                f"the wish is {self.status.value}; only a fulfilled wish is confirmed",
                code="not-fulfilled",
            )

    def confirm(self, note: str = "") -> UUID:
        """The unit confirms the fulfilment; returns the confirmation id (the award's source)."""
        self.ensure_confirmable()
        confirmation_id = self.confirmation_id_for
        points = self.points if self.claimant_kind == ClaimantKind.VOLUNTEER else 0
        self._confirm(
            confirmation_id=confirmation_id,
            volunteer_id=self.volunteer_id,
            points=points,
            note=note,
        )
        return confirmation_id

    @event(Confirmed)
    def _confirm(
        self, confirmation_id: UUID, volunteer_id: UUID | None, points: int, note: str
    ) -> None:
        self.status = WishStatus.CONFIRMED
        self.confirmation_id = confirmation_id

    # -- cancellation ----------------------------------------------------------------

    def cancel(self, reason: str) -> None:
        if self.status not in (WishStatus.OPEN, WishStatus.CLAIMED):
            raise ConflictError(
                f"the wish is {self.status.value} and can no longer be cancelled",
                code="wish-not-open",
            )
        self._cancel(reason=reason)

    @event(Cancelled)
    def _cancel(self, reason: str) -> None:
        self.status = WishStatus.CANCELLED

    # -- erasure -------------------------------------------------------------------

    def ensure_personal_data_kept(self) -> None:
        if self.resident_erased:
            raise ConflictError("the personal data on this wish was erased", code="resident-erased")

    def erase_resident_data(self, reason: str) -> None:
        self.ensure_personal_data_kept()
        self._erase_resident_data(reason=reason)

    @event(ResidentDataErased)
    def _erase_resident_data(self, reason: str) -> None:
        self.resident_erased = True

    def _ensure_claimable(self) -> None:
        if self.status == WishStatus.CLAIMED:
            raise ConflictError("the wish is already claimed", code="already-claimed")
        if self.status != WishStatus.OPEN:
            raise ConflictError(f"the wish is {self.status.value}", code="wish-not-open")


def confirm_wish(
    *,
    wish: Wish,
    passbook: Passbook | None,
    now: datetime,
    policy: ExpiryPolicy,
    note: str = "",
) -> tuple[UUID, int, UUID | None]:
    """Confirm a fulfilled wish and award its points to a volunteer claimant's
    passbook: (confirmation id, points awarded, lot id). Every rule is checked
    before either aggregate changes; the caller saves both together."""
    wish.ensure_confirmable()
    awarding = wish.claimant_kind == ClaimantKind.VOLUNTEER and wish.points > 0
    if awarding:
        if passbook is None or passbook.volunteer_id != wish.volunteer_id:
            raise ConflictError("the claimant's passbook is missing", code="no-passbook")
        if passbook.has_award_for(wish.confirmation_id_for):
            raise ConflictError("points were already awarded for this", code="already-awarded")
    confirmation_id = wish.confirm(note)
    if not awarding or passbook is None:
        return confirmation_id, 0, None
    lot_id = passbook.award(
        points=wish.points,
        kind=AwardKind.WISH,
        source_id=confirmation_id,
        reason=f"micro-wish: {wish.title}",
        now=now,
        policy=policy,
    )
    return confirmation_id, wish.points, lot_id
