"""The micro-wish board (微心愿墙): every wish with its unit lineage and status, so a
unit can list the wishes of its subtree by status.

Rows hold the wish's title, points, status and volunteer claimant; never the
resident's reference (that stays in the wish's own events, read by the unit's
staff only).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from domain.wishes import Wish, WishStatus
from projections import subtree
from projections.base import RowProjection, handles
from projections.envelope import EventEnvelope

MAX_PAGE: Final = 500

DDL: Final = (
    """
    CREATE TABLE IF NOT EXISTS wb_wishes (
        wish_id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL,
        lineage TEXT NOT NULL,      -- unit ids from the center down, joined with '/'
        title TEXT NOT NULL,
        points INTEGER NOT NULL,
        status TEXT NOT NULL,
        volunteer_id TEXT,
        posted_at TEXT NOT NULL,    -- ISO 8601, UTC
        posted_position INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS wb_by_status ON wb_wishes (status, posted_position)",
)


class WishBoardProjection(RowProjection):
    name = "wish_board"
    ddl = DDL

    @handles(Wish.Posted)
    def posted(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        p = envelope.payload
        at = envelope.recorded_at.isoformat()
        conn.execute(
            "INSERT INTO wb_wishes VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["unit_id"],
                "/".join(p["unit_path"]),
                p["title"],
                p["points"],
                WishStatus.OPEN.value,
                at,
                envelope.position,
                at,
            ),
        )

    def _set(self, conn: sqlite3.Connection, envelope: EventEnvelope, status: WishStatus) -> None:
        conn.execute(
            "UPDATE wb_wishes SET status = ?, updated_at = ? WHERE wish_id = ?",
            (status.value, envelope.recorded_at.isoformat(), str(envelope.aggregate_id)),
        )

    @handles(Wish.Claimed)
    def claimed(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._set(conn, envelope, WishStatus.CLAIMED)
        conn.execute(
            "UPDATE wb_wishes SET volunteer_id = ? WHERE wish_id = ?",
            (envelope.payload.get("volunteer_id"), str(envelope.aggregate_id)),
        )

    @handles(Wish.ClaimReleased)
    def released(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._set(conn, envelope, WishStatus.OPEN)
        conn.execute(
            "UPDATE wb_wishes SET volunteer_id = NULL WHERE wish_id = ?",
            (str(envelope.aggregate_id),),
        )

    @handles(Wish.Fulfilled)
    def fulfilled(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._set(conn, envelope, WishStatus.FULFILLED)

    @handles(Wish.Confirmed)
    def confirmed(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._set(conn, envelope, WishStatus.CONFIRMED)

    @handles(Wish.Cancelled)
    def cancelled(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._set(conn, envelope, WishStatus.CANCELLED)


# -- queries -------------------------------------------------------------------------


class WishSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    wish_id: str
    unit_id: str
    title: str
    points: int
    status: WishStatus
    volunteer_id: str | None
    posted_at: str
    updated_at: str


def wishes(
    conn: sqlite3.Connection,
    unit_id: str | None,
    *,
    status: WishStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[WishSummary]:
    """The wishes posted in a unit's subtree (the whole network for ``None``),
    oldest first, optionally of one status."""
    conditions, args = [], []
    if unit_id is not None:
        conditions.append(subtree.in_subtree())
        args.append(subtree.pattern(unit_id))
    if status is not None:
        conditions.append("status = ?")
        args.append(status.value)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    columns = "wish_id, unit_id, title, points, status, volunteer_id, posted_at, updated_at"
    sql = f"SELECT {columns} FROM wb_wishes {where}ORDER BY posted_position LIMIT ? OFFSET ?"  # noqa: S608 - fixed names
    rows = conn.execute(
        sql,
        (*args, min(max(limit, 1), MAX_PAGE), max(offset, 0)),
    )
    return [
        WishSummary(
            wish_id=r[0],
            unit_id=r[1],
            title=r[2],
            points=r[3],
            status=WishStatus(r[4]),
            volunteer_id=r[5],
            posted_at=r[6],
            updated_at=r[7],
        )
        for r in rows
    ]
