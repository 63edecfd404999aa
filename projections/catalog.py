"""The read models the platform runs, by name: each maps to a factory that takes
the network's timezone (the composition root builds one runner per entry)."""

from __future__ import annotations

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
