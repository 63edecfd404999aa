"""Random sequences of awards, redemptions, cancellations, deductions, restocks and
the passing of time on one passbook and one reward keep every invariant
(hypothesis stateful): the balance is never negative and always equals what was
awarded less what was spent; points leave first-in first-out and every point spent
traces to a lot; stock never falls below zero; cancelling a redemption restores
exactly the points (to the very lots) and the stock it took.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule

from domain.errors import DomainError
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryKind, ExpiryPolicy
from domain.redemptions import Redemption, redeem
from domain.rewards import Reward
from tests.unit import domain_builders as build
from tests.unit.property_settings import PROPERTY_SETTINGS


class PassbookMachine(RuleBasedStateMachine):
    redemptions = Bundle("redemptions")

    @initialize(
        cost=st.integers(min_value=1, max_value=30),
        stock=st.integers(min_value=0, max_value=4),
        expiry_days=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
    )
    def open(self, cost: int, stock: int, expiry_days: int | None) -> None:
        _, _, station = build.network()
        self.volunteer = build.volunteer(station)
        self.passbook = Passbook.open_for(self.volunteer.id, self.volunteer.home_path)
        self.reward = Reward.list_at(
            unit=station, name="大米", description="", cost_points=cost, stock=stock
        )
        self.policy = (
            ExpiryPolicy()
            if expiry_days is None
            else ExpiryPolicy(kind=ExpiryKind.DAYS, days=expiry_days)
        )
        self.now = build.T0
        # the model
        self.awarded = 0
        self.stock_in = stock  # initial stock plus restocks
        self.open_redemptions: dict[UUID, tuple[int, int]] = {}  # id -> (points, quantity)

    # -- commands --------------------------------------------------------------------

    @rule(points=st.integers(min_value=0, max_value=100))
    def award(self, points: int) -> None:
        self.passbook.award(points=points, kind=AwardKind.MANUAL, source_id=uuid4(),
                            reason="评比", now=self.now, policy=self.policy)  # fmt: skip
        self.awarded += points

    @rule(target=redemptions, quantity=st.integers(min_value=1, max_value=3))
    def redeem(self, quantity: int) -> UUID | None:
        before = {lot.lot_id: lot.remaining for lot in self.passbook.lots.values()}
        open_before = [
            lot.lot_id
            for lot in self.passbook.open_lots()
            if lot.expires_at is None or lot.expires_at > self.now
        ]
        try:
            redemption = redeem(redemption_id=uuid4(), volunteer=self.volunteer,
                                passbook=self.passbook, reward=self.reward,
                                quantity=quantity, now=self.now)  # fmt: skip
        except DomainError as exc:
            assert exc.code in {"out-of-stock", "insufficient-points"}, exc.code
            return None
        points = self.reward.cost_points * quantity
        spent = redemption.spent
        assert sum(p for _, p in spent) == points
        # first in, first out: a prefix of the open lots, oldest first, all but the
        # last drained completely
        assert [lot_id for lot_id, _ in spent] == open_before[: len(spent)]
        for lot_id, taken in spent[:-1]:
            assert taken == before[lot_id]
        self.open_redemptions[redemption.id] = (points, quantity)
        self.redemption_objects[redemption.id] = redemption
        return redemption.id

    @rule(redemption_id=consumes(redemptions))
    def cancel(self, redemption_id: UUID | None) -> None:
        if redemption_id is None or redemption_id not in self.open_redemptions:
            return
        redemption = self.redemption_objects[redemption_id]
        lots_before = {lot.lot_id: lot.remaining for lot in self.passbook.lots.values()}
        balance, stock = self.passbook.balance, self.reward.stock
        redemption.cancel("不要了", self.passbook, self.reward)
        points, quantity = self.open_redemptions.pop(redemption_id)
        assert self.passbook.balance == balance + points
        assert self.reward.stock == stock + quantity
        restored = dict.fromkeys(lots_before, 0)
        for lot_id, taken in redemption.spent:
            restored[lot_id] += taken
        for lot in self.passbook.lots.values():  # back to the very lots it came from
            assert lot.remaining == lots_before[lot.lot_id] + restored[lot.lot_id]

    @rule(redemption_id=redemptions)
    def fulfil(self, redemption_id: UUID | None) -> None:
        if redemption_id is None or redemption_id not in self.open_redemptions:
            return
        self.redemption_objects[redemption_id].fulfil()
        del self.open_redemptions[redemption_id]  # for good: it can no longer be cancelled

    @rule(redemption_id=redemptions)
    def cancel_twice(self, redemption_id: UUID | None) -> None:
        """A closed redemption cannot be cancelled (no double refund)."""
        if redemption_id is None or redemption_id in self.open_redemptions:
            return
        redemption = self.redemption_objects[redemption_id]
        balance = self.passbook.balance
        try:
            redemption.cancel("again", self.passbook, self.reward)
        except DomainError as exc:
            assert exc.code == "not-open"
        else:
            raise AssertionError("a closed redemption was cancelled")
        assert self.passbook.balance == balance

    @rule(points=st.integers(min_value=1, max_value=150))
    def deduct(self, points: int) -> None:
        try:
            self.passbook.deduct(points=points, reason="更正", adjustment_id=uuid4(), now=self.now)
        except DomainError as exc:
            assert exc.code == "insufficient-points"

    @rule(quantity=st.integers(min_value=1, max_value=3))
    def restock(self, quantity: int) -> None:
        self.reward.restock(quantity, "补货")
        self.stock_in += quantity

    @rule(days=st.integers(min_value=1, max_value=90))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)

    @rule()
    def expire(self) -> None:
        self.passbook.expire_due(self.now)

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def the_balance_is_never_negative(self) -> None:
        assert self.passbook.balance >= 0
        for lot in self.passbook.lots.values():
            assert 0 <= lot.remaining <= lot.points

    @invariant()
    def every_point_is_traced_to_a_lot(self) -> None:
        lots = self.passbook.lots.values()
        assert sum(lot.points for lot in lots) == self.awarded
        # what left the lots is exactly what open or fulfilled redemptions, deductions
        # and expiries took: the balance is the sum of what remains in the lots
        assert self.passbook.balance == sum(lot.remaining for lot in lots)
        assert self.passbook.balance <= self.awarded

    @invariant()
    def stock_is_never_negative_and_accounts_for_every_redemption(self) -> None:
        assert self.reward.stock >= 0
        out = sum(q for r in self.redemption_objects.values() if r.id not in self._cancelled()
                  for q in [r.quantity])  # fmt: skip
        assert self.reward.stock == self.stock_in - out

    def _cancelled(self) -> set[UUID]:
        return {rid for rid, r in self.redemption_objects.items() if r.status.value == "cancelled"}

    def __init__(self) -> None:
        super().__init__()
        self.redemption_objects: dict[UUID, Redemption] = {}


PassbookMachine.TestCase.settings = PROPERTY_SETTINGS
TestPassbookProperties = PassbookMachine.TestCase
