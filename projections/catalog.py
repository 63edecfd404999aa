"""The read models the platform runs, by name: each maps to a factory that takes
the network's timezone (the composition root builds one runner per entry)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from projections.audit_trail import AuditTrailProjection
from projections.base import Projection
from projections.leaderboard import LeaderboardProjection
from projections.listings import ListingsProjection
from projections.order_board import OrderBoardProjection
from projections.periods import DEFAULT_TIMEZONE
from projections.team_metrics import TeamMetricsProjection
from projections.unit_metrics import UnitMetricsProjection
from projections.wish_board import WishBoardProjection


class ProjectionFactory(Protocol):
    def __call__(self, *, timezone: str = ...) -> Projection: ...


PROJECTIONS: Final[dict[str, ProjectionFactory]] = {
    LeaderboardProjection.name: LeaderboardProjection,
    UnitMetricsProjection.name: UnitMetricsProjection,
    AuditTrailProjection.name: AuditTrailProjection,
    WishBoardProjection.name: WishBoardProjection,
    OrderBoardProjection.name: OrderBoardProjection,
    TeamMetricsProjection.name: TeamMetricsProjection,
    ListingsProjection.name: ListingsProjection,
}


def create(name: str, *, timezone: str = DEFAULT_TIMEZONE) -> Projection:
    """A fresh projection by its catalogue name (``KeyError`` for an unknown name)."""
    return PROJECTIONS[name](timezone=timezone)


def split_for_two_cores(names: Sequence[str]) -> list[list[str]]:
    """``names`` in groups for ``civic project`` processes on two cores: each read model
    that takes every event in a process of its own, the others together in one (a
    group reads and decodes each event once for all of them)."""
    every = [n for n in names if create(n).subscribed is None]
    rest = [n for n in names if n not in every]
    return [[n] for n in every] + ([rest] if rest else [])
