"""The leaderboard and unit metrics as they stood at a past moment: the events
recorded up to then replayed through the projections' own code into in-memory
read models, then asked the same queries the live routes ask."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.persistence import ApplicationRecorder

from projections import leaderboard, unit_metrics
from projections.periods import DEFAULT_TIMEZONE, Granularity, PeriodClock
from services.audit_replay import history
from services.audit_replay.scratch import Scratch


def replay_as_of(
    recorder: ApplicationRecorder, names: list[str], as_of: datetime, timezone: str
) -> Scratch:
    scratch = Scratch.open(names, timezone=timezone)
    try:
        for page in history.pages(recorder, as_of=as_of):
            scratch.apply(page)
    except BaseException:
        scratch.close()
        raise
    return scratch


def leaderboard_as_of(
    recorder: ApplicationRecorder,
    as_of: datetime,
    *,
    by: leaderboard.RankBy = "points",
    period: leaderboard.BoardPeriod = "all",
    period_key: str | None = None,
    unit_id: str | None = None,
    limit: int = 20,
    offset: int = 0,
    timezone: str = DEFAULT_TIMEZONE,
    reveal: leaderboard.Reveal | None = None,
) -> tuple[list[leaderboard.LeaderboardEntry], str, int]:
    """(entries, period key, events replayed). The period defaults to the one that
    contained ``as_of``."""
    scratch = replay_as_of(recorder, [leaderboard.LeaderboardProjection.name], as_of, timezone)
    try:
        model = scratch[leaderboard.LeaderboardProjection.name]
        conn = model.reader()
        key = period_key or PeriodClock(timezone).current(period, as_of)
        entries = leaderboard.top(
            conn,
            by=by,
            period=period,
            period_key=key,
            unit_id=unit_id,
            limit=limit,
            offset=offset,
            now=as_of,
            reveal=reveal,
        )
        return entries, key, model.applied
    finally:
        scratch.close()


def metrics_as_of(
    recorder: ApplicationRecorder,
    unit_id: str,
    as_of: datetime,
    *,
    granularity: Granularity = "all",
    period_key: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> tuple[unit_metrics.UnitMetrics, int]:
    """(the unit's figures for the period, events replayed); the period defaults to
    the one that contained ``as_of``."""
    scratch = replay_as_of(recorder, [unit_metrics.UnitMetricsProjection.name], as_of, timezone)
    try:
        model = scratch[unit_metrics.UnitMetricsProjection.name]
        figures = unit_metrics.metrics(model.reader(), unit_id, granularity, period_key, now=as_of)
        return figures, model.applied
    finally:
        scratch.close()
