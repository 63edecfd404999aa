"""Reads served by the projections: leaderboards, unit metrics, the audit trail,
and the projections' own status.

Each accepts ``min_position`` (the ``position`` of an earlier write): the read
waits until the projection has applied it, or answers 503 with ``Retry-After``.
A unit-scoped key reads within its subtree only: ``unit_id`` defaults to its own
unit and must lie within it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from projections import audit_trail, leaderboard, unit_metrics
from projections.periods import Granularity, PeriodClock, period_start, recall_timezone
from services import queries
from services.api.deps import PlatformDep, PrincipalDep
from services.api.execute import wait_for_projection
from services.api.problems import ProblemError, problems
from services.bootstrap import Platform
from services.principals import Principal

router = APIRouter(prefix="/v1", tags=["reports"])

MAX_POSITION = 2**62  # beyond any store; keeps SQLite integers in range
MinPosition = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_POSITION,
        description="wait until the read model has applied this store position",
    ),
]
MAX_SERIES = 1000


def _scope(platform: Platform, principal: Principal, unit_id: UUID | None) -> UUID | None:
    """The unit a read is limited to (None: the whole network, for admins and auditors)."""
    if unit_id is None:
        if principal.can_read_everything():
            return None
        unit_id = principal.unit_id
    assert unit_id is not None  # noqa: S101 - scoped principals always have a unit
    principal.ensure_can_read(queries.unit_lineage(platform.app, unit_id))
    return unit_id


def _reveal_name(platform: Platform) -> leaderboard.Reveal:
    """Names on the board are sealed per volunteer; "[erased]" after an erasure."""
    vault = platform.app.vault
    return lambda volunteer_id, token: vault.reveal(volunteer_id, "name", token)


def _reader(platform: Platform, name: str, min_position: int | None) -> sqlite3.Connection:
    wait_for_projection(platform, name, min_position)
    runner = platform.runners.get(name)
    if runner is None:
        raise ProblemError(503, "projection-unavailable", f"the {name} read model is not running")
    return runner.store.reader()


def _invalid(exc: ValueError | OverflowError) -> ProblemError:
    return ProblemError(422, "invalid-period", str(exc))


def _period_count(granularity: Granularity, from_key: str, to_key: str) -> int:
    """How many periods a series spans, without listing them."""
    first, last = period_start(granularity, from_key), period_start(granularity, to_key)
    months = (last.year - first.year) * 12 + last.month - first.month
    spans = {
        "day": (last - first).days,
        "month": months,
        "quarter": months // 3,
        "year": last.year - first.year,
    }
    return spans.get(granularity, 0) + 1


# -- leaderboards ----------------------------------------------------------------------


class Leaderboard(BaseModel):
    by: leaderboard.RankBy
    period: leaderboard.BoardPeriod
    period_key: str = Field(description="e.g. all, 2026, 2026-Q1, 2026-03, 2026-W14")
    unit_id: UUID | None = Field(description="the subtree ranked; null for the whole network")
    entries: list[leaderboard.LeaderboardEntry]
    volunteer: leaderboard.LeaderboardEntry | None = Field(
        default=None, description="the rank of the volunteer asked for, wherever they stand"
    )
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "/leaderboards",
    summary="The volunteer leaderboard by points or service hours, per period and subtree",
    responses=problems(403, 404, 503),
)
def get_leaderboard(
    platform: PlatformDep,
    principal: PrincipalDep,
    by: leaderboard.RankBy = "points",
    period: leaderboard.BoardPeriod = "all",
    period_key: Annotated[
        str | None, Query(max_length=16, description="defaults to the current period")
    ] = None,
    unit_id: UUID | None = None,
    volunteer_id: Annotated[
        UUID | None, Query(description="also report this volunteer's rank")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    min_position: MinPosition = None,
) -> Leaderboard:
    scope = _scope(platform, principal, unit_id)
    conn = _reader(platform, leaderboard.LeaderboardProjection.name, min_position)
    position = platform.runners[leaderboard.LeaderboardProjection.name].position
    try:
        key = period_key or PeriodClock(recall_timezone(conn)).current(period)
        unit = str(scope) if scope is not None else None
        reveal = _reveal_name(platform)
        entries = leaderboard.top(
            conn,
            by=by,
            period=period,
            period_key=key,
            unit_id=unit,
            limit=limit,
            offset=offset,
            reveal=reveal,
        )
        mine = (
            leaderboard.rank_of(
                conn,
                str(volunteer_id),
                by=by,
                period=period,
                period_key=key,
                unit_id=unit,
                reveal=reveal,
            )
            if volunteer_id is not None
            else None
        )
    except ValueError as exc:
        raise _invalid(exc) from None
    return Leaderboard(
        by=by,
        period=period,
        period_key=key,
        unit_id=scope,
        entries=entries,
        volunteer=mine[1] if mine is not None else None,
        position=position,
    )


# -- unit metrics ----------------------------------------------------------------------

MetricGranularity = Literal["day", "month", "quarter", "year", "all"]


class UnitMetricsReport(BaseModel):
    unit_id: UUID
    granularity: MetricGranularity
    periods: list[unit_metrics.UnitMetrics] = Field(
        description="one entry per period, oldest first (one unless a range was asked for)"
    )
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "/units/{unit_id}/metrics",
    tags=["units"],
    summary="A unit's figures (its whole subtree) for one period or a range of periods",
    description=(
        "Activities, sign-ups, service minutes, people served, participants, points "
        "awarded/redeemed/expired, redemptions, volunteers and service orders (received, "
        "dispatched, completed, ratings, time to complete; open and overdue orders are "
        "figures of now, in the current period only). Give `period_key` for one "
        "period (default: the current one), or `from_key` and `to_key` for a series."
    ),
    responses=problems(403, 404, 503),
)
def get_unit_metrics(
    unit_id: UUID,
    platform: PlatformDep,
    principal: PrincipalDep,
    granularity: MetricGranularity = "all",
    period_key: Annotated[str | None, Query(max_length=16)] = None,
    from_key: Annotated[str | None, Query(max_length=16)] = None,
    to_key: Annotated[str | None, Query(max_length=16)] = None,
    min_position: MinPosition = None,
) -> UnitMetricsReport:
    principal.ensure_can_read(queries.unit_lineage(platform.app, unit_id))
    conn = _reader(platform, unit_metrics.UnitMetricsProjection.name, min_position)
    position = platform.runners[unit_metrics.UnitMetricsProjection.name].position
    g: Granularity = granularity
    deadlines, now = platform.settings.order_deadlines, platform.app.clock()
    try:
        if from_key is not None or to_key is not None:
            if from_key is None or to_key is None:
                raise ProblemError(422, "invalid-period", "give both from_key and to_key")
            if _period_count(g, from_key, to_key) > MAX_SERIES:
                raise ProblemError(422, "invalid-period", f"at most {MAX_SERIES} periods")
            periods = unit_metrics.series(
                conn, str(unit_id), g, from_key, to_key, deadlines=deadlines, now=now
            )
        else:
            periods = [
                unit_metrics.metrics(
                    conn, str(unit_id), g, period_key, deadlines=deadlines, now=now
                )
            ]
    except (ValueError, OverflowError) as exc:
        raise _invalid(exc) from None
    return UnitMetricsReport(
        unit_id=unit_id, granularity=granularity, periods=periods, position=position
    )


# -- audit trail -------------------------------------------------------------------------


class AuditPage(audit_trail.Page):
    position: int = Field(description="the store position the read model has applied")


@router.get(
    "/audit",
    tags=["audit"],
    summary="The audit trail: who did what, when, to whom (personal data removed)",
    description=(
        "Filters combine. `unit_id` covers the unit's subtree; `type` is an event name "
        "(`PointsAwarded`), `Aggregate.Event` or a full topic; `since` is inclusive, "
        "`until` exclusive. Page with `after_position` = the previous page's "
        "`next_after_position`."
    ),
    responses=problems(403, 404, 503),
)
def get_audit(
    platform: PlatformDep,
    principal: PrincipalDep,
    volunteer_id: UUID | None = None,
    unit_id: UUID | None = None,
    actor: Annotated[str | None, Query(max_length=200, description="e.g. key:1a2b...")] = None,
    type: Annotated[str | None, Query(max_length=200)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    after_position: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
    limit: Annotated[int, Query(ge=1, le=audit_trail.MAX_PAGE)] = 100,
    min_position: MinPosition = None,
) -> AuditPage:
    scope = _scope(platform, principal, unit_id)
    conn = _reader(platform, audit_trail.AuditTrailProjection.name, min_position)
    position = platform.runners[audit_trail.AuditTrailProjection.name].position
    page = audit_trail.search(
        conn,
        volunteer_id=str(volunteer_id) if volunteer_id else None,
        unit_id=str(scope) if scope else None,
        actor=actor,
        type=type,
        since=since,
        until=until,
        after_position=after_position,
        limit=limit,
    )
    return AuditPage(
        items=page.items, next_after_position=page.next_after_position, position=position
    )


# -- projections' status -----------------------------------------------------------------


class DeadLetter(BaseModel):
    position: int
    type: str
    error: str | None = Field(description="shown to admins and auditors only")
    attempts: int
    parked_at: datetime


class ProjectionStatus(BaseModel):
    name: str
    position: int = Field(description="the last store position applied")
    lag: int | None = Field(description="events recorded but not yet applied")
    running: bool
    healthy: bool = Field(description="false while any event is parked as a dead letter")
    applied: int = Field(description="events applied since the process started")
    failures: int
    dead_letters: list[DeadLetter]


class ProjectionsStatus(BaseModel):
    head: int = Field(description="the event store's latest position")
    projections: list[ProjectionStatus]


def runner_alive(platform: Platform, name: str) -> bool:
    return platform.runners[name].alive


@router.get(
    "/projections",
    tags=["operations"],
    summary="The read models' positions, lag, health and dead letters",
    responses=problems(),
)
def get_projections(platform: PlatformDep, principal: PrincipalDep) -> ProjectionsStatus:
    detailed = principal.can_read_everything()
    statuses = []
    for name, runner in platform.runners.items():
        letters = [
            DeadLetter(
                position=int(str(d["position"])),
                type=str(d["type"]),
                error=str(d["error"]) if detailed else None,
                attempts=int(str(d["attempts"])),
                parked_at=datetime.fromtimestamp(float(str(d["parked_at"])), UTC),
            )
            for d in runner.dead_letters()
        ]
        statuses.append(
            ProjectionStatus(
                name=name,
                position=runner.position,
                lag=runner.lag(),
                running=runner_alive(platform, name),
                healthy=runner.healthy,
                applied=runner.stats.applied,
                failures=runner.stats.failures,
                dead_letters=letters,
            )
        )
    return ProjectionsStatus(head=platform.app.head(), projections=statuses)
