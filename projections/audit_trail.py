"""The audit trail (操作留痕): every event, who caused it, and what it concerned.

One row per event of every type, in stream order, with a summary of its payload
from which personal data (names, phone numbers, masked document numbers) has
been removed. Each row is tagged with the volunteer it concerns (from the
payload, the volunteer's own events, or the passbook or redemption it belongs to)
and with the unit lineage of its aggregate (activity, reward, passbook...), so a
search by unit returns the events of the unit's whole subtree.

The trail is the largest view (a row per event) and the one most written to, so
rows are compact: strings that repeat (actors, aggregate and volunteer ids,
event types, lineages) are stored once in dictionary tables and referred to by a
stable 63-bit code (a hash of the string), which is also what the filter indexes
hold. Codes need no look-up to compute, so a query codes its filter values the
same way.
"""

from __future__ import annotations

import importlib
import json
import json.encoder
import pkgutil
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

import domain
from domain.base import CivicAggregate
from infra.sqlite_rows import insert_many
from projections import subtree
from projections.base import Projection, handles
from projections.envelope import EventEnvelope
from projections.periods import DEFAULT_TIMEZONE

PERSONAL_FIELDS: Final = frozenset(
    {
        "name",
        "phone",
        "document_masked",
        # micro-wishes: the resident's reference and a member claimant's reference
        "resident_ref",
        "claimant_ref",
        # charity funds: who gave the money
        "donor",
        # a service order's resident (ServiceOrder.Placed)
        "resident_name",
        "resident_phone",
        "address",
    }
)
MAX_TEXT: Final = 500  # longer free text (descriptions, notes) is cut in summaries
MAX_PAGE: Final = 1000
_MEMO_LIMIT: Final = 500_000

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _compact_json_encoder() -> Callable[[Any], str]:
    """``json.dumps(o, ensure_ascii=False, separators=(",", ":"))``, with the C encoder
    built once rather than on every call (as ``JSONEncoder.encode`` does)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator in this interpreter
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def unserialisable(value: object) -> None:
        msg = f"{value!r} is not JSON serialisable"
        raise TypeError(msg)

    encoder = make(
        None, unserialisable, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


_encode = _compact_json_encoder()

# the base event classes the library gives every aggregate class
_LIBRARY_BASES: Final = frozenset({"Event", "Created"})


def domain_event_classes() -> list[type[CivicAggregate.Event]]:
    """Every event class declared by an aggregate in the ``domain`` package."""
    found: list[type[CivicAggregate.Event]] = []
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"{domain.__name__}.{info.name}")
        for aggregate in vars(module).values():
            if not (
                isinstance(aggregate, type)
                and issubclass(aggregate, CivicAggregate)
                and aggregate.__module__ == module.__name__
            ):
                continue
            for member in vars(aggregate).values():
                if (
                    isinstance(member, type)
                    and issubclass(member, CivicAggregate.Event)
                    and member.__qualname__.startswith(f"{aggregate.__qualname__}.")
                    and member.__name__ not in _LIBRARY_BASES
                    and member not in found
                ):
                    found.append(member)
    return found


def stable_code(value: str) -> int:
    """A string's code: the first 63 bits of its BLAKE2b hash (a positive SQLite integer)."""
    return int.from_bytes(blake2b(value.encode(), digest_size=8).digest(), "big") >> 1


DDL: Final = (
    """
    CREATE TABLE IF NOT EXISTS audit_events (
        position INTEGER PRIMARY KEY,
        recorded_us INTEGER NOT NULL,  -- microseconds since the epoch, UTC
        actor INTEGER NOT NULL,        -- audit_names
        aggregate INTEGER NOT NULL,    -- audit_names
        aggregate_version INTEGER NOT NULL,
        type INTEGER NOT NULL,         -- audit_types
        volunteer INTEGER,             -- audit_names
        lineage INTEGER,               -- audit_lineages
        summary TEXT NOT NULL
    )
    """,
    # the positions recorded in each hour: a time window becomes a position range
    # (recording times and positions agree but for a few concurrent commands)
    """
    CREATE TABLE IF NOT EXISTS audit_hours (
        hour INTEGER PRIMARY KEY,  -- hours since the epoch, UTC
        first_position INTEGER NOT NULL,
        last_position INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS audit_names (
        code INTEGER PRIMARY KEY,
        name TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS audit_types (
        code INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        aggregate_type TEXT NOT NULL,
        event_type TEXT NOT NULL
    )
    """,
    # unit ids from the center down, joined with '/'
    """
    CREATE TABLE IF NOT EXISTS audit_lineages (
        code INTEGER PRIMARY KEY,
        lineage TEXT NOT NULL
    )
    """,
    # what each aggregate concerns, from its creation event
    """
    CREATE TABLE IF NOT EXISTS audit_subjects (
        aggregate INTEGER PRIMARY KEY,
        volunteer INTEGER,
        lineage INTEGER
    )
    """,
)

# the filters' indexes (reads only: see Projection.read_indexes)
READ_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS audit_by_volunteer ON audit_events (volunteer, position) "
    "WHERE volunteer IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS audit_by_lineage ON audit_events (lineage, position) "
    "WHERE lineage IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS audit_by_actor ON audit_events (actor, position)",
    "CREATE INDEX IF NOT EXISTS audit_by_type ON audit_events (type, position)",
)

INSERT_EVENT: Final = (
    "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


class _Dictionary:
    """Codes of the strings of one dictionary table, and which of them the table
    is known to hold. Strings first seen in a batch are written with it, and are
    known once the batch's transaction is known to have committed."""

    def __init__(self) -> None:
        self.known: dict[str, int] = {}
        self.new: dict[str, int] = {}
        self.unconfirmed: dict[str, int] = {}

    def code(self, value: str) -> int:
        code = self.known.get(value)
        if code is None:
            code = self.new.get(value)
            if code is None:
                if not isinstance(value, str):
                    msg = f"expected a string, got {value!r}"
                    raise TypeError(msg)
                code = self.new[value] = stable_code(value)
        return code

    def flushed(self) -> None:
        self.unconfirmed, self.new = self.new, {}

    def settle(self, committed: bool) -> None:
        if committed:
            if len(self.known) + len(self.unconfirmed) > _MEMO_LIMIT:
                self.known.clear()
            self.known.update(self.unconfirmed)
        self.unconfirmed = {}
        self.new = {}


@dataclass(slots=True)
class AuditBatch:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    subjects: list[tuple[int, int | None, int | None]] = field(default_factory=list)


def summarise(payload: dict[str, Any]) -> str:
    """The payload as compact JSON, without personal fields, long texts cut short."""
    summary = payload
    if not PERSONAL_FIELDS.isdisjoint(payload):
        summary = {k: v for k, v in payload.items() if k not in PERSONAL_FIELDS}
    text = _encode(summary)
    if len(text) > MAX_TEXT:  # some text may be too long: cut it short
        summary = {
            k: v[:MAX_TEXT] + "…" if v.__class__ is str and len(v) > MAX_TEXT else v
            for k, v in summary.items()
        }
        text = _encode(summary)
    return text


# (aggregate code, volunteer code, lineage code) of an aggregate
Subject = tuple[int, int | None, int | None]


class AuditTrailProjection(Projection):
    name = "audit_trail"
    read_indexes = READ_INDEXES
    takes_every_event = True  # also types this code predates (see ``apply``)

    def __init__(self, *, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.timezone = timezone  # accepted like every projection's; times are kept in UTC
        self.names = _Dictionary()
        self.types = _Dictionary()
        self.lineages = _Dictionary()
        self._subjects: dict[int, Subject] = {}  # by the aggregate id's UUID.int
        # the last row of the last batch written, until it is known to be committed
        self._unsettled_position: int | None = None

    @property
    def _dictionaries(self) -> tuple[_Dictionary, _Dictionary, _Dictionary]:
        return self.names, self.types, self.lineages

    def create_tables(self, conn: sqlite3.Connection) -> None:
        for statement in DDL:
            conn.execute(statement)

    def begin_batch(self, conn: sqlite3.Connection) -> AuditBatch:
        return AuditBatch()

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        """Every event is recorded, whatever its type (also types this code predates)."""
        self._settle(conn)
        batch = self.begin_batch(conn)
        try:
            self._record_all(conn, batch, events)
            self.flush_batch(conn, batch)
        except BaseException:
            self._forget()
            raise
        if batch.rows:
            self._unsettled_position = batch.rows[-1][0]

    def _record_all(
        self, conn: sqlite3.Connection, batch: AuditBatch, events: Iterable[EventEnvelope]
    ) -> None:
        """A row per event. It runs once per event of the whole history, so look-ups
        are bound once per batch and known codes read straight from the dictionaries."""
        append = batch.rows.append
        subjects = self._subjects.get
        known_name, name_code = self.names.known.get, self.names.code
        known_type, type_code = self.types.known.get, self.types.code
        for envelope in events:
            subject = subjects(envelope.aggregate_id.int)
            if subject is None:
                subject = self._subject(conn, batch, envelope)
            aggregate, volunteer, lineage = subject
            payload = envelope.payload
            volunteer_id = payload.get("volunteer_id")
            if volunteer_id is not None:
                volunteer = known_name(volunteer_id)
                if volunteer is None:
                    volunteer = name_code(volunteer_id)
            actor = known_name(envelope.actor)
            if actor is None:
                actor = name_code(envelope.actor)
            kind = known_type(envelope.type)
            if kind is None:
                kind = type_code(envelope.type)
            append(
                (
                    envelope.position,
                    round(envelope.recorded_at.timestamp() * 1_000_000),
                    actor,
                    aggregate,
                    envelope.aggregate_version,
                    kind,
                    volunteer,
                    lineage,
                    summarise(payload),
                )
            )

    def _settle(self, conn: sqlite3.Connection) -> None:
        """Did the last batch commit? Its new strings are known to be stored only then."""
        position, self._unsettled_position = self._unsettled_position, None
        if position is None:
            return
        committed = (
            conn.execute("SELECT 1 FROM audit_events WHERE position = ?", (position,)).fetchone()
            is not None
        )
        if committed:
            for dictionary in self._dictionaries:
                dictionary.settle(committed=True)
        else:
            self._forget()

    def _forget(self) -> None:
        for dictionary in self._dictionaries:
            dictionary.settle(committed=False)
        self._subjects.clear()

    def flush_batch(self, conn: sqlite3.Connection, batch: AuditBatch) -> None:
        if self.names.new:
            insert_many(
                conn,
                "INSERT INTO audit_names (code, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(code, name) for name, code in self.names.new.items()],
            )
        if self.types.new:
            insert_many(
                conn,
                "INSERT INTO audit_types (code, topic, aggregate_type, event_type) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(code, topic, *_qualname(topic)) for topic, code in self.types.new.items()],
            )
        if self.lineages.new:
            insert_many(
                conn,
                "INSERT INTO audit_lineages (code, lineage) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(code, lineage) for lineage, code in self.lineages.new.items()],
            )
        if batch.subjects:
            insert_many(
                conn,
                "INSERT INTO audit_subjects (aggregate, volunteer, lineage) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                batch.subjects,
            )
        if batch.rows:
            insert_many(conn, INSERT_EVENT, batch.rows)
            insert_many(
                conn,
                "INSERT INTO audit_hours (hour, first_position, last_position) VALUES (?, ?, ?) "
                "ON CONFLICT (hour) DO UPDATE SET "
                "first_position = MIN(first_position, excluded.first_position), "
                "last_position = MAX(last_position, excluded.last_position)",
                _hours(batch.rows),
            )
        for dictionary in self._dictionaries:
            dictionary.flushed()

    def _subject(
        self, conn: sqlite3.Connection, batch: AuditBatch, envelope: EventEnvelope
    ) -> Subject:
        aggregate_id = envelope.aggregate_id
        aggregate = self.names.code(str(aggregate_id))
        subject: Subject
        if envelope.aggregate_version == 1:  # a creation event names what it concerns
            p = envelope.payload
            if "path" in p:  # a practice unit: its ancestors, then itself
                lineage = [*p["path"], str(aggregate_id)]
            else:
                lineage = p.get("unit_path") or p.get("home_path") or []
            if not isinstance(lineage, list) or not all(isinstance(u, str) for u in lineage):
                msg = f"a unit lineage must be a list of unit ids, got {lineage!r}"
                raise TypeError(msg)
            volunteer = (
                str(aggregate_id)
                if envelope.aggregate_type == "Volunteer"
                else p.get("volunteer_id")
            )
            subject = (
                aggregate,
                None if volunteer is None else self.names.code(volunteer),
                self.lineages.code("/".join(lineage)) if lineage else None,
            )
            batch.subjects.append(subject)
        else:
            row = conn.execute(
                "SELECT volunteer, lineage FROM audit_subjects WHERE aggregate = ?", (aggregate,)
            ).fetchone()
            subject = (aggregate, None, None) if row is None else (aggregate, row[0], row[1])
        self._subjects[aggregate_id.int] = subject
        return subject

    @handles(*domain_event_classes())
    def record(self, conn: sqlite3.Connection, batch: AuditBatch, envelope: EventEnvelope) -> None:
        self._record_all(conn, batch, (envelope,))


_HOUR_US: Final = 3_600_000_000


def _hours(rows: list[tuple[Any, ...]]) -> list[tuple[int, int, int]]:
    """(hour, first position, last position) of the rows (position, recorded_us, ...)."""
    hours: dict[int, list[int]] = {}
    for row in rows:
        position, hour = row[0], row[1] // _HOUR_US
        span = hours.get(hour)
        if span is None:
            hours[hour] = [position, position]
        elif position < span[0]:
            span[0] = position
        elif position > span[1]:
            span[1] = position
    return [(hour, first, last) for hour, (first, last) in hours.items()]


def _qualname(topic: str) -> tuple[str, str]:
    """('Passbook', 'PointsAwarded') of 'domain.passbook:Passbook.PointsAwarded'."""
    aggregate_type, _, event_type = topic.rpartition(":")[2].rpartition(".")
    return aggregate_type, event_type


# -- queries -------------------------------------------------------------------------


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    position: int
    recorded_at: datetime
    actor: str
    aggregate_id: str
    aggregate_version: int
    aggregate_type: str
    event_type: str
    topic: str
    volunteer_id: str | None
    unit_id: str | None  # the deepest unit of the lineage
    lineage: list[str]  # center first
    summary: dict[str, Any]


class Page(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[AuditEntry]
    next_after_position: int | None  # pass back as after_position; None on the last page


_SELECT: Final = (
    "SELECT position, recorded_us, actor, aggregate, aggregate_version, type, volunteer, "
    "lineage, summary FROM audit_events"
)


def _micros(at: datetime) -> int:
    if at.tzinfo is None:
        msg = "since and until must be timezone-aware"
        raise ValueError(msg)
    return round(at.timestamp() * 1_000_000)


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _type_codes(conn: sqlite3.Connection, event_type: str) -> list[int]:
    if ":" in event_type:  # a full topic, e.g. 'domain.passbook:Passbook.PointsAwarded'
        return [stable_code(event_type)]
    if "." in event_type:  # 'Passbook.PointsAwarded'
        aggregate_type, _, name = event_type.rpartition(".")
        rows = conn.execute(
            "SELECT code FROM audit_types WHERE aggregate_type = ? AND event_type = ?",
            (aggregate_type, name),
        )
    else:  # 'PointsAwarded'
        rows = conn.execute("SELECT code FROM audit_types WHERE event_type = ?", (event_type,))
    return [int(r[0]) for r in rows]


def _subtree_codes(conn: sqlite3.Connection, unit_id: str) -> list[int]:
    """Codes of every lineage that passes through the unit (its whole subtree)."""
    rows = conn.execute(
        f"SELECT code FROM audit_lineages WHERE {subtree.in_subtree()}",  # noqa: S608 - fixed SQL
        (subtree.pattern(unit_id),),
    )
    return [int(r[0]) for r in rows]


def _in(column: str, codes: list[int]) -> tuple[str, list[object]]:
    if len(codes) == 1:
        return f"{column} = ?", [codes[0]]
    return f"{column} IN ({_marks(codes)})", list(codes)


def _decode(
    conn: sqlite3.Connection, table: str, columns: str, codes: Iterable[int | None]
) -> dict[int, tuple[Any, ...]]:
    wanted = sorted({c for c in codes if c is not None})
    found: dict[int, tuple[Any, ...]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for row in conn.execute(
            f"SELECT code, {columns} FROM {table} WHERE code IN ({_marks(chunk)})",  # noqa: S608 - fixed names
            chunk,
        ):
            found[int(row[0])] = tuple(row[1:])
    return found


def search(
    conn: sqlite3.Connection,
    *,
    volunteer_id: str | None = None,
    unit_id: str | None = None,
    actor: str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_position: int | None = None,
    limit: int = 100,
) -> Page:
    """Events matching every given filter, in stream order, one page at a time.

    ``unit_id`` matches the unit's whole subtree; ``type`` is an event name
    (``PointsAwarded``), a qualified name (``Passbook.PointsAwarded``) or a full
    topic; ``since`` is inclusive and ``until`` exclusive. Pass a page's
    ``next_after_position`` as ``after_position`` to get the next page.
    """
    conditions: list[str] = []
    args: list[object] = []
    if volunteer_id is not None:
        conditions.append("volunteer = ?")
        args.append(stable_code(volunteer_id))
    if actor is not None:
        conditions.append("actor = ?")
        args.append(stable_code(actor))
    for column, codes in (
        ("type", None if type is None else _type_codes(conn, type)),
        ("lineage", None if unit_id is None else _subtree_codes(conn, unit_id)),
    ):
        if codes is None:
            continue
        if not codes:
            return Page(items=[], next_after_position=None)
        condition, values = _in(column, codes)
        conditions.append(condition)
        args.extend(values)
    if since is not None:
        start = _micros(since)
        conditions.append(
            "position >= (SELECT COALESCE(MIN(first_position), 9e18) FROM audit_hours "
            "WHERE hour >= ?) AND recorded_us >= ?"
        )
        args.extend((start // _HOUR_US, start))
    if until is not None:
        end = _micros(until)
        conditions.append(
            "position <= (SELECT COALESCE(MAX(last_position), 0) FROM audit_hours "
            "WHERE hour <= ?) AND recorded_us < ?"
        )
        args.extend((end // _HOUR_US, end))
    if after_position is not None:
        conditions.append("position > ?")
        args.append(after_position)
    limit = min(max(limit, 1), MAX_PAGE)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    rows = conn.execute(
        f"{_SELECT} {where}ORDER BY position LIMIT ?", (*args, limit + 1)
    ).fetchall()
    page = rows[:limit]
    names = _decode(conn, "audit_names", "name", (c for r in page for c in (r[2], r[3], r[6])))
    types = _decode(conn, "audit_types", "topic, aggregate_type, event_type", (r[5] for r in page))
    lineages = _decode(conn, "audit_lineages", "lineage", (r[7] for r in page))
    items = []
    for row in page:
        topic, aggregate_type, event_type = types[row[5]]
        lineage = lineages[row[7]][0].split("/") if row[7] is not None else []
        items.append(
            AuditEntry(
                position=row[0],
                recorded_at=_EPOCH + timedelta(microseconds=row[1]),
                actor=names[row[2]][0],
                aggregate_id=names[row[3]][0],
                aggregate_version=row[4],
                aggregate_type=aggregate_type,
                event_type=event_type,
                topic=topic,
                volunteer_id=names[row[6]][0] if row[6] is not None else None,
                unit_id=lineage[-1] if lineage else None,
                lineage=lineage,
                summary=json.loads(row[8]),
            )
        )
    more = len(rows) > limit
    return Page(items=items, next_after_position=items[-1].position if more else None)
