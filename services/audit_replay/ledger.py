"""An independent fold of the history for the replay check's invariants.

Balances are kept from the lots each event names (``spent``, ``restored``,
``expired``), totals from the events' ``points`` figures, stock from the reward
events: the check then holds these against each other and against the served
unit metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from eventsourcing.utils import get_topic

from domain.passbook import Passbook
from domain.rewards import Reward
from domain.units import PracticeUnit
from projections.envelope import EventEnvelope

_T: Final = {
    "awarded": Passbook.PointsAwarded,
    "deducted": Passbook.PointsDeducted,
    "corrected": Passbook.CorrectionDebited,
    "redeemed": Passbook.PointsRedeemed,
    "refunded": Passbook.RedemptionRefunded,
    "expired": Passbook.PointsExpired,
    "passbook": Passbook.Opened,
    "unit": PracticeUnit.Opened,
    "listed": Reward.Listed,
    "restocked": Reward.Restocked,
    "reserved": Reward.StockReserved,
    "released": Reward.StockReleased,
}


TOPICS: Final = {get_topic(cls): name for name, cls in _T.items()}


@dataclass
class StockDip:
    reward_id: str
    position: int
    stock: int


@dataclass
class Ledger:
    # passbook id -> home lineage (center first)
    homes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # passbook id -> points left in its lots, from the lots each event names
    balances: dict[str, int] = field(default_factory=dict)
    negative_balances: list[tuple[str, int, int]] = field(default_factory=list)
    # unit id -> parent id (None for a center)
    parents: dict[str, str | None] = field(default_factory=dict)
    stock: dict[str, int] = field(default_factory=dict)
    stock_dips: list[StockDip] = field(default_factory=list)
    totals: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("awarded", "deducted", "redeemed", "expired"), 0)
    )
    events: int = 0

    def fold(self, envelopes: Iterable[EventEnvelope]) -> None:
        for envelope in envelopes:
            self.events += 1
            kind = TOPICS.get(envelope.type)
            if kind is not None:
                self._apply(kind, envelope)

    def _lots(self, passbook: str, lots: Any, sign: int, position: int) -> None:
        moved = sum(int(points) for _, points in lots)
        balance = self.balances.get(passbook, 0) + sign * moved
        self.balances[passbook] = balance
        if balance < 0:
            self.negative_balances.append((passbook, position, balance))

    def _apply(self, kind: str, e: EventEnvelope) -> None:
        p, aggregate = e.payload, str(e.aggregate_id)
        if kind == "passbook":
            self.homes[aggregate] = tuple(p["home_path"])
            self.balances.setdefault(aggregate, 0)
        elif kind == "awarded":
            self.totals["awarded"] += p["points"]
            self.balances[aggregate] = self.balances.get(aggregate, 0) + p["points"]
        elif kind in ("deducted", "corrected"):
            self.totals["deducted"] += p["points"]
            self._lots(aggregate, p["spent"], -1, e.position)
        elif kind == "redeemed":
            self.totals["redeemed"] += p["points"]
            self._lots(aggregate, p["spent"], -1, e.position)
        elif kind == "refunded":
            self.totals["redeemed"] -= p["points"]
            self._lots(aggregate, p["restored"], +1, e.position)
        elif kind == "expired":
            self.totals["expired"] += p["points"]
            self._lots(aggregate, p["expired"], -1, e.position)
        elif kind == "unit":
            self.parents[aggregate] = p["parent_id"]
        elif kind == "listed":
            self._stock(aggregate, p["stock"], e.position)
        elif kind in {"restocked", "released"}:
            self._stock(aggregate, self.stock.get(aggregate, 0) + p["quantity"], e.position)
        elif kind == "reserved":
            self._stock(aggregate, self.stock.get(aggregate, 0) - p["quantity"], e.position)

    def _stock(self, reward: str, stock: int, position: int) -> None:
        self.stock[reward] = stock
        if stock < 0:
            self.stock_dips.append(StockDip(reward, position, stock))

    # -- figures -------------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        return sum(self.balances.values())

    def outstanding_by_unit(self) -> dict[str, int]:
        """Points left in the passbooks of each unit's subtree (by home lineage)."""
        by_unit: dict[str, int] = {}
        for passbook, balance in self.balances.items():
            for unit in self.homes.get(passbook, ()):
                by_unit[unit] = by_unit.get(unit, 0) + balance
        return by_unit

    def children(self) -> dict[str, list[str]]:
        kids: dict[str, list[str]] = {}
        for unit, parent in self.parents.items():
            if parent is not None:
                kids.setdefault(parent, []).append(unit)
        return kids
