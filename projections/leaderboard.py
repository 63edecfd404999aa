"""The volunteer leaderboard (志愿者排行榜): points earned and service hours, per period.

Points earned are every award (service, manual, adjustment) less admin deductions;
redeeming points or letting them expire does not reduce what a volunteer earned.
Service hours are the minutes of confirmed service (activities and service
orders). Both are kept per volunteer for all time and for the year, quarter,
month and ISO week, in the view's
timezone, by the event's business time (``awarded_at`` for awards, the recording
time otherwise).

A volunteer belongs to every unit of their home lineage (center, institute,
station), so a board can be scoped to the whole network or to any unit's subtree.
Ranks are strict: ties on the ranked figure are broken by the other figure, then
by volunteer id, so every query returns a stable order.

Names are stored as they travel in the events: sealed tokens (see
``infra/vault.py``). The queries take a ``reveal`` function (volunteer id, token →
display name) so the caller opens them with the vault; an erased volunteer's name
reads ``[erased]`` while their points and hours stay on the board.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.activities import Activity
from domain.orders import ServiceOrder
from domain.passbook import Passbook
from domain.units import PracticeUnit
from domain.volunteers import Volunteer
from infra.sqlite_rows import insert_many
from projections.base import Projection, handles
from projections.envelope import EventEnvelope
from projections.periods import (
    ALL,
    DEFAULT_TIMEZONE,
    PeriodClock,
    recall_timezone,
    remember_timezone,
    validate_key,
)

RankBy = Literal["points", "hours"]
BoardPeriod = Literal["all", "year", "quarter", "month", "week"]

TIER_COLUMNS: Final = ("center_id", "institute_id", "station_id")

DDL: Final = (
    """
    CREATE TABLE IF NOT EXISTS lb_units (
        unit_id TEXT PRIMARY KEY,
        depth INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS lb_volunteers (
        volunteer_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        center_id TEXT,
        institute_id TEXT,
        station_id TEXT
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS lb_passbooks (
        passbook_id TEXT PRIMARY KEY,
        volunteer_id TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    # period: 'all', '2026', '2026-Q1', '2026-03' or '2026-W14' (see projections.periods)
    """
    CREATE TABLE IF NOT EXISTS lb_scores (
        period TEXT NOT NULL,
        volunteer_id TEXT NOT NULL,
        points INTEGER NOT NULL,
        minutes INTEGER NOT NULL,
        PRIMARY KEY (period, volunteer_id)
    ) WITHOUT ROWID
    """,
)

# reads only (see Projection.read_indexes)
READ_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS lb_volunteers_center ON lb_volunteers (center_id)",
    "CREATE INDEX IF NOT EXISTS lb_volunteers_institute ON lb_volunteers (institute_id)",
    "CREATE INDEX IF NOT EXISTS lb_volunteers_station ON lb_volunteers (station_id)",
    # the default board (by points) reads in index order; ranking by hours sorts the
    # period's rows, which keeps every score update to one index entry
    "CREATE INDEX IF NOT EXISTS lb_scores_by_points "
    "ON lb_scores (period, points DESC, minutes DESC, volunteer_id)",
)

UPSERT_SCORE: Final = (
    "INSERT INTO lb_scores (volunteer_id, period, points, minutes) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (period, volunteer_id) DO UPDATE SET "
    "points = points + excluded.points, minutes = minutes + excluded.minutes"
)


@dataclass(slots=True)
class LeaderboardBatch:
    units: list[tuple[str, int]] = field(default_factory=list)
    volunteers: list[tuple[str, str, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    names: dict[str, str] = field(default_factory=dict)
    passbooks: list[tuple[str, str]] = field(default_factory=list)
    # (volunteer id, local day) -> [points, minutes]
    daily: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def _home_columns(home_path: object) -> tuple[str | None, str | None, str | None]:
    if not isinstance(home_path, list) or not all(isinstance(u, str) for u in home_path):
        msg = f"home_path must be a list of unit ids, got {home_path!r}"
        raise TypeError(msg)
    padded = [*home_path[:3], None, None, None]
    return padded[0], padded[1], padded[2]


class LeaderboardProjection(Projection):
    name = "leaderboard"
    read_indexes = READ_INDEXES

    def __init__(self, *, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.clock = PeriodClock(timezone)
        # passbook id -> volunteer id: never changes, so it is cached for good
        self._volunteer_of: dict[int, str] = {}  # by the passbook id's UUID.int

    # -- schema and batches ----------------------------------------------------------

    def create_tables(self, conn: sqlite3.Connection) -> None:
        for statement in DDL:
            conn.execute(statement)
        remember_timezone(conn, self.clock.timezone)

    def begin_batch(self, conn: sqlite3.Connection) -> LeaderboardBatch:
        return LeaderboardBatch()

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        try:
            super().apply(conn, events)
        except BaseException:
            # the transaction rolls back: forget what this batch taught the cache
            self._volunteer_of.clear()
            raise

    def flush_batch(self, conn: sqlite3.Connection, batch: LeaderboardBatch) -> None:
        if batch.units:
            insert_many(
                conn,
                "INSERT INTO lb_units (unit_id, depth) VALUES (?, ?) ON CONFLICT DO NOTHING",
                batch.units,
            )
        if batch.volunteers:
            insert_many(
                conn,
                "INSERT INTO lb_volunteers "
                "(volunteer_id, name, center_id, institute_id, station_id) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                batch.volunteers,
            )
        if batch.names:
            conn.executemany(
                "UPDATE lb_volunteers SET name = ? WHERE volunteer_id = ?",
                [(name, vid) for vid, name in batch.names.items()],
            )
        if batch.passbooks:
            insert_many(
                conn,
                "INSERT INTO lb_passbooks (passbook_id, volunteer_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                batch.passbooks,
            )
        if batch.daily:
            insert_many(conn, UPSERT_SCORE, self._roll_up(batch.daily))

    def _roll_up(self, daily: dict[tuple[str, str], list[int]]) -> list[tuple[str, str, int, int]]:
        """Spread each (volunteer, day) total over the week, month, quarter, year and
        all-time periods that contain the day."""
        totals: dict[tuple[str, str], list[int]] = {}
        keys_of_day = self.clock.keys_of_day
        for (vid, day), (points, minutes) in daily.items():
            keys = keys_of_day(day)
            for period in (keys.week, keys.month, keys.quarter, keys.year, ALL):
                total = totals.get((vid, period))
                if total is None:
                    totals[vid, period] = [points, minutes]
                else:
                    total[0] += points
                    total[1] += minutes
        return [(vid, period, t[0], t[1]) for (vid, period), t in totals.items()]

    # -- lookups ---------------------------------------------------------------------

    def _volunteer_of_passbook(self, conn: sqlite3.Connection, passbook_id: UUID) -> str:
        vid = self._volunteer_of.get(passbook_id.int)
        if vid is None:
            row = conn.execute(
                "SELECT volunteer_id FROM lb_passbooks WHERE passbook_id = ?", (str(passbook_id),)
            ).fetchone()
            if row is None:
                msg = f"passbook {passbook_id} was never opened"
                raise LookupError(msg)
            vid = self._volunteer_of[passbook_id.int] = row[0]
        return vid

    @staticmethod
    def _add(batch: LeaderboardBatch, key: tuple[str, str], points: int, minutes: int) -> None:
        total = batch.daily.get(key)
        if total is None:
            batch.daily[key] = [0 + points, 0 + minutes]  # 0 + x: reject non-numbers here
        else:
            total[0] += points
            total[1] += minutes

    # -- handlers --------------------------------------------------------------------

    @handles(PracticeUnit.Opened)
    def unit_opened(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        batch.units.append((str(envelope.aggregate_id), len(envelope.payload["path"])))

    @handles(Volunteer.Registered)
    def registered(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        center, institute, station = _home_columns(p["home_path"])
        batch.volunteers.append((str(envelope.aggregate_id), p["name"], center, institute, station))

    @handles(Volunteer.ProfileUpdated)
    def profile_updated(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        batch.names[str(envelope.aggregate_id)] = envelope.payload["name"]

    @handles(Passbook.Opened)
    def passbook_opened(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        vid = envelope.payload["volunteer_id"]
        if not isinstance(vid, str):
            msg = f"volunteer_id must be a string, got {vid!r}"
            raise TypeError(msg)
        batch.passbooks.append((str(envelope.aggregate_id), vid))
        self._volunteer_of[envelope.aggregate_id.int] = vid

    @handles(Passbook.PointsAwarded)
    def points_awarded(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        vid = self._volunteer_of_passbook(conn, envelope.aggregate_id)
        self._add(batch, (vid, self.clock.day_of_iso(p["awarded_at"])), p["points"], 0)

    @handles(Passbook.PointsDeducted)
    def points_deducted(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        vid = self._volunteer_of_passbook(conn, envelope.aggregate_id)
        day = self.clock.day_of(envelope.recorded_at)
        self._add(batch, (vid, day), -envelope.payload["points"], 0)

    @handles(Activity.ServiceConfirmed)
    def service_confirmed(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        day = self.clock.day_of(envelope.recorded_at)
        self._add(batch, (p["volunteer_id"], day), 0, p["minutes"])

    # corrections count in the period of the service they correct (``service_at``);
    # extra points arrive as a back-dated PointsAwarded (kind "correction")

    @handles(Activity.ServiceCorrected)
    def service_corrected(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        day = self.clock.day_of_iso(p["service_at"])
        self._add(batch, (p["volunteer_id"], day), 0, p["new_minutes"] - p["old_minutes"])

    @handles(Passbook.CorrectionDebited)
    def correction_debited(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        vid = self._volunteer_of_passbook(conn, envelope.aggregate_id)
        day = self.clock.day_of_iso(envelope.payload["service_at"])
        self._add(batch, (vid, day), -envelope.payload["points"], 0)

    @handles(ServiceOrder.Completed)
    def order_completed(
        self, conn: sqlite3.Connection, batch: LeaderboardBatch, envelope: EventEnvelope
    ) -> None:
        """Service on an order counts like confirmed activity service."""
        day = self.clock.day_of_iso(envelope.payload["at"])
        for vid, minutes in envelope.payload["services"]:
            self._add(batch, (vid, day), 0, minutes)


# -- queries -------------------------------------------------------------------------


class LeaderboardEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    rank: int
    volunteer_id: str
    name: str
    points: int
    minutes: int
    hours: float


_FROM: Final = "FROM lb_scores s JOIN lb_volunteers v ON v.volunteer_id = s.volunteer_id"
_SELECT: Final = f"SELECT s.volunteer_id, v.name, s.points, s.minutes {_FROM}"
_COUNT: Final = f"SELECT COUNT(*) {_FROM}"
_ORDER: Final[dict[str, str]] = {
    "points": "s.points DESC, s.minutes DESC, s.volunteer_id",
    "hours": "s.minutes DESC, s.points DESC, s.volunteer_id",
}


def _period(
    conn: sqlite3.Connection, period: BoardPeriod, period_key: str | None, now: datetime | None
) -> str:
    if period not in ("all", "year", "quarter", "month", "week"):
        msg = f"unknown leaderboard period {period!r}"
        raise ValueError(msg)
    if period_key is None:
        return PeriodClock(recall_timezone(conn)).current(period, now)
    return validate_key(period, period_key)


def _scope(conn: sqlite3.Connection, unit_id: str | None) -> tuple[str, tuple[str, ...]] | None:
    """The SQL condition on ``v`` (lb_volunteers) for a unit's subtree; None when the
    unit is unknown (so nobody belongs to it)."""
    if unit_id is None:
        return "", ()
    row = conn.execute("SELECT depth FROM lb_units WHERE unit_id = ?", (unit_id,)).fetchone()
    if row is None or not 0 <= row[0] < len(TIER_COLUMNS):
        return None
    return f" AND v.{TIER_COLUMNS[row[0]]} = ?", (unit_id,)


Reveal = Callable[[str, str], str]  # (volunteer id, stored name) -> name to show


def _entry(
    rank: int, row: sqlite3.Row | tuple[str, str, int, int], reveal: Reveal | None = None
) -> LeaderboardEntry:
    vid, name, points, minutes = row[0], row[1], row[2], row[3]
    return LeaderboardEntry(
        rank=rank,
        volunteer_id=vid,
        name=name if reveal is None else reveal(vid, name),
        points=points,
        minutes=minutes,
        hours=round(minutes / 60, 2),
    )


def top(
    conn: sqlite3.Connection,
    *,
    by: RankBy = "points",
    period: BoardPeriod = "all",
    period_key: str | None = None,
    unit_id: str | None = None,
    limit: int = 20,
    offset: int = 0,
    now: datetime | None = None,
    reveal: Reveal | None = None,
) -> list[LeaderboardEntry]:
    """One page of the board, best first. ``period_key`` defaults to the current
    period in the view's timezone (``now`` overrides the clock, for tests)."""
    if by not in _ORDER:
        msg = f"cannot rank by {by!r}"
        raise ValueError(msg)
    key = _period(conn, period, period_key, now)
    scope = _scope(conn, unit_id)
    if scope is None or limit <= 0:
        return []
    condition, args = scope
    rows = conn.execute(
        f"{_SELECT} WHERE s.period = ?{condition} ORDER BY {_ORDER[by]} LIMIT ? OFFSET ?",
        (key, *args, limit, max(offset, 0)),
    ).fetchall()
    return [_entry(max(offset, 0) + i + 1, row, reveal) for i, row in enumerate(rows)]


def rank_of(
    conn: sqlite3.Connection,
    volunteer_id: str,
    *,
    by: RankBy = "points",
    period: BoardPeriod = "all",
    period_key: str | None = None,
    unit_id: str | None = None,
    now: datetime | None = None,
    reveal: Reveal | None = None,
) -> tuple[int, LeaderboardEntry] | None:
    """A volunteer's rank on the board and their row; None when the volunteer has no
    points or service in the period, or is not in the unit's subtree."""
    if by not in _ORDER:
        msg = f"cannot rank by {by!r}"
        raise ValueError(msg)
    key = _period(conn, period, period_key, now)
    scope = _scope(conn, unit_id)
    if scope is None:
        return None
    condition, args = scope
    mine = conn.execute(
        f"{_SELECT} WHERE s.volunteer_id = ? AND s.period = ?{condition}",
        (volunteer_id, key, *args),
    ).fetchone()
    if mine is None:
        return None
    points, minutes = mine[2], mine[3]
    first, second = ("points", "minutes") if by == "points" else ("minutes", "points")
    a, b = (points, minutes) if by == "points" else (minutes, points)
    ahead = conn.execute(
        f"{_COUNT} WHERE s.period = ?{condition} AND (s.{first} > ? OR (s.{first} = ? AND "
        f"(s.{second} > ? OR (s.{second} = ? AND s.volunteer_id < ?))))",
        (key, *args, a, a, b, b, volunteer_id),
    ).fetchone()[0]
    rank = int(ahead) + 1
    return rank, _entry(rank, mine, reveal)
