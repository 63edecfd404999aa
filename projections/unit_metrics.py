"""Unit metrics (阵地统计): what happened at each practice unit, per period.

Every figure rolls up the hierarchy: an event at a station counts for the
station, its institute and its center, so a center's figures are the sum of its
institutes' (and of anything held at the center itself). Figures are kept per
local day, month, quarter, year and for all time, by the event's business time
(``awarded_at`` for awards, the recording time otherwise).

Where an event is attributed:

* activities, sign-ups, service (minutes, people served, participants): the
  lineage of the unit that published the activity;
* points awarded, deducted, redeemed (net of refunds) and expired, volunteers
  registered and active volunteers: the volunteer's home lineage;
* redemptions requested, cancelled and fulfilled: the lineage of the unit that
  listed the reward;
* micro-wishes posted, fulfilled (confirmed by the unit) and cancelled: the
  lineage of the unit that posted the wish; venture projects submitted, funded
  and the amounts funded (fen): the lineage of the unit that opened the call;
  charity-fund money in and out (fen): the lineage of the fund's unit. The fund
  balance is derivable: ``fund_net_fen`` = in − out (for ``all``, the balance of
  every fund in the subtree).

Counters are rolled up when written: one row per (unit, period). Distinct counts
(participants, active volunteers) cannot be added up a hierarchy (a volunteer
may serve in two institutes), so they are membership rows, one per (deepest unit
of the lineage, period, volunteer), counted over the unit's subtree when queried;
ids in membership rows are stable 63-bit codes, which keeps those rows small.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from operator import add
from typing import Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.activities import Activity
from domain.funds import Fund
from domain.orders import OrderDeadlines, ServiceOrder
from domain.passbook import Passbook
from domain.redemptions import Redemption
from domain.venture import VentureCall
from domain.volunteers import Volunteer
from domain.wishes import Wish
from infra.sqlite_rows import insert_many
from projections import subtree
from projections.base import Projection, handles
from projections.envelope import EventEnvelope
from projections.periods import (
    ALL,
    DEFAULT_TIMEZONE,
    Granularity,
    PeriodClock,
    keys_between,
    recall_timezone,
    remember_timezone,
    validate_key,
)

COUNTERS: Final = (
    "activities_published",
    "activities_held",
    "activities_cancelled",
    "signups",
    "signups_cancelled",
    "waitlisted",
    "services_confirmed",
    "service_minutes",
    "people_served",
    "points_awarded",
    "points_deducted",
    "points_redeemed",
    "points_expired",
    "redemptions_requested",
    "redemptions_cancelled",
    "redemptions_fulfilled",
    "volunteers_registered",
    "wishes_posted",
    "wishes_fulfilled",
    "wishes_cancelled",
    "venture_projects_submitted",
    "venture_projects_funded",
    "venture_funded_fen",
    "fund_in_fen",
    "fund_out_fen",
    "orders_received",
    "orders_rejected",
    "orders_dispatched",
    "orders_declined",
    "orders_completed",
    "order_service_minutes",
    "order_people_served",
    "order_rating_sum",
    "order_rating_count",
    "order_complete_minutes",
)
(
    PUBLISHED,
    HELD,
    CANCELLED,
    SIGNUPS,
    SIGNUPS_CANCELLED,
    WAITLISTED,
    SERVICES,
    MINUTES,
    PEOPLE,
    AWARDED,
    DEDUCTED,
    REDEEMED,
    EXPIRED,
    REQUESTED,
    REDEMPTIONS_CANCELLED,
    FULFILLED,
    REGISTERED,
) = range(COUNTERS.index("volunteers_registered") + 1)
WISHES_POSTED = COUNTERS.index("wishes_posted")
WISHES_FULFILLED = COUNTERS.index("wishes_fulfilled")
WISHES_CANCELLED = COUNTERS.index("wishes_cancelled")
PROJECTS_SUBMITTED = COUNTERS.index("venture_projects_submitted")
PROJECTS_FUNDED = COUNTERS.index("venture_projects_funded")
FUNDED_FEN = COUNTERS.index("venture_funded_fen")
FUND_IN = COUNTERS.index("fund_in_fen")
FUND_OUT = COUNTERS.index("fund_out_fen")
ORDERS_RECEIVED = COUNTERS.index("orders_received")
ORDERS_REJECTED = COUNTERS.index("orders_rejected")
ORDERS_DISPATCHED = COUNTERS.index("orders_dispatched")
ORDERS_DECLINED = COUNTERS.index("orders_declined")
ORDERS_COMPLETED = COUNTERS.index("orders_completed")
ORDER_MINUTES = COUNTERS.index("order_service_minutes")
ORDER_PEOPLE = COUNTERS.index("order_people_served")
RATING_SUM = COUNTERS.index("order_rating_sum")
RATING_COUNT = COUNTERS.index("order_rating_count")
COMPLETE_MINUTES = COUNTERS.index("order_complete_minutes")

METRIC_GRANULARITIES: Final[tuple[Granularity, ...]] = ("day", "month", "quarter", "year", "all")

# A lineage is the tuple of unit ids from the center down to the deepest unit.
Lineage = tuple[str, ...]

_COLUMNS = ", ".join(COUNTERS)

DDL: Final = (
    """
    CREATE TABLE IF NOT EXISTS um_lineages (
        subject_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        lineage TEXT NOT NULL,
        category TEXT
    ) WITHOUT ROWID
    """,
    # period: '2026-03-31', '2026-03', '2026-Q1', '2026' or 'all' (see projections.periods)
    f"""
    CREATE TABLE IF NOT EXISTS um_counters (
        unit_id TEXT NOT NULL,
        period TEXT NOT NULL,
        {", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COUNTERS)},
        PRIMARY KEY (unit_id, period)
    ) WITHOUT ROWID
    """,
    # Distinct volunteers per (deepest unit, period), by stable codes of the ids: a
    # unit's figure is the number of distinct volunteers over the units of its subtree.
    """
    CREATE TABLE IF NOT EXISTS um_participants (
        unit INTEGER NOT NULL,
        period TEXT NOT NULL,
        volunteer INTEGER NOT NULL,
        PRIMARY KEY (unit, period, volunteer)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS um_active (
        unit INTEGER NOT NULL,
        period TEXT NOT NULL,
        volunteer INTEGER NOT NULL,
        PRIMARY KEY (unit, period, volunteer)
    ) WITHOUT ROWID
    """,
    # open service orders: the step each waits in, since when, at which unit (the
    # lineage of the unit handling it), for the overdue figure computed when read
    """
    CREATE TABLE IF NOT EXISTS um_open_orders (
        order_id TEXT PRIMARY KEY,
        lineage TEXT NOT NULL,
        step TEXT NOT NULL,
        since TEXT NOT NULL,
        placed TEXT NOT NULL,
        deadlines TEXT
    ) WITHOUT ROWID
    """,
    # every unit that ends a lineage seen, with its lineage (unit ids joined by '/')
    """
    CREATE TABLE IF NOT EXISTS um_units (
        unit_id TEXT PRIMARY KEY,
        lineage TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)

UPSERT_COUNTERS: Final = (
    f"INSERT INTO um_counters (unit_id, period, {_COLUMNS}) "  # noqa: S608 - fixed names
    f"VALUES (?, ?, {', '.join('?' for _ in COUNTERS)}) "
    "ON CONFLICT (unit_id, period) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNTERS)
)

_ZEROS: Final = (0,) * len(COUNTERS)
_CODES_LIMIT: Final = 500_000


@dataclass(slots=True)
class MetricsBatch:
    lineages: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    # (lineage, local day) -> a delta per counter
    counters: dict[tuple[Lineage, str], list[int]] = field(default_factory=dict)
    # (lineage, local day, volunteer id)
    participants: set[tuple[Lineage, str, str]] = field(default_factory=set)
    active: set[tuple[Lineage, str, str]] = field(default_factory=set)


def _load(conn: sqlite3.Connection, subject_id: str) -> Lineage:
    row = conn.execute(
        "SELECT lineage FROM um_lineages WHERE subject_id = ?", (subject_id,)
    ).fetchone()
    if row is None:
        msg = f"no lineage known for {subject_id!r}"
        raise LookupError(msg)
    return tuple(row[0].split("/"))


def stable_code(value: str) -> int:
    """A string's code: the first 63 bits of its BLAKE2b hash (a positive SQLite integer)."""
    return int.from_bytes(blake2b(value.encode(), digest_size=8).digest(), "big") >> 1


def _lineage(value: object) -> Lineage:
    if not isinstance(value, list) or not value or not all(isinstance(u, str) for u in value):
        msg = f"a unit lineage must be a non-empty list of unit ids, got {value!r}"
        raise TypeError(msg)
    return tuple(value)


def _add_missing_counters(conn: sqlite3.Connection) -> None:
    """A view built before a counter existed gains its column (zero until rebuilt)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(um_counters)")}
    for counter in COUNTERS:
        if counter not in present:
            conn.execute(f"ALTER TABLE um_counters ADD COLUMN {counter} INTEGER NOT NULL DEFAULT 0")


class UnitMetricsProjection(Projection):
    name = "unit_metrics"

    def __init__(self, *, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.clock = PeriodClock(timezone)
        # lineages are fixed when their subject is created, so cached for good:
        # activities, passbooks and redemptions by their id's UUID.int ...
        self._by_aggregate: dict[int, Lineage] = {}
        # ... and volunteers' homes by volunteer id
        self._by_volunteer: dict[str, Lineage] = {}
        self._codes: dict[str, int] = {}

    # -- schema and batches ----------------------------------------------------------

    def create_tables(self, conn: sqlite3.Connection) -> None:
        for statement in DDL:
            conn.execute(statement)
        _add_missing_counters(conn)
        remember_timezone(conn, self.clock.timezone)

    def begin_batch(self, conn: sqlite3.Connection) -> MetricsBatch:
        return MetricsBatch()

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        try:
            super().apply(conn, events)
        except BaseException:
            self._by_aggregate.clear()  # the batch rolls back: so does what it cached
            self._by_volunteer.clear()
            raise

    def flush_batch(self, conn: sqlite3.Connection, batch: MetricsBatch) -> None:
        if batch.lineages:
            insert_many(
                conn,
                "INSERT INTO um_lineages (subject_id, kind, lineage, category) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                batch.lineages,
            )
        if batch.counters:
            insert_many(conn, UPSERT_COUNTERS, self._roll_up(batch.counters))
        units: set[Lineage] = set()
        for table, members in (
            ("um_participants", batch.participants),
            ("um_active", batch.active),
        ):
            if members:
                insert_many(
                    conn,
                    f"INSERT INTO {table} (unit, period, volunteer) "  # noqa: S608
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    self._memberships(members, units),
                )
        if units:
            insert_many(
                conn,
                "INSERT INTO um_units (unit_id, lineage) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(lineage[-1], "/".join(lineage)) for lineage in units],
            )

    def _periods(self, day: str) -> tuple[str, str, str, str, str]:
        keys = self.clock.keys_of_day(day)
        return keys.day, keys.month, keys.quarter, keys.year, ALL

    def _roll_up(
        self, counters: dict[tuple[Lineage, str], list[int]]
    ) -> list[tuple[str | int, ...]]:
        """Spread each (lineage, day) delta over every period containing the day, then
        over every unit of the lineage."""
        by_period: dict[tuple[Lineage, str], list[int]] = {}
        for (lineage, day), delta in counters.items():
            for period in self._periods(day):
                total = by_period.get((lineage, period))
                by_period[lineage, period] = (
                    delta if total is None else list(map(add, total, delta))
                )
        rows: dict[tuple[str, str], list[int]] = {}
        for (lineage, period), delta in by_period.items():
            for unit in lineage:
                total = rows.get((unit, period))
                rows[unit, period] = delta if total is None else list(map(add, total, delta))
        return [(unit, period, *delta) for (unit, period), delta in rows.items()]

    def _memberships(
        self, members: set[tuple[Lineage, str, str]], units: set[Lineage]
    ) -> set[tuple[int, str, int]]:
        """(unit, period, volunteer) rows of each (lineage, day, volunteer) for the
        deepest unit of the lineage; ``units`` collects the lineages."""
        rows: set[tuple[int, str, int]] = set()
        code = self._code
        for lineage, day, vid in members:
            unit, volunteer = code(lineage[-1]), code(vid)
            units.add(lineage)
            for period in self._periods(day):
                rows.add((unit, period, volunteer))
        return rows

    def _code(self, value: str) -> int:
        code = self._codes.get(value)
        if code is None:
            if len(self._codes) >= _CODES_LIMIT:
                self._codes.clear()
            code = self._codes[value] = stable_code(value)
        return code

    # -- lookups ---------------------------------------------------------------------

    def _remember(
        self,
        batch: MetricsBatch,
        subject: UUID | str,
        kind: str,
        lineage: Lineage,
        category: str | None = None,
    ) -> None:
        """Record a subject's lineage: an aggregate's (by id) or a volunteer's home."""
        batch.lineages.append((str(subject), kind, "/".join(lineage), category))
        if isinstance(subject, UUID):
            self._by_aggregate[subject.int] = lineage
        else:
            self._by_volunteer[subject] = lineage

    def _lineage_of(self, conn: sqlite3.Connection, aggregate_id: UUID) -> Lineage:
        lineage = self._by_aggregate.get(aggregate_id.int)
        if lineage is None:
            lineage = self._by_aggregate[aggregate_id.int] = _load(conn, str(aggregate_id))
        return lineage

    def _home_of(self, conn: sqlite3.Connection, volunteer_id: str) -> Lineage:
        lineage = self._by_volunteer.get(volunteer_id)
        if lineage is None:
            lineage = self._by_volunteer[volunteer_id] = _load(conn, volunteer_id)
        return lineage

    @staticmethod
    def _count(batch: MetricsBatch, key: tuple[Lineage, str], counter: int, amount: int) -> None:
        delta = batch.counters.get(key)
        if delta is None:
            delta = batch.counters[key] = list(_ZEROS)
        delta[counter] += amount

    # -- activities ------------------------------------------------------------------

    @handles(Activity.Published)
    def published(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        lineage = _lineage(p["unit_path"])
        self._remember(batch, envelope.aggregate_id, "activity", lineage, p.get("category"))
        self._count(batch, (lineage, self.clock.day_of(envelope.recorded_at)), PUBLISHED, 1)

    def _activity_event(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope, counter: int
    ) -> None:
        lineage = self._lineage_of(conn, envelope.aggregate_id)
        self._count(batch, (lineage, self.clock.day_of(envelope.recorded_at)), counter, 1)

    @handles(Activity.Closed)
    def held(self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope) -> None:
        self._activity_event(conn, batch, envelope, HELD)

    @handles(Activity.Cancelled)
    def cancelled(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._activity_event(conn, batch, envelope, CANCELLED)

    @handles(Activity.SignedUp, Activity.PromotedFromWaitlist)
    def signed_up(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._activity_event(conn, batch, envelope, SIGNUPS)

    @handles(Activity.SignupCancelled)
    def signup_cancelled(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._activity_event(conn, batch, envelope, SIGNUPS_CANCELLED)

    @handles(Activity.Waitlisted)
    def waitlisted(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._activity_event(conn, batch, envelope, WAITLISTED)

    @handles(Activity.ServiceConfirmed)
    def service_confirmed(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        vid = p["volunteer_id"]
        lineage = self._lineage_of(conn, envelope.aggregate_id)
        home = self._home_of(conn, vid)
        day = self.clock.day_of(envelope.recorded_at)
        key = (lineage, day)
        delta = batch.counters.get(key)
        if delta is None:
            delta = batch.counters[key] = list(_ZEROS)
        delta[SERVICES] += 1
        delta[MINUTES] += p["minutes"]
        delta[PEOPLE] += p["people_served"]
        batch.participants.add((lineage, day, vid))
        batch.active.add((home, day, vid))

    # corrections count in the period of the service they correct (``service_at``);
    # extra points arrive as a back-dated PointsAwarded (kind "correction")

    @handles(Activity.ServiceCorrected)
    def service_corrected(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        lineage = self._lineage_of(conn, envelope.aggregate_id)
        day = self.clock.day_of_iso(p["service_at"])
        self._count(batch, (lineage, day), MINUTES, p["new_minutes"] - p["old_minutes"])

    @handles(Passbook.CorrectionDebited)
    def correction_debited(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        home = self._lineage_of(conn, envelope.aggregate_id)
        day = self.clock.day_of_iso(envelope.payload["service_at"])
        self._count(batch, (home, day), DEDUCTED, envelope.payload["points"])

    # -- volunteers and points -------------------------------------------------------

    @handles(Volunteer.Registered)
    def registered(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        home = _lineage(envelope.payload["home_path"])
        self._remember(batch, str(envelope.aggregate_id), "volunteer", home)
        self._count(batch, (home, self.clock.day_of(envelope.recorded_at)), REGISTERED, 1)

    @handles(Passbook.Opened)
    def passbook_opened(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._remember(
            batch, envelope.aggregate_id, "passbook", _lineage(envelope.payload["home_path"])
        )

    @handles(Passbook.PointsAwarded)
    def points_awarded(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        home = self._lineage_of(conn, envelope.aggregate_id)
        self._count(batch, (home, self.clock.day_of_iso(p["awarded_at"])), AWARDED, p["points"])

    def _passbook_event(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope, counter: int
    ) -> None:
        home = self._lineage_of(conn, envelope.aggregate_id)
        day = self.clock.day_of(envelope.recorded_at)
        self._count(batch, (home, day), counter, envelope.payload["points"])

    @handles(Passbook.PointsDeducted)
    def points_deducted(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._passbook_event(conn, batch, envelope, DEDUCTED)

    @handles(Passbook.PointsRedeemed)
    def points_redeemed(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._passbook_event(conn, batch, envelope, REDEEMED)

    @handles(Passbook.RedemptionRefunded)
    def redemption_refunded(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        home = self._lineage_of(conn, envelope.aggregate_id)
        day = self.clock.day_of(envelope.recorded_at)
        self._count(batch, (home, day), REDEEMED, -envelope.payload["points"])

    @handles(Passbook.PointsExpired)
    def points_expired(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._passbook_event(conn, batch, envelope, EXPIRED)

    # -- redemptions -----------------------------------------------------------------

    @handles(Redemption.Requested)
    def redemption_requested(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        lineage = _lineage(envelope.payload["unit_path"])
        self._remember(batch, envelope.aggregate_id, "redemption", lineage)
        self._count(batch, (lineage, self.clock.day_of(envelope.recorded_at)), REQUESTED, 1)

    @handles(Redemption.Cancelled)
    def redemption_cancelled(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        lineage = self._lineage_of(conn, envelope.aggregate_id)
        day = self.clock.day_of(envelope.recorded_at)
        self._count(batch, (lineage, day), REDEMPTIONS_CANCELLED, 1)

    @handles(Redemption.Fulfilled)
    def redemption_fulfilled(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        lineage = self._lineage_of(conn, envelope.aggregate_id)
        self._count(batch, (lineage, self.clock.day_of(envelope.recorded_at)), FULFILLED, 1)

    # -- micro-wishes, venture calls, charity funds ------------------------------------

    def _created(
        self, batch: MetricsBatch, envelope: EventEnvelope, kind: str, counter: int | None
    ) -> None:
        lineage = _lineage(envelope.payload["unit_path"])
        self._remember(batch, envelope.aggregate_id, kind, lineage)
        if counter is not None:
            self._count(batch, (lineage, self.clock.day_of(envelope.recorded_at)), counter, 1)

    def _add(
        self,
        conn: sqlite3.Connection,
        batch: MetricsBatch,
        envelope: EventEnvelope,
        counter: int,
        amount: int = 1,
    ) -> None:
        lineage = self._lineage_of(conn, envelope.aggregate_id)
        self._count(batch, (lineage, self.clock.day_of(envelope.recorded_at)), counter, amount)

    @handles(Wish.Posted)
    def wish_posted(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._created(batch, envelope, "wish", WISHES_POSTED)

    @handles(Wish.Confirmed)
    def wish_fulfilled(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._add(conn, batch, envelope, WISHES_FULFILLED)

    @handles(Wish.Cancelled)
    def wish_cancelled(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._add(conn, batch, envelope, WISHES_CANCELLED)

    @handles(VentureCall.Opened)
    def venture_call_opened(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._created(batch, envelope, "venture_call", None)

    @handles(VentureCall.ProjectSubmitted)
    def venture_project_submitted(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._add(conn, batch, envelope, PROJECTS_SUBMITTED)

    @handles(VentureCall.ProjectFunded)
    def venture_project_funded(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._add(conn, batch, envelope, PROJECTS_FUNDED)
        self._add(conn, batch, envelope, FUNDED_FEN, envelope.payload["amount_fen"])

    @handles(Fund.Opened)
    def fund_opened(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._created(batch, envelope, "fund", None)

    @handles(Fund.MoneyReceived)
    def fund_received(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._add(conn, batch, envelope, FUND_IN, envelope.payload["amount_fen"])

    @handles(Fund.MoneyDisbursed)
    def fund_disbursed(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._add(conn, batch, envelope, FUND_OUT, envelope.payload["amount_fen"])

    # -- service orders --------------------------------------------------------------
    # An order counts where it is handled: received at the unit it was placed with;
    # dispatched, declined, completed and rated at the unit handling it then (the
    # receiving unit or, once passed down, a unit below it), so the receiving unit's
    # figures include all of them.

    def _order_lineage(
        self, conn: sqlite3.Connection, order_id: UUID, lineage: Lineage | None = None
    ) -> Lineage:
        if lineage is None:
            return self._lineage_of(conn, order_id)
        conn.execute(
            "INSERT INTO um_lineages (subject_id, kind, lineage, category) "
            "VALUES (?, 'order', ?, NULL) "
            "ON CONFLICT (subject_id) DO UPDATE SET lineage = excluded.lineage",
            (str(order_id), "/".join(lineage)),
        )
        self._by_aggregate[order_id.int] = lineage
        return lineage

    @staticmethod
    def _open_step(
        conn: sqlite3.Connection, order_id: UUID, step: str | None, since: str | None = None
    ) -> None:
        """The step an open order now waits in (None: the order is closed)."""
        if step is None:
            conn.execute("DELETE FROM um_open_orders WHERE order_id = ?", (str(order_id),))
        else:
            conn.execute(
                "UPDATE um_open_orders SET step = ?, since = ? WHERE order_id = ?",
                (step, since, str(order_id)),
            )

    def _order_count(
        self,
        conn: sqlite3.Connection,
        batch: MetricsBatch,
        envelope: EventEnvelope,
        counter: int | None,
        step: str | None,
    ) -> Lineage:
        lineage = self._order_lineage(conn, envelope.aggregate_id)
        at = envelope.payload["at"]
        if counter is not None:
            self._count(batch, (lineage, self.clock.day_of_iso(at)), counter, 1)
        self._open_step(conn, envelope.aggregate_id, step, at)
        return lineage

    @handles(ServiceOrder.Placed)
    def order_placed(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        lineage = self._order_lineage(conn, envelope.aggregate_id, _lineage(p["unit_path"]))
        self._count(batch, (lineage, self.clock.day_of_iso(p["at"])), ORDERS_RECEIVED, 1)
        deadlines = p.get("deadline_minutes")
        conn.execute(
            "INSERT INTO um_open_orders (order_id, lineage, step, since, placed, deadlines) "
            "VALUES (?, ?, 'review', ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                str(envelope.aggregate_id),
                "/".join(lineage),
                p["at"],
                p["at"],
                json.dumps(deadlines) if deadlines else None,
            ),
        )

    @handles(ServiceOrder.Approved)
    def order_approved(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._order_count(conn, batch, envelope, None, "dispatch")

    @handles(ServiceOrder.Rejected)
    def order_rejected(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._order_count(conn, batch, envelope, ORDERS_REJECTED, None)

    @handles(ServiceOrder.PassedDown)
    def order_passed_down(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        lineage = _lineage(p["unit_path"])
        self._order_lineage(conn, envelope.aggregate_id, lineage)
        conn.execute(
            "UPDATE um_open_orders SET lineage = ?, since = ? WHERE order_id = ?",
            ("/".join(lineage), p["at"], str(envelope.aggregate_id)),
        )

    @handles(ServiceOrder.Dispatched)
    def order_dispatched(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._order_count(conn, batch, envelope, ORDERS_DISPATCHED, "accept")

    @handles(ServiceOrder.TakenByTeam)
    def order_taken(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._order_count(conn, batch, envelope, ORDERS_DISPATCHED, "complete")

    @handles(ServiceOrder.AcceptedByTeam)
    def order_accepted(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._order_count(conn, batch, envelope, None, "complete")

    @handles(ServiceOrder.DeclinedByTeam)
    def order_declined(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        self._order_count(conn, batch, envelope, ORDERS_DECLINED, "dispatch")

    @handles(ServiceOrder.Completed)
    def order_completed(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        p = envelope.payload
        row = conn.execute(
            "SELECT placed FROM um_open_orders WHERE order_id = ?", (str(envelope.aggregate_id),)
        ).fetchone()
        lineage = self._order_count(conn, batch, envelope, ORDERS_COMPLETED, None)
        day = self.clock.day_of_iso(p["at"])
        delta = batch.counters.get((lineage, day))
        assert delta is not None  # noqa: S101 - just counted
        delta[ORDER_PEOPLE] += p["people_served"]
        if row is not None:  # time to complete: from placing to completion
            placed = datetime.fromisoformat(row[0])
            minutes = (datetime.fromisoformat(p["at"]) - placed).total_seconds() // 60
            delta[COMPLETE_MINUTES] += int(minutes)
        for vid, minutes in p["services"]:
            delta[ORDER_MINUTES] += minutes
            batch.participants.add((lineage, day, vid))
            batch.active.add((self._home_of(conn, vid), day, vid))

    @handles(ServiceOrder.Rated)
    def order_rated(
        self, conn: sqlite3.Connection, batch: MetricsBatch, envelope: EventEnvelope
    ) -> None:
        lineage = self._order_lineage(conn, envelope.aggregate_id)
        key = (lineage, self.clock.day_of_iso(envelope.payload["at"]))
        self._count(batch, key, RATING_COUNT, 1)
        self._count(batch, key, RATING_SUM, envelope.payload["stars"])


# -- queries -------------------------------------------------------------------------


class UnitMetrics(BaseModel):
    """A unit's figures for one period (its own and its whole subtree's)."""

    model_config = ConfigDict(frozen=True)

    unit_id: str
    granularity: Granularity
    period_key: str
    activities_published: int = 0
    activities_held: int = 0
    activities_cancelled: int = 0
    signups: int = 0
    signups_cancelled: int = 0
    waitlisted: int = 0
    services_confirmed: int = 0
    service_minutes: int = 0
    service_hours: float = 0.0
    people_served: int = 0
    participants: int = 0
    points_awarded: int = 0
    points_deducted: int = 0
    points_redeemed: int = 0
    points_expired: int = 0
    redemptions_requested: int = 0
    redemptions_cancelled: int = 0
    redemptions_fulfilled: int = 0
    active_volunteers: int = 0
    volunteers_registered: int = 0
    wishes_posted: int = 0
    wishes_fulfilled: int = 0
    wishes_cancelled: int = 0
    venture_projects_submitted: int = 0
    venture_projects_funded: int = 0
    venture_funded_fen: int = 0
    fund_in_fen: int = 0
    fund_out_fen: int = 0
    fund_net_fen: int = Field(
        default=0, description="fund money in − out; for granularity all, the funds' balance"
    )
    # service orders (counters, by the business time of each step)
    orders_received: int = 0
    orders_rejected: int = 0
    orders_dispatched: int = Field(default=0, description="dispatches and first-come takes")
    orders_declined: int = 0
    orders_completed: int = 0
    order_service_minutes: int = Field(default=0, description="volunteers' time on orders")
    order_people_served: int = 0
    order_rating_sum: int = 0
    order_rating_count: int = 0
    average_rating: float | None = Field(default=None, description="of the ratings given")
    order_complete_minutes: int = Field(
        default=0, description="sum over completed orders of the minutes from placing"
    )
    average_complete_hours: float | None = Field(
        default=None, description="average time from placing to completion"
    )
    # not counters: open orders now, filled in for the current period only
    orders_open: int | None = Field(
        default=None, description="orders open now (current period only)"
    )
    orders_overdue: int | None = Field(
        default=None,
        description="open orders past their step's deadline now (current period only)",
    )


def _check_granularity(granularity: str) -> None:
    if granularity not in METRIC_GRANULARITIES:
        msg = f"unit metrics are kept per {', '.join(METRIC_GRANULARITIES)}, not {granularity!r}"
        raise ValueError(msg)


def _subtree(conn: sqlite3.Connection, unit_id: str) -> list[int]:
    """Codes of the deepest units of every lineage through the unit (its subtree)."""
    rows = conn.execute(
        f"SELECT unit_id FROM um_units WHERE {subtree.in_subtree()}",  # noqa: S608 - fixed SQL
        (subtree.pattern(unit_id),),
    )
    return [stable_code(r[0]) for r in rows]


def _chunks(keys: list[str], size: int = 400) -> list[list[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def series(
    conn: sqlite3.Connection,
    unit_id: str,
    granularity: Granularity,
    start_key: str,
    end_key: str,
    *,
    deadlines: OrderDeadlines | None = None,
    now: datetime | None = None,
) -> list[UnitMetrics]:
    """One report per period from ``start_key`` to ``end_key`` (both included),
    periods without events included as zeros. With ``deadlines``, the period that
    contains ``now`` (default: the clock) also reports the orders open and overdue."""
    _check_granularity(granularity)
    keys = keys_between(granularity, start_key, end_key)
    subtree = _subtree(conn, unit_id)
    counters: dict[str, dict[str, int]] = {}
    distinct: dict[str, dict[str, int]] = {k: {} for k in keys}
    for chunk in _chunks(keys):
        marks = ", ".join("?" for _ in chunk)
        for row in conn.execute(
            f"SELECT period, {_COLUMNS} FROM um_counters "  # noqa: S608 - fixed names
            f"WHERE unit_id = ? AND period IN ({marks})",
            (unit_id, *chunk),
        ):
            counters[row[0]] = dict(zip(COUNTERS, row[1:], strict=True))
        if not subtree:
            continue
        units = ", ".join("?" for _ in subtree)
        for table, figure in (
            ("um_participants", "participants"),
            ("um_active", "active_volunteers"),
        ):
            for period, count in conn.execute(
                f"SELECT period, COUNT(DISTINCT volunteer) FROM {table} "  # noqa: S608
                f"WHERE unit IN ({units}) AND period IN ({marks}) GROUP BY period",
                (*subtree, *chunk),
            ):
                distinct[period][figure] = count
    current: tuple[str, dict[str, int]] | None = None
    if deadlines is not None:
        key = PeriodClock(recall_timezone(conn)).current(granularity, now)
        current = key, open_orders(conn, unit_id, deadlines, now)
    reports = []
    for key in keys:
        figures = counters.get(key, {})
        minutes = figures.get("service_minutes", 0)
        ratings, completed = (
            figures.get("order_rating_count", 0),
            figures.get("orders_completed", 0),
        )
        reports.append(
            UnitMetrics(
                unit_id=unit_id,
                granularity=granularity,
                period_key=key,
                service_hours=round(minutes / 60, 2),
                fund_net_fen=figures.get("fund_in_fen", 0) - figures.get("fund_out_fen", 0),
                average_rating=(
                    round(figures["order_rating_sum"] / ratings, 2) if ratings else None
                ),
                average_complete_hours=(
                    round(figures["order_complete_minutes"] / completed / 60, 2)
                    if completed
                    else None
                ),
                **figures,
                **distinct[key],
                **(current[1] if current is not None and current[0] == key else {}),
            )
        )
    return reports


def open_orders(
    conn: sqlite3.Connection,
    unit_id: str,
    deadlines: OrderDeadlines,
    now: datetime | None = None,
) -> dict[str, int]:
    """Orders open now in the unit's subtree (where they are handled), and how many
    are past the deadline of the step they wait in (computed now, not counted)."""
    at = now or datetime.now(UTC)
    rows = conn.execute(
        f"SELECT step, since, deadlines FROM um_open_orders WHERE {subtree.in_subtree()}",  # noqa: S608 - fixed SQL
        (subtree.pattern(unit_id),),
    ).fetchall()
    overdue = 0
    for step, since, override in rows:
        minutes = deadlines.minutes(step, json.loads(override) if override else None)
        if at > datetime.fromisoformat(since) + timedelta(minutes=minutes):
            overdue += 1
    return {"orders_open": len(rows), "orders_overdue": overdue}


def metrics(
    conn: sqlite3.Connection,
    unit_id: str,
    granularity: Granularity = "all",
    period_key: str | None = None,
    *,
    now: datetime | None = None,
    deadlines: OrderDeadlines | None = None,
) -> UnitMetrics:
    """A unit's figures for one period; ``period_key`` defaults to the current period
    in the view's timezone (``now`` overrides the clock, for tests)."""
    _check_granularity(granularity)
    if period_key is None:
        period_key = PeriodClock(recall_timezone(conn)).current(granularity, now)
    validate_key(granularity, period_key)
    return series(conn, unit_id, granularity, period_key, period_key, deadlines=deadlines, now=now)[
        0
    ]
