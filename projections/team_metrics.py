"""Team metrics (服务队统计): what each volunteer team did, per period, and a board
of teams within a unit's subtree.

Counters per (team, period) for local day, month, quarter, year and all time, by
the business time of each step: orders dispatched to or taken by the team,
accepted, declined, completed, the volunteers' minutes on them, people served,
ratings (sum and count), activities assigned, members joined and left. The team
table holds each team's unit lineage, kind, leader and current member count.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from domain.activities import Activity
from domain.orders import ServiceOrder
from domain.teams import Team
from infra.sqlite_rows import insert_many
from projections import subtree
from projections.base import Projection, handles
from projections.envelope import EventEnvelope
from projections.periods import (
    ALL,
    DEFAULT_TIMEZONE,
    Granularity,
    PeriodClock,
    recall_timezone,
    remember_timezone,
    validate_key,
)

COUNTERS: Final = (
    "orders_dispatched",
    "orders_accepted",
    "orders_declined",
    "orders_completed",
    "service_minutes",
    "people_served",
    "rating_sum",
    "rating_count",
    "activities_assigned",
    "members_joined",
    "members_left",
)
_COLUMNS: Final = ", ".join(COUNTERS)
TeamRankBy = Literal["service_minutes", "orders_completed", "rating_sum"]

DDL: Final = (
    """
    CREATE TABLE IF NOT EXISTS tm_teams (
        team_id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL,
        lineage TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        parent_team_id TEXT,
        leader_id TEXT NOT NULL,
        members INTEGER NOT NULL,
        disbanded INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID
    """,
    f"""
    CREATE TABLE IF NOT EXISTS tm_counters (
        team_id TEXT NOT NULL,
        period TEXT NOT NULL,
        {", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COUNTERS)},
        PRIMARY KEY (team_id, period)
    ) WITHOUT ROWID
    """,
    # which team completed each order (its rating counts for that team)
    """
    CREATE TABLE IF NOT EXISTS tm_orders (
        order_id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)

UPSERT: Final = (
    f"INSERT INTO tm_counters (team_id, period, {_COLUMNS}) "  # noqa: S608 - fixed names
    f"VALUES (?, ?, {', '.join('?' for _ in COUNTERS)}) "
    "ON CONFLICT (team_id, period) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNTERS)
)


def _path(value: object) -> str:
    """A unit lineage from a payload, stored as unit ids joined by '/'."""
    if not isinstance(value, list) or not value or not all(isinstance(u, str) for u in value):
        msg = f"a unit lineage must be a non-empty list of unit ids, got {value!r}"
        raise TypeError(msg)
    return "/".join(value)


# (team id, local day) -> a delta per counter
TeamBatch = dict[tuple[str, str], list[int]]


class TeamMetricsProjection(Projection):
    name = "team_metrics"

    def __init__(self, *, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.clock = PeriodClock(timezone)

    def create_tables(self, conn: sqlite3.Connection) -> None:
        for statement in DDL:
            conn.execute(statement)
        remember_timezone(conn, self.clock.timezone)

    def begin_batch(self, conn: sqlite3.Connection) -> TeamBatch:
        return defaultdict(lambda: [0] * len(COUNTERS))

    def flush_batch(self, conn: sqlite3.Connection, batch: TeamBatch) -> None:
        rows: dict[tuple[str, str], list[int]] = {}
        for (team, day), delta in batch.items():
            keys = self.clock.keys_of_day(day)
            for period in (keys.day, keys.month, keys.quarter, keys.year, ALL):
                total = rows.setdefault((team, period), [0] * len(COUNTERS))
                for i, amount in enumerate(delta):
                    total[i] += amount
        if rows:
            insert_many(conn, UPSERT, [(t, p, *d) for (t, p), d in rows.items()])

    def _count(self, batch: TeamBatch, team_id: str, at: str, counter: str, n: int = 1) -> None:
        batch[team_id, self.clock.day_of_iso(at)][COUNTERS.index(counter)] += n

    # -- teams -----------------------------------------------------------------------

    @handles(Team.Formed)
    def formed(self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope) -> None:
        p = envelope.payload
        conn.execute(
            "INSERT INTO tm_teams VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0) ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["unit_id"],
                _path(p["unit_path"]),
                p["name"],
                p["kind"],
                p["parent_team_id"],
                p["leader_id"],
            ),
        )
        self._count(batch, str(envelope.aggregate_id), p["at"], "members_joined")

    @handles(Team.MemberJoined, Team.MemberLeft)
    def membership(
        self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope
    ) -> None:
        joined = envelope.name == "MemberJoined"
        conn.execute(
            "UPDATE tm_teams SET members = members + ? WHERE team_id = ?",
            (1 if joined else -1, str(envelope.aggregate_id)),
        )
        counter = "members_joined" if joined else "members_left"
        self._count(batch, str(envelope.aggregate_id), envelope.payload["at"], counter)

    @handles(Team.LeaderChanged)
    def leader_changed(
        self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope
    ) -> None:
        conn.execute(
            "UPDATE tm_teams SET leader_id = ? WHERE team_id = ?",
            (envelope.payload["volunteer_id"], str(envelope.aggregate_id)),
        )

    @handles(Team.Disbanded)
    def disbanded(
        self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope
    ) -> None:
        conn.execute(
            "UPDATE tm_teams SET disbanded = 1 WHERE team_id = ?", (str(envelope.aggregate_id),)
        )

    @handles(Activity.AssignedToTeam)
    def activity_assigned(
        self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope
    ) -> None:
        day = self.clock.day_of(envelope.recorded_at)
        batch[envelope.payload["team_id"], day][COUNTERS.index("activities_assigned")] += 1

    # -- orders ----------------------------------------------------------------------

    @handles(ServiceOrder.Dispatched, ServiceOrder.TakenByTeam)
    def dispatched(
        self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        self._count(batch, p["team_id"], p["at"], "orders_dispatched")
        if envelope.name == "TakenByTeam":
            self._count(batch, p["team_id"], p["at"], "orders_accepted")

    @handles(ServiceOrder.AcceptedByTeam)
    def accepted(self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope) -> None:
        p = envelope.payload
        self._count(batch, p["team_id"], p["at"], "orders_accepted")

    @handles(ServiceOrder.DeclinedByTeam)
    def declined(self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope) -> None:
        p = envelope.payload
        self._count(batch, p["team_id"], p["at"], "orders_declined")

    @handles(ServiceOrder.Completed)
    def completed(
        self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        team = p["team_id"]
        conn.execute(
            "INSERT INTO tm_orders (order_id, team_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (str(envelope.aggregate_id), team),
        )
        self._count(batch, team, p["at"], "orders_completed")
        self._count(batch, team, p["at"], "people_served", p["people_served"])
        self._count(batch, team, p["at"], "service_minutes", sum(m for _, m in p["services"]))

    @handles(ServiceOrder.Rated)
    def rated(self, conn: sqlite3.Connection, batch: TeamBatch, envelope: EventEnvelope) -> None:
        row = conn.execute(
            "SELECT team_id FROM tm_orders WHERE order_id = ?", (str(envelope.aggregate_id),)
        ).fetchone()
        if row is None:
            msg = f"order {envelope.aggregate_id} was rated before it was completed"
            raise LookupError(msg)
        p = envelope.payload
        self._count(batch, row[0], p["at"], "rating_count")
        self._count(batch, row[0], p["at"], "rating_sum", p["stars"])


# -- queries -------------------------------------------------------------------------


class TeamFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    team_id: str
    name: str
    kind: str
    unit_id: str
    parent_team_id: str | None
    leader_id: str
    members: int
    disbanded: bool
    period_key: str
    orders_dispatched: int = 0
    orders_accepted: int = 0
    orders_declined: int = 0
    orders_completed: int = 0
    service_minutes: int = 0
    service_hours: float = 0.0
    people_served: int = 0
    rating_sum: int = 0
    rating_count: int = 0
    average_rating: float | None = None
    activities_assigned: int = 0
    members_joined: int = 0
    members_left: int = 0


_FIGURES: Final = ", ".join(f"COALESCE(c.{c}, 0)" for c in COUNTERS)
_SELECT: Final = (
    "SELECT t.team_id, t.name, t.kind, t.unit_id, t.parent_team_id, t.leader_id, t.members, "  # noqa: S608 - fixed names
    f"t.disbanded, {_FIGURES} FROM tm_teams t "
    "LEFT JOIN tm_counters c ON c.team_id = t.team_id AND c.period = ?"
)


def _figures(row: sqlite3.Row | tuple[object, ...], period_key: str) -> TeamFigures:
    counters = dict(zip(COUNTERS, row[8:], strict=True))
    minutes, ratings = int(str(counters["service_minutes"])), int(str(counters["rating_count"]))
    return TeamFigures.model_validate(
        {
            "team_id": row[0],
            "name": row[1],
            "kind": row[2],
            "unit_id": row[3],
            "parent_team_id": row[4],
            "leader_id": row[5],
            "members": row[6],
            "disbanded": bool(row[7]),
            "period_key": period_key,
            **counters,
            "service_hours": round(minutes / 60, 2),
            "average_rating": (
                round(int(str(counters["rating_sum"])) / ratings, 2) if ratings else None
            ),
        }
    )


def _key(
    conn: sqlite3.Connection, granularity: Granularity, key: str | None, now: datetime | None
) -> str:
    if key is None:
        return PeriodClock(recall_timezone(conn)).current(granularity, now)
    return validate_key(granularity, key)


def team(
    conn: sqlite3.Connection,
    team_id: str,
    granularity: Granularity = "all",
    period_key: str | None = None,
    *,
    now: datetime | None = None,
) -> TeamFigures | None:
    key = _key(conn, granularity, period_key, now)
    row = conn.execute(f"{_SELECT} WHERE t.team_id = ?", (key, team_id)).fetchone()
    return _figures(row, key) if row is not None else None


def board(
    conn: sqlite3.Connection,
    unit_id: str | None,
    *,
    by: TeamRankBy = "service_minutes",
    granularity: Granularity = "all",
    period_key: str | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> list[TeamFigures]:
    """Teams of the unit's subtree (all with None), best first by ``by``, then by
    orders completed and team id."""
    if by not in ("service_minutes", "orders_completed", "rating_sum"):
        msg = f"cannot rank teams by {by!r}"
        raise ValueError(msg)
    key = _key(conn, granularity, period_key, now)
    condition, args = "", [key]
    if unit_id is not None:
        condition = f" WHERE {subtree.in_subtree('t.lineage')}"
        args.append(subtree.pattern(unit_id))
    rows = conn.execute(
        f"{_SELECT}{condition} ORDER BY COALESCE(c.{by}, 0) DESC, "
        "COALESCE(c.orders_completed, 0) DESC, t.team_id LIMIT ?",
        (*args, max(1, min(limit, 500))),
    ).fetchall()
    return [_figures(row, key) for row in rows]
