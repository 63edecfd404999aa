"""The community charity fund (社区慈善基金): one per practice unit.

Money comes in (donations, charity sales of residents' handicrafts, grants) and
goes out (meal subsidies for low-income elderly, hardship relief...). Every
movement is an event with its amount in fen (分, an integer: never a float), its
source kind or purpose, and who approved it. The balance never goes negative: a
disbursement larger than the balance is refused with ``insufficient-funds``.

Approval rule: the key that records a movement is its *recorder* (the event's
``actor``); a disbursement also names its *approver* (``approved_by``, e.g. the
community committee's director who signed the payment slip), which is required
and must not be the recorder's own key id. Receipts may name an approver too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, current_actor, name_id
from domain.errors import ConflictError, NotFoundError, RuleViolationError
from domain.units import PracticeUnit

MAX_MOVEMENT_FEN = 10_000_000_000  # 1 亿元 in one movement: anything larger is a typo


class SourceKind(StrEnum):
    DONATION = "donation"  # 捐赠
    CHARITY_SALE = "charity_sale"  # 义卖 (e.g. handicrafts made by residents)
    GRANT = "grant"  # 上级拨款 / 专项资金
    OTHER = "other"


class PurposeKind(StrEnum):
    MEAL_SUBSIDY = "meal_subsidy"  # 助餐补贴 (e.g. low-income elderly)
    HARDSHIP_RELIEF = "hardship_relief"  # 困难帮扶
    ACTIVITY_COSTS = "activity_costs"  # 活动经费
    OTHER = "other"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


@dataclass(frozen=True)
class Movement:
    movement_id: UUID
    direction: Direction
    amount_fen: int
    kind: str  # a SourceKind for money in, a PurposeKind for money out
    purpose: str
    approved_by: str
    balance_after_fen: int


def check_amount(amount_fen: int) -> None:
    """Amounts are positive integers of fen (``bool`` and ``float`` refused)."""
    if type(amount_fen) is not int:
        raise RuleViolationError("amounts are whole numbers of fen", code="bad-amount")
    if not 0 < amount_fen <= MAX_MOVEMENT_FEN:
        raise RuleViolationError(
            f"an amount is between 1 and {MAX_MOVEMENT_FEN} fen", code="bad-amount"
        )


class Fund(CivicAggregate):
    class Opened(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]
        title: str

    class MoneyReceived(CivicAggregate.Event):
        movement_id: UUID
        amount_fen: int
        source_kind: str
        purpose: str
        donor: str  # who gave it, as the unit records it (kept out of the audit summary)
        approved_by: str
        balance_after_fen: int

    class MoneyDisbursed(CivicAggregate.Event):
        movement_id: UUID
        amount_fen: int
        purpose_kind: str
        purpose: str
        beneficiaries: int  # how many people it served (no names)
        approved_by: str
        balance_after_fen: int

    class DonorDataErased(CivicAggregate.Event):
        """The donor's name on one receipt was erased (right to erasure). Carries no
        personal data: the service layer then deletes the movement's key, so the
        sealed name becomes unreadable; the amount and the balances stay."""

        movement_id: UUID
        reason: str

    @staticmethod
    def create_id(unit_id: UUID) -> UUID:
        return name_id("fund", unit_id)

    @classmethod
    def open_at(cls, *, unit: PracticeUnit, title: str) -> Fund:
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        return cls._create(
            cls.Opened,
            id=cls.create_id(unit.id),
            unit_id=unit.id,
            unit_path=unit.lineage,
            title=title,
        )

    @event(Opened)
    def __init__(self, unit_id: UUID, unit_path: list[UUID], title: str) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.title = title
        self.balance_fen = 0
        self.total_in_fen = 0
        self.total_out_fen = 0
        self.movements: list[Movement] = []
        self.movement_ids: set[UUID] = set()
        self.donor_named: set[UUID] = set()  # receipts that recorded a donor's name
        self.donor_erased: set[UUID] = set()

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    # -- money in ----------------------------------------------------------------

    def receive(
        self,
        *,
        movement_id: UUID,
        amount_fen: int,
        source_kind: SourceKind,
        purpose: str,
        donor: str = "",
        approved_by: str = "",
    ) -> None:
        check_amount(amount_fen)
        self._ensure_new(movement_id)
        self._receive(
            movement_id=movement_id,
            amount_fen=amount_fen,
            source_kind=source_kind.value,
            purpose=purpose,
            donor=donor,
            approved_by=approved_by,
            balance_after_fen=self.balance_fen + amount_fen,
        )

    @event(MoneyReceived)
    def _receive(
        self,
        movement_id: UUID,
        amount_fen: int,
        source_kind: str,
        purpose: str,
        donor: str,
        approved_by: str,
        balance_after_fen: int,
    ) -> None:
        self.balance_fen = balance_after_fen
        self.total_in_fen += amount_fen
        if donor:
            self.donor_named.add(movement_id)
        self._record(movement_id, Direction.IN, amount_fen, source_kind, purpose, approved_by)

    # -- money out ---------------------------------------------------------------

    def disburse(
        self,
        *,
        movement_id: UUID,
        amount_fen: int,
        purpose_kind: PurposeKind,
        purpose: str,
        approved_by: str,
        beneficiaries: int = 0,
    ) -> None:
        check_amount(amount_fen)
        self._ensure_new(movement_id)
        approver = approved_by.strip()
        if not approver:
            raise RuleViolationError("a disbursement names its approver", code="approver-required")
        if approver == current_actor():
            raise RuleViolationError(
                "the approver cannot be the key that records the disbursement",
                code="approver-is-recorder",
            )
        if beneficiaries < 0:
            raise RuleViolationError("beneficiaries cannot be negative", code="bad-count")
        if amount_fen > self.balance_fen:
            raise ConflictError(
                f"the fund holds {self.balance_fen} fen, {amount_fen} requested",
                code="insufficient-funds",
            )
        self._disburse(
            movement_id=movement_id,
            amount_fen=amount_fen,
            purpose_kind=purpose_kind.value,
            purpose=purpose,
            beneficiaries=beneficiaries,
            approved_by=approver,
            balance_after_fen=self.balance_fen - amount_fen,
        )

    @event(MoneyDisbursed)
    def _disburse(
        self,
        movement_id: UUID,
        amount_fen: int,
        purpose_kind: str,
        purpose: str,
        beneficiaries: int,
        approved_by: str,
        balance_after_fen: int,
    ) -> None:
        self.balance_fen = balance_after_fen
        self.total_out_fen += amount_fen
        self._record(movement_id, Direction.OUT, amount_fen, purpose_kind, purpose, approved_by)

    # -- erasure -----------------------------------------------------------------

    def erase_donor(self, movement_id: UUID, reason: str) -> None:
        """Erase the donor's name on one receipt: the fact is recorded here, the key
        is deleted by the service layer."""
        if movement_id not in self.movement_ids:
            raise NotFoundError(
                f"movement {movement_id} is not in this fund", code="movement-not-found"
            )
        if movement_id in self.donor_erased:
            raise ConflictError("this donor's name was already erased", code="donor-erased")
        if movement_id not in self.donor_named:
            raise ConflictError("this movement names no donor", code="no-donor")
        self._erase_donor(movement_id=movement_id, reason=reason)

    @event(DonorDataErased)
    def _erase_donor(self, movement_id: UUID, reason: str) -> None:
        self.donor_erased.add(movement_id)

    # -- helpers -----------------------------------------------------------------

    def _ensure_new(self, movement_id: UUID) -> None:
        if movement_id in self.movement_ids:
            raise ConflictError("this movement was already recorded", code="movement-exists")

    def _record(
        self,
        movement_id: UUID,
        direction: Direction,
        amount_fen: int,
        kind: str,
        purpose: str,
        approved_by: str,
    ) -> None:
        self.movement_ids.add(movement_id)
        self.movements.append(
            Movement(
                movement_id=movement_id,
                direction=direction,
                amount_fen=amount_fen,
                kind=kind,
                purpose=purpose,
                approved_by=approved_by,
                balance_after_fen=self.balance_fen,
            )
        )
