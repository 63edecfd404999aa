"""The order board (订单看板): every service order's current state and timers, and
every unit's service menu, for the lists a unit works from: its orders by status,
its overdue orders, its menu.

No personal data: the resident's reference, name, phone and address stay on the
order itself. Overdue is decided when read, from the time an order entered its
current step and the deadlines in force (the network's, or the menu item's).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from domain.orders import STEP_OF, OrderDeadlines, OrderStatus, ServiceOrder
from domain.service_menu import MenuItem
from projections import subtree
from projections.base import RowProjection, handles
from projections.envelope import EventEnvelope

MAX_PAGE: Final = 500

DDL: Final = (
    """
    CREATE TABLE IF NOT EXISTS ob_orders (
        order_id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL,
        unit_lineage TEXT NOT NULL,
        handling_unit_id TEXT NOT NULL,
        handling_lineage TEXT NOT NULL,
        menu_item_id TEXT NOT NULL,
        category TEXT NOT NULL,
        title TEXT NOT NULL,
        channel TEXT NOT NULL,
        status TEXT NOT NULL,
        open_to_teams INTEGER NOT NULL DEFAULT 0,
        team_id TEXT,
        declines INTEGER NOT NULL DEFAULT 0,
        stars INTEGER,
        showcased INTEGER NOT NULL DEFAULT 0,
        deadlines TEXT,
        placed_at TEXT NOT NULL,
        reviewed_at TEXT,
        dispatched_at TEXT,
        accepted_at TEXT,
        completed_at TEXT,
        step_since TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS ob_orders_status ON ob_orders (status, placed_at)",
    """
    CREATE TABLE IF NOT EXISTS ob_menu (
        item_id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL,
        lineage TEXT NOT NULL,
        category TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        points_per_hour INTEGER NOT NULL,
        first_come INTEGER NOT NULL,
        withdrawn INTEGER NOT NULL DEFAULT 0
    )
    """,
)


def _path(value: object) -> str:
    """A unit lineage from a payload, stored as unit ids joined by '/'."""
    if not isinstance(value, list) or not value or not all(isinstance(u, str) for u in value):
        msg = f"a unit lineage must be a non-empty list of unit ids, got {value!r}"
        raise TypeError(msg)
    return "/".join(value)


def _set(conn: sqlite3.Connection, order_id: object, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(
        f"UPDATE ob_orders SET {assignments} WHERE order_id = ?",  # noqa: S608 - fixed names
        (*columns.values(), str(order_id)),
    )


class OrderBoardProjection(RowProjection):
    name = "order_board"
    ddl = DDL

    # -- the menu --------------------------------------------------------------------

    @handles(MenuItem.Added)
    def item_added(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        p = envelope.payload
        conn.execute(
            "INSERT INTO ob_menu VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["unit_id"],
                _path(p["unit_path"]),
                p["category"],
                p["title"],
                p["description"],
                p["points_per_hour"],
                int(p["first_come"]),
            ),
        )

    @handles(MenuItem.Revised)
    def item_revised(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        p = envelope.payload
        conn.execute(
            "UPDATE ob_menu SET category = ?, title = ?, description = ?, points_per_hour = ?, "
            "first_come = ? WHERE item_id = ?",
            (
                p["category"],
                p["title"],
                p["description"],
                p["points_per_hour"],
                int(p["first_come"]),
                str(envelope.aggregate_id),
            ),
        )

    @handles(MenuItem.Withdrawn)
    def item_withdrawn(
        self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope
    ) -> None:
        conn.execute(
            "UPDATE ob_menu SET withdrawn = 1 WHERE item_id = ?", (str(envelope.aggregate_id),)
        )

    # -- orders ----------------------------------------------------------------------

    @handles(ServiceOrder.Placed)
    def placed(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        p = envelope.payload
        lineage = _path(p["unit_path"])
        conn.execute(
            "INSERT INTO ob_orders (order_id, unit_id, unit_lineage, handling_unit_id, "
            "handling_lineage, menu_item_id, category, title, channel, status, open_to_teams, "
            "deadlines, placed_at, step_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                p["unit_id"],
                lineage,
                p["unit_id"],
                lineage,
                p["menu_item_id"],
                p["category"],
                p["title"],
                p["channel"],
                OrderStatus.PLACED.value,
                int(p["first_come"]),
                json.dumps(p["deadline_minutes"]) if p.get("deadline_minutes") else None,
                p["at"],
                p["at"],
            ),
        )

    @handles(ServiceOrder.Approved)
    def approved(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        p = envelope.payload
        _set(
            conn,
            envelope.aggregate_id,
            status=OrderStatus.APPROVED.value,
            open_to_teams=int(p["open_to_teams"]),
            reviewed_at=p["at"],
            step_since=p["at"],
        )

    @handles(ServiceOrder.Rejected)
    def rejected(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        at = envelope.payload["at"]
        _set(
            conn,
            envelope.aggregate_id,
            status=OrderStatus.REJECTED.value,
            reviewed_at=at,
            step_since=at,
        )

    @handles(ServiceOrder.PassedDown)
    def passed_down(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        p = envelope.payload
        _set(
            conn,
            envelope.aggregate_id,
            handling_unit_id=p["unit_id"],
            handling_lineage=_path(p["unit_path"]),
            step_since=p["at"],
        )

    @handles(ServiceOrder.Dispatched)
    def dispatched(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        p = envelope.payload
        _set(
            conn,
            envelope.aggregate_id,
            status=OrderStatus.DISPATCHED.value,
            team_id=p["team_id"],
            dispatched_at=p["at"],
            step_since=p["at"],
        )

    @handles(ServiceOrder.TakenByTeam)
    def taken(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        p = envelope.payload
        _set(
            conn,
            envelope.aggregate_id,
            status=OrderStatus.IN_PROGRESS.value,
            team_id=p["team_id"],
            dispatched_at=p["at"],
            accepted_at=p["at"],
            step_since=p["at"],
        )

    @handles(ServiceOrder.AcceptedByTeam)
    def accepted(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        at = envelope.payload["at"]
        _set(
            conn,
            envelope.aggregate_id,
            status=OrderStatus.IN_PROGRESS.value,
            accepted_at=at,
            step_since=at,
        )

    @handles(ServiceOrder.DeclinedByTeam)
    def declined(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        conn.execute(
            "UPDATE ob_orders SET status = ?, team_id = NULL, declines = declines + 1, "
            "step_since = ? WHERE order_id = ?",
            (OrderStatus.APPROVED.value, envelope.payload["at"], str(envelope.aggregate_id)),
        )

    @handles(ServiceOrder.Completed)
    def completed(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        at = envelope.payload["at"]
        _set(
            conn,
            envelope.aggregate_id,
            status=OrderStatus.COMPLETED.value,
            completed_at=at,
            step_since=at,
        )

    @handles(ServiceOrder.Rated)
    def rated(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        _set(conn, envelope.aggregate_id, stars=envelope.payload["stars"])

    @handles(ServiceOrder.Showcased)
    def showcased(self, conn: sqlite3.Connection, batch: None, envelope: EventEnvelope) -> None:
        _set(conn, envelope.aggregate_id, showcased=1)


# -- queries -------------------------------------------------------------------------


class OrderSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    unit_id: str
    handling_unit_id: str
    menu_item_id: str
    category: str
    title: str
    channel: str
    status: OrderStatus
    open_to_teams: bool
    team_id: str | None
    declines: int
    stars: int | None
    showcased: bool
    placed_at: datetime
    reviewed_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    completed_at: datetime | None
    step: str | None  # the step an open order waits in
    due_at: datetime | None
    overdue: bool


class MenuEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    unit_id: str
    category: str
    title: str
    description: str
    points_per_hour: int
    first_come: bool
    withdrawn: bool


_COLUMNS: Final = (
    "order_id, unit_id, handling_unit_id, menu_item_id, category, title, channel, status, "
    "open_to_teams, team_id, declines, stars, showcased, placed_at, reviewed_at, "
    "dispatched_at, accepted_at, completed_at, step_since, deadlines"
)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _summary(row: sqlite3.Row, deadlines: OrderDeadlines, now: datetime) -> OrderSummary:
    status = OrderStatus(row["status"])
    step = STEP_OF.get(status)
    due = None
    if step is not None:
        override = json.loads(row["deadlines"]) if row["deadlines"] else None
        due = datetime.fromisoformat(row["step_since"]) + timedelta(
            minutes=deadlines.minutes(step, override)
        )
    return OrderSummary(
        order_id=row["order_id"],
        unit_id=row["unit_id"],
        handling_unit_id=row["handling_unit_id"],
        menu_item_id=row["menu_item_id"],
        category=row["category"],
        title=row["title"],
        channel=row["channel"],
        status=status,
        open_to_teams=bool(row["open_to_teams"]),
        team_id=row["team_id"],
        declines=row["declines"],
        stars=row["stars"],
        showcased=bool(row["showcased"]),
        placed_at=datetime.fromisoformat(row["placed_at"]),
        reviewed_at=_time(row["reviewed_at"]),
        dispatched_at=_time(row["dispatched_at"]),
        accepted_at=_time(row["accepted_at"]),
        completed_at=_time(row["completed_at"]),
        step=step,
        due_at=due,
        overdue=due is not None and now > due,
    )


def orders(
    conn: sqlite3.Connection,
    unit_id: str | None,
    deadlines: OrderDeadlines,
    *,
    status: OrderStatus | None = None,
    team_id: str | None = None,
    overdue_only: bool = False,
    now: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[OrderSummary]:
    """Orders received or handled within the unit's subtree (all when ``unit_id`` is
    None), oldest first; ``overdue_only`` keeps the open orders past their deadline."""
    at = now or datetime.now(UTC)
    conditions: list[str] = []
    args: list[object] = []
    if unit_id is not None:
        conditions.append(
            f"({subtree.in_subtree('unit_lineage')} OR {subtree.in_subtree('handling_lineage')})"
        )
        args += [subtree.pattern(unit_id), subtree.pattern(unit_id)]
    if status is not None:
        conditions.append("status = ?")
        args.append(status.value)
    if team_id is not None:
        conditions.append("team_id = ?")
        args.append(team_id)
    if overdue_only:
        conditions.append(f"status IN ({', '.join('?' for _ in STEP_OF)})")
        args += [s.value for s in STEP_OF]
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    sql = f"SELECT {_COLUMNS} FROM ob_orders {where}ORDER BY placed_at, order_id"  # noqa: S608
    found = (_summary(row, deadlines, at) for row in conn.execute(sql, args))
    if overdue_only:
        found = (o for o in found if o.overdue)
    limit = min(max(limit, 1), MAX_PAGE)
    page = []
    for i, summary in enumerate(found):
        if i >= offset + limit:
            break
        if i >= offset:
            page.append(summary)
    return page


def menu(
    conn: sqlite3.Connection, unit_id: str, *, include_withdrawn: bool = False
) -> list[MenuEntry]:
    """The menu items of the units of the unit's subtree, the unit's own first."""
    sql = (
        "SELECT item_id, unit_id, category, title, description, points_per_hour, first_come, "  # noqa: S608 - fixed SQL
        f"withdrawn FROM ob_menu WHERE ({subtree.in_subtree()}) "
        "AND (? OR withdrawn = 0) ORDER BY lineage, title, item_id"
    )
    return [
        MenuEntry(
            item_id=r[0],
            unit_id=r[1],
            category=r[2],
            title=r[3],
            description=r[4],
            points_per_hour=r[5],
            first_come=bool(r[6]),
            withdrawn=bool(r[7]),
        )
        for r in conn.execute(sql, (subtree.pattern(unit_id), int(include_withdrawn)))
    ]
