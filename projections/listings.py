"""Listings: the units of the network, the activities a station app shows, the
gifts of the charity exchange bank (公益兑换储蓄银行) and the redemptions waiting to
be picked up, each with its unit lineage, so a unit lists its subtree's.

Activities carry their places (capacity, enrolled, waitlisted) and status; the
catalogue carries each gift's cost and stock as the store last recorded them;
a redemption its gift, points and status. Who signed up is kept only as far as
the counts need it (whether a cancelled sign-up held a place or a waitlist
slot); names never enter this view.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from domain.activities import Activity, ActivityStatus, SignupStatus
from domain.categories import Category
from domain.redemptions import Redemption, RedemptionStatus
from domain.rewards import Reward
from domain.units import PracticeUnit, UnitTier
from projections import subtree
from projections.base import RowProjection, handles
from projections.envelope import EventEnvelope

MAX_PAGE: Final = 500
LISTED: Final = "listed"
DELISTED: Final = "delisted"

DDL: Final = (
    """
    CREATE TABLE IF NOT EXISTS ls_activities (
        activity_id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL,
        lineage TEXT NOT NULL,      -- unit ids from the center down, joined with '/'
        title TEXT NOT NULL,
        category TEXT NOT NULL,
        starts_at TEXT NOT NULL,    -- ISO 8601, UTC (sorts as it reads)
        ends_at TEXT NOT NULL,
        location TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        points_per_hour INTEGER NOT NULL,
        enrolled INTEGER NOT NULL,
        waitlisted INTEGER NOT NULL,
        status TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS ls_activities_by_start ON ls_activities (starts_at, activity_id)",
    """
    CREATE TABLE IF NOT EXISTS ls_signups (
        activity_id TEXT NOT NULL,
        volunteer_id TEXT NOT NULL,
        status TEXT NOT NULL,       -- enrolled | waitlisted
        PRIMARY KEY (activity_id, volunteer_id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS ls_rewards (
        reward_id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL,
        lineage TEXT NOT NULL,
        name TEXT NOT NULL,
        cost_points INTEGER NOT NULL,
        stock INTEGER NOT NULL,
        status TEXT NOT NULL,       -- listed | delisted
        listed_position INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ls_redemptions (
        redemption_id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL,
        lineage TEXT NOT NULL,
        volunteer_id TEXT NOT NULL,
        reward_id TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        points INTEGER NOT NULL,
        status TEXT NOT NULL,       -- requested | fulfilled | cancelled
        requested_at TEXT NOT NULL, -- ISO 8601, UTC
        requested_position INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS ls_redemptions_by_volunteer "
    "ON ls_redemptions (volunteer_id, requested_position)",
    """
    CREATE TABLE IF NOT EXISTS ls_units (
        unit_id TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        tier TEXT NOT NULL,
        parent_id TEXT,
        lineage TEXT NOT NULL,      -- its ancestors' ids, then its own
        closed INTEGER NOT NULL
    )
    """,
)


def _utc(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).isoformat()


class ListingsProjection(RowProjection):
    name = "listings"
    ddl = DDL

    # -- units -------------------------------------------------------------------------

    @handles(PracticeUnit.Opened)
    def unit_opened(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        p = envelope.payload
        conn.execute(
            "INSERT INTO ls_units VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["code"],
                p["name"],
                p["tier"],
                p["parent_id"],
                "/".join([*p["path"], str(envelope.aggregate_id)]),  # ancestors, then itself
            ),
        )

    @handles(PracticeUnit.Renamed)
    def unit_renamed(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        conn.execute(
            "UPDATE ls_units SET name = ? WHERE unit_id = ?",
            (envelope.payload["name"], str(envelope.aggregate_id)),
        )

    @handles(PracticeUnit.Closed)
    def unit_closed(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        conn.execute(
            "UPDATE ls_units SET closed = 1 WHERE unit_id = ?", (str(envelope.aggregate_id),)
        )

    # -- activities --------------------------------------------------------------------

    @handles(Activity.Published)
    def published(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        p = envelope.payload
        conn.execute(
            "INSERT INTO ls_activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?) "
            "ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["unit_id"],
                "/".join(p["unit_path"]),
                p["title"],
                p["category"],
                _utc(p["starts_at"]),
                _utc(p["ends_at"]),
                p["location"],
                p["capacity"],
                p["points_per_hour"],
                ActivityStatus.PUBLISHED.value,
            ),
        )

    def _signup(
        self, conn: sqlite3.Connection, envelope: EventEnvelope, status: SignupStatus
    ) -> None:
        """Note the volunteer's sign-up as ``status`` and recount the activity's places."""
        activity, volunteer = str(envelope.aggregate_id), envelope.payload["volunteer_id"]
        conn.execute(
            "INSERT INTO ls_signups VALUES (?, ?, ?) "
            "ON CONFLICT (activity_id, volunteer_id) DO UPDATE SET status = excluded.status",
            (activity, volunteer, status.value),
        )
        self._recount(conn, activity)

    @staticmethod
    def _recount(conn: sqlite3.Connection, activity: str) -> None:
        conn.execute(
            "UPDATE ls_activities SET "
            "enrolled = (SELECT COUNT(*) FROM ls_signups WHERE activity_id = ?1 AND status = ?2), "
            "waitlisted = (SELECT COUNT(*) FROM ls_signups WHERE activity_id = ?1 AND status = ?3) "
            "WHERE activity_id = ?1",
            (activity, SignupStatus.ENROLLED.value, SignupStatus.WAITLISTED.value),
        )

    @handles(Activity.SignedUp, Activity.PromotedFromWaitlist)
    def enrolled(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._signup(conn, envelope, SignupStatus.ENROLLED)

    @handles(Activity.Waitlisted)
    def waitlisted(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._signup(conn, envelope, SignupStatus.WAITLISTED)

    @handles(Activity.SignupCancelled)
    def cancelled_signup(
        self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope
    ) -> None:
        activity = str(envelope.aggregate_id)
        conn.execute(
            "DELETE FROM ls_signups WHERE activity_id = ? AND volunteer_id = ?",
            (activity, envelope.payload["volunteer_id"]),
        )
        self._recount(conn, activity)

    def _status(
        self, conn: sqlite3.Connection, envelope: EventEnvelope, status: ActivityStatus
    ) -> None:
        conn.execute(
            "UPDATE ls_activities SET status = ? WHERE activity_id = ?",
            (status.value, str(envelope.aggregate_id)),
        )

    @handles(Activity.Cancelled)
    def activity_cancelled(
        self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope
    ) -> None:
        self._status(conn, envelope, ActivityStatus.CANCELLED)

    @handles(Activity.Closed)
    def activity_closed(
        self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope
    ) -> None:
        self._status(conn, envelope, ActivityStatus.CLOSED)

    # -- the gift catalogue --------------------------------------------------------------

    @handles(Reward.Listed)
    def listed(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        p = envelope.payload
        conn.execute(
            "INSERT INTO ls_rewards VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["unit_id"],
                "/".join(p["unit_path"]),
                p["name"],
                p["cost_points"],
                p["stock"],
                LISTED,
                envelope.position,
            ),
        )

    def _stock(self, conn: sqlite3.Connection, envelope: EventEnvelope, change: int) -> None:
        conn.execute(
            "UPDATE ls_rewards SET stock = stock + ? WHERE reward_id = ?",
            (change, str(envelope.aggregate_id)),
        )

    @handles(Reward.Restocked, Reward.StockReleased)
    def stock_added(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._stock(conn, envelope, int(envelope.payload["quantity"]))

    @handles(Reward.StockReserved)
    def stock_taken(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._stock(conn, envelope, -int(envelope.payload["quantity"]))

    @handles(Reward.Delisted)
    def delisted(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        conn.execute(
            "UPDATE ls_rewards SET status = ? WHERE reward_id = ?",
            (DELISTED, str(envelope.aggregate_id)),
        )

    # -- redemptions -------------------------------------------------------------------

    @handles(Redemption.Requested)
    def requested(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        p = envelope.payload
        at = envelope.recorded_at.astimezone(UTC).isoformat()
        conn.execute(
            "INSERT INTO ls_redemptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["unit_id"],
                "/".join(p["unit_path"]),
                p["volunteer_id"],
                p["reward_id"],
                p["quantity"],
                p["points"],
                RedemptionStatus.REQUESTED.value,
                at,
                envelope.position,
                at,
            ),
        )

    def _redemption(
        self, conn: sqlite3.Connection, envelope: EventEnvelope, status: RedemptionStatus
    ) -> None:
        conn.execute(
            "UPDATE ls_redemptions SET status = ?, updated_at = ? WHERE redemption_id = ?",
            (
                status.value,
                envelope.recorded_at.astimezone(UTC).isoformat(),
                str(envelope.aggregate_id),
            ),
        )

    @handles(Redemption.Fulfilled)
    def fulfilled(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        self._redemption(conn, envelope, RedemptionStatus.FULFILLED)

    @handles(Redemption.Cancelled)
    def redemption_cancelled(
        self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope
    ) -> None:
        self._redemption(conn, envelope, RedemptionStatus.CANCELLED)


# -- queries -------------------------------------------------------------------------------


class ActivitySummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    activity_id: str
    unit_id: str
    title: str
    category: Category
    starts_at: datetime
    ends_at: datetime
    location: str
    capacity: int
    enrolled: int
    places_left: int = Field(description="capacity less those enrolled")
    waitlisted: int
    points_per_hour: int
    status: ActivityStatus


class RewardSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    reward_id: str
    unit_id: str
    name: str
    cost_points: int
    stock: int
    status: str = Field(description="listed | delisted")


def _in_subtree(
    unit_id: str | None, conditions: list[str], args: list[Any], column: str = "lineage"
) -> None:
    if unit_id is not None:
        conditions.append(subtree.in_subtree(column))
        args.append(subtree.pattern(unit_id))


def _where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)} " if conditions else ""


def _page(limit: int, offset: int) -> tuple[int, int]:
    """The ``LIMIT ? OFFSET ?`` arguments, within a page's bounds."""
    return min(max(limit, 1), MAX_PAGE), max(offset, 0)


def activities(
    conn: sqlite3.Connection,
    unit_id: str | None,
    *,
    category: Category | None = None,
    status: ActivityStatus | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    with_places: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[ActivitySummary]:
    """The activities published in a unit's subtree (the whole network for ``None``),
    by start time, filtered as asked."""
    conditions: list[str] = []
    args: list[Any] = []
    _in_subtree(unit_id, conditions, args)
    if category is not None:
        conditions.append("category = ?")
        args.append(category.value)
    if status is not None:
        conditions.append("status = ?")
        args.append(status.value)
    if starts_from is not None:
        conditions.append("starts_at >= ?")
        args.append(starts_from.astimezone(UTC).isoformat())
    if starts_before is not None:
        conditions.append("starts_at < ?")
        args.append(starts_before.astimezone(UTC).isoformat())
    if with_places:
        conditions.append("enrolled < capacity")
    columns = (
        "activity_id, unit_id, title, category, starts_at, ends_at, location, capacity, "
        "enrolled, waitlisted, points_per_hour, status"
    )
    sql = (
        f"SELECT {columns} FROM ls_activities {_where(conditions)}"  # noqa: S608 - fixed names
        "ORDER BY starts_at, activity_id LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, (*args, *_page(limit, offset)))
    return [_activity(r) for r in rows]


def _activity(r: Sequence[Any]) -> ActivitySummary:
    return ActivitySummary(
        activity_id=r[0],
        unit_id=r[1],
        title=r[2],
        category=Category(r[3]),
        starts_at=datetime.fromisoformat(r[4]),
        ends_at=datetime.fromisoformat(r[5]),
        location=r[6],
        capacity=r[7],
        enrolled=r[8],
        places_left=max(r[7] - r[8], 0),
        waitlisted=r[9],
        points_per_hour=r[10],
        status=ActivityStatus(r[11]),
    )


def rewards(
    conn: sqlite3.Connection,
    unit_id: str | None,
    *,
    in_stock: bool = False,
    include_delisted: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[RewardSummary]:
    """The gifts listed in a unit's subtree (the whole network for ``None``), in the
    order they were listed."""
    conditions: list[str] = []
    args: list[Any] = []
    _in_subtree(unit_id, conditions, args)
    if in_stock:
        conditions.append("stock > 0")
    if not include_delisted:
        conditions.append("status = ?")
        args.append(LISTED)
    columns = "reward_id, unit_id, name, cost_points, stock, status"
    sql = (
        f"SELECT {columns} FROM ls_rewards {_where(conditions)}"  # noqa: S608 - fixed names
        "ORDER BY listed_position LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, (*args, *_page(limit, offset)))
    return [
        RewardSummary(
            reward_id=r[0], unit_id=r[1], name=r[2], cost_points=r[3], stock=r[4], status=r[5]
        )
        for r in rows
    ]


class RedemptionSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    redemption_id: str
    unit_id: str
    volunteer_id: str
    reward_id: str
    reward_name: str | None = Field(description="the gift's name, as the catalogue lists it")
    quantity: int
    points: int
    status: RedemptionStatus
    requested_at: datetime
    updated_at: datetime


def redemptions(
    conn: sqlite3.Connection,
    unit_id: str | None,
    *,
    status: RedemptionStatus | None = None,
    volunteer_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RedemptionSummary]:
    """The redemptions at a unit's subtree (the whole network for ``None``), oldest
    first, optionally of one status or one volunteer."""
    conditions: list[str] = []
    args: list[Any] = []
    _in_subtree(unit_id, conditions, args, "d.lineage")
    if status is not None:
        conditions.append("d.status = ?")
        args.append(status.value)
    if volunteer_id is not None:
        conditions.append("d.volunteer_id = ?")
        args.append(volunteer_id)
    columns = (
        "d.redemption_id, d.unit_id, d.volunteer_id, d.reward_id, r.name, d.quantity, "
        "d.points, d.status, d.requested_at, d.updated_at"
    )
    sql = (
        f"SELECT {columns} FROM ls_redemptions d "  # noqa: S608 - fixed names
        f"LEFT JOIN ls_rewards r ON r.reward_id = d.reward_id {_where(conditions)}"
        "ORDER BY d.requested_position LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, (*args, *_page(limit, offset)))
    return [
        RedemptionSummary(
            redemption_id=r[0],
            unit_id=r[1],
            volunteer_id=r[2],
            reward_id=r[3],
            reward_name=r[4],
            quantity=r[5],
            points=r[6],
            status=RedemptionStatus(r[7]),
            requested_at=datetime.fromisoformat(r[8]),
            updated_at=datetime.fromisoformat(r[9]),
        )
        for r in rows
    ]


class UnitSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    unit_id: str
    code: str
    name: str
    tier: UnitTier
    parent_id: str | None
    closed: bool


def units(
    conn: sqlite3.Connection,
    unit_id: str | None,
    *,
    tier: UnitTier | None = None,
    parent_id: str | None = None,
    include_closed: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[UnitSummary]:
    """The units of a unit's subtree, itself included (the whole network for
    ``None``), by code; optionally of one tier, or the children of one unit."""
    conditions: list[str] = []
    args: list[Any] = []
    _in_subtree(unit_id, conditions, args)
    if tier is not None:
        conditions.append("tier = ?")
        args.append(tier.value)
    if parent_id is not None:
        conditions.append("parent_id = ?")
        args.append(parent_id)
    if not include_closed:
        conditions.append("closed = 0")
    sql = (
        "SELECT unit_id, code, name, tier, parent_id, closed FROM ls_units "  # noqa: S608
        f"{_where(conditions)}ORDER BY code, unit_id LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, (*args, *_page(limit, offset)))
    return [
        UnitSummary(
            unit_id=r[0],
            code=r[1],
            name=r[2],
            tier=UnitTier(r[3]),
            parent_id=r[4],
            closed=bool(r[5]),
        )
        for r in rows
    ]


class SignupSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    activity: ActivitySummary
    status: SignupStatus


def signups_of(
    conn: sqlite3.Connection,
    volunteer_id: str,
    *,
    starts_from: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[SignupSummary]:
    """The activities a volunteer is signed up for (enrolled or on the waitlist), by
    start time; cancelled sign-ups are not listed."""
    args: list[Any] = [volunteer_id]
    since = ""
    if starts_from is not None:
        since = "AND a.starts_at >= ? "
        args.append(starts_from.astimezone(UTC).isoformat())
    columns = (
        "a.activity_id, a.unit_id, a.title, a.category, a.starts_at, a.ends_at, a.location, "
        "a.capacity, a.enrolled, a.waitlisted, a.points_per_hour, a.status, s.status"
    )
    sql = (
        f"SELECT {columns} FROM ls_signups s JOIN ls_activities a "  # noqa: S608 - fixed SQL
        f"ON a.activity_id = s.activity_id WHERE s.volunteer_id = ? {since}"
        "ORDER BY a.starts_at, a.activity_id LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, (*args, *_page(limit, offset)))
    return [SignupSummary(activity=_activity(r[:12]), status=SignupStatus(r[12])) for r in rows]
