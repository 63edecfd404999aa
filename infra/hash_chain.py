"""The hash chain over the event store: tamper evidence for the whole history.

Every recorded event gets a link in ``event_chain``, written by the recorder in
the same transaction (and, on SQLite, the same savepoint) as the event itself::

    hash(n) = SHA-256( hash(prev) || canonical(n) )

where ``prev`` is the event recorded just before ``n`` in notification-id order
(``GENESIS`` for the first) and ``canonical(n)`` are the stored row's bytes:
position, aggregate id, aggregate version, topic and state, each fixed-width or
length-prefixed. Each link also keeps the previous position (so a deleted event
is told from a gap PostgreSQL's sequence left) and the aggregate id, version and
topic (so a deleted event can still be named).

Editing a stored row, deleting one, or inserting one changes the recomputed hash
from that event on: :func:`verify_chain` names the first event whose link no
longer matches. Someone able to rewrite the whole chain from that event on is
caught by the signed checkpoints (``services/audit/checkpoints.py``), which hold
the chain's hash at quarter ends under a key the database does not hold.

Stores written before the chain existed are chained once, when the recorder
first opens them (:meth:`ChainTable.backfill`): the chain then vouches for the
history from that moment on, not before it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import structlog
from eventsourcing.persistence import Notification, StoredEvent

from infra.sqlite_rows import insert_rows

log = structlog.get_logger(__name__)

GENESIS = bytes(32)
TABLE = "event_chain"
PAGE = 2000

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def _id_bytes(originator_id: UUID | str) -> bytes:
    if isinstance(originator_id, UUID):
        return originator_id.bytes
    try:
        return UUID(originator_id).bytes
    except ValueError:
        raw = originator_id.encode()
        return _U32.pack(len(raw)) + raw


def canonical(
    position: int, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    """The bytes of a stored row that its link covers."""
    topic_bytes = topic.encode()
    return b"".join(
        (
            _U64.pack(position),
            _id_bytes(originator_id),
            _U64.pack(version),
            _U32.pack(len(topic_bytes)),
            topic_bytes,
            _U32.pack(len(state)),
            bytes(state),
        )
    )


def link(
    prev: bytes, position: int, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    """The hash of one event, chained to the hash of the event before it."""
    return hashlib.sha256(prev + canonical(position, originator_id, version, topic, state)).digest()


@dataclass(frozen=True)
class ChainLink:
    position: int
    prev_position: int
    originator_id: str  # the aggregate id as hex
    originator_version: int
    topic: str
    hash: bytes


def links_for(
    head: tuple[int, bytes] | None, ids: Sequence[int], events: Sequence[StoredEvent]
) -> list[ChainLink]:
    """The links of newly recorded events, continuing from the chain's head."""
    prev_position, prev = head if head is not None else (0, GENESIS)
    links = []
    for position, e in sorted(zip(ids, events, strict=True), key=lambda pair: pair[0]):
        prev = link(prev, position, e.originator_id, e.originator_version, e.topic, e.state)
        links.append(
            ChainLink(
                position, prev_position, _hex(e.originator_id), e.originator_version, e.topic, prev
            )
        )
        prev_position = position
    return links


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


# -- where the chain is kept -------------------------------------------------------------


class ChainTable(Protocol):
    """The ``event_chain`` table of one store (SQLite or PostgreSQL)."""

    def create_statements(self) -> list[Any]: ...

    def append(self, cursor: Any, ids: Sequence[int], events: Sequence[StoredEvent]) -> None:
        """Chain events just inserted with these ids (same transaction as the insert;
        the caller holds the store's write lock)."""

    def links(self, after: int, limit: int) -> list[ChainLink]: ...

    def hash_at(self, position: int) -> bytes | None: ...

    def head(self) -> tuple[int, bytes] | None: ...

    def recorded(self, originator_id: UUID) -> list[RecordedEvent]:
        """An aggregate's stored events, in version order, with positions and links."""

    def backfill(self, events_table: str) -> int:
        """Chain a store written before the chain existed; returns events chained."""


class EventPager(Protocol):
    def __call__(self, after: int, limit: int) -> Sequence[Notification]: ...


def notifications(recorder: Any) -> EventPager:
    """Pages of a recorder's notification log, after a position."""

    def read(after: int, limit: int) -> Sequence[Notification]:
        page: Sequence[Notification] = recorder.select_notifications(
            after, limit, inclusive_of_start=False
        )
        return page

    return read


SQLITE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "notification_id INTEGER PRIMARY KEY, "
    "prev_id INTEGER NOT NULL, "
    "originator_id TEXT NOT NULL, "
    "originator_version INTEGER NOT NULL, "
    "topic TEXT NOT NULL, "
    "hash BLOB NOT NULL)"
)


def _values(k: ChainLink) -> tuple[Any, ...]:
    return (k.position, k.prev_position, k.originator_id, k.originator_version, k.topic, k.hash)


def _recorded(originator_id: UUID, row: Any) -> RecordedEvent:
    stored = StoredEvent(originator_id, int(row[2]), str(row[3]), bytes(row[4]))
    return RecordedEvent(int(row[0]), stored, None if row[5] is None else bytes(row[5]))


def _row_link(row: Any) -> ChainLink:
    return ChainLink(
        int(row[0]),
        int(row[1]),
        str(row[2]).replace("-", ""),
        int(row[3]),
        str(row[4]),
        bytes(row[5]),
    )


@dataclass(frozen=True)
class RecordedEvent:
    """A stored event with its position and its link's hash (None: no link)."""

    position: int
    stored: StoredEvent
    hash: bytes | None


class SQLiteChainTable:
    def __init__(self, datastore: Any, events_table: str = "stored_events") -> None:
        self.datastore = datastore  # eventsourcing.sqlite.SQLiteDatastore
        self.events_table = events_table

    def create_statements(self) -> list[Any]:
        return [SQLITE_DDL]

    @staticmethod
    def _head(cursor: Any) -> tuple[int, bytes] | None:
        cursor.execute(
            f"SELECT notification_id, hash FROM {TABLE} ORDER BY notification_id DESC LIMIT 1"  # noqa: S608 - fixed name
        )
        row = cursor.fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def append(self, cursor: Any, ids: Sequence[int], events: Sequence[StoredEvent]) -> None:
        if not ids:
            return
        new = links_for(self._head(cursor), ids, events)
        insert_rows(cursor, TABLE, 6, [_values(k) for k in new])  # one statement, not one a row

    def links(self, after: int, limit: int) -> list[ChainLink]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT * FROM {TABLE} WHERE notification_id > ? "  # noqa: S608 - fixed name
                "ORDER BY notification_id LIMIT ?",
                (after, limit),
            )
            return [_row_link(r) for r in c.fetchall()]

    def hash_at(self, position: int) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT hash FROM {TABLE} WHERE notification_id = ?", (position,))  # noqa: S608
            row = c.fetchone()
        return None if row is None else bytes(row[0])

    def head(self) -> tuple[int, bytes] | None:
        with self.datastore.transaction(commit=False) as c:
            return self._head(c)

    def recorded(self, originator_id: UUID) -> list[RecordedEvent]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, "  # noqa: S608
                f"c.hash FROM {self.events_table} e LEFT JOIN {TABLE} c "
                "ON c.notification_id = e.rowid WHERE e.originator_id = ? "
                "ORDER BY e.originator_version",
                (originator_id.hex,),
            )
            return [_recorded(originator_id, r) for r in c.fetchall()]

    def backfill(self, events_table: str) -> int:
        with self.datastore.transaction(commit=True) as c:
            if self._head(c) is not None:
                return 0

            def read(after: int, limit: int) -> list[tuple[Any, ...]]:
                c.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
                    f"FROM {events_table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, limit),
                )
                return [tuple(r) for r in c.fetchall()]

            return _backfill(read, lambda ids, evs: self.append(c, ids, evs))


class PostgresChainTable:
    def __init__(self, datastore: Any, events_table: str) -> None:
        from psycopg.sql import SQL, Identifier  # noqa: PLC0415 - the optional driver

        self.datastore = datastore  # eventsourcing.postgres.PostgresDatastore
        schema = datastore.schema or "public"
        t = Identifier(schema, TABLE)
        self._ddl = SQL(
            "CREATE TABLE IF NOT EXISTS {t} ("
            "notification_id bigint PRIMARY KEY, prev_id bigint NOT NULL, "
            "originator_id text NOT NULL, originator_version bigint NOT NULL, "
            "topic text NOT NULL, hash bytea NOT NULL)"
        ).format(t=t)
        self._head_sql = SQL(
            "SELECT notification_id, hash FROM {t} ORDER BY notification_id DESC LIMIT 1"
        ).format(t=t)
        self._insert = SQL("INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s)").format(t=t)
        self._links = SQL(
            "SELECT notification_id, prev_id, originator_id, originator_version, topic, hash "
            "FROM {t} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(t=t)
        self._hash_at = SQL("SELECT hash FROM {t} WHERE notification_id = %s").format(t=t)
        e = Identifier(schema, events_table)
        self._lock = SQL("LOCK TABLE {e} IN EXCLUSIVE MODE").format(e=e)
        self._events = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {e} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(e=e)
        self._recorded = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, "
            "e.state, c.hash FROM {e} e LEFT JOIN {t} c ON c.notification_id = e.notification_id "
            "WHERE e.originator_id = %s ORDER BY e.originator_version"
        ).format(e=e, t=t)

    def create_statements(self) -> list[Any]:
        return [self._ddl]

    def _head(self, cursor: Any) -> tuple[int, bytes] | None:
        cursor.execute(self._head_sql)
        row = cursor.fetchone()
        return None if row is None else (int(row["notification_id"]), bytes(row["hash"]))

    def append(self, cursor: Any, ids: Sequence[int], events: Sequence[StoredEvent]) -> None:
        if not ids:
            return
        new = links_for(self._head(cursor), ids, events)
        cursor.executemany(self._insert, [_values(k) for k in new])

    def links(self, after: int, limit: int) -> list[ChainLink]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._links, (after, limit))
            return [
                _row_link(
                    (
                        r["notification_id"],
                        r["prev_id"],
                        r["originator_id"],
                        r["originator_version"],
                        r["topic"],
                        r["hash"],
                    )
                )
                for r in curs.fetchall()
            ]

    def hash_at(self, position: int) -> bytes | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._hash_at, (position,))
            row = curs.fetchone()
        return None if row is None else bytes(row["hash"])

    def head(self) -> tuple[int, bytes] | None:
        with self.datastore.transaction(commit=False) as curs:
            return self._head(curs)

    def recorded(self, originator_id: UUID) -> list[RecordedEvent]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._recorded, (originator_id,))
            return [
                _recorded(
                    originator_id,
                    (
                        r["notification_id"],
                        r["originator_id"],
                        r["originator_version"],
                        r["topic"],
                        r["state"],
                        r["hash"],
                    ),
                )
                for r in curs.fetchall()
            ]

    def backfill(self, events_table: str) -> int:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._lock)  # the lock every insert of events takes
            if self._head(curs) is not None:
                return 0

            def read(after: int, limit: int) -> list[tuple[Any, ...]]:
                curs.execute(self._events, (after, limit))
                return [
                    (
                        r["notification_id"],
                        r["originator_id"],
                        r["originator_version"],
                        r["topic"],
                        bytes(r["state"]),
                    )
                    for r in curs.fetchall()
                ]

            return _backfill(read, lambda ids, evs: self.append(curs, ids, evs))


def _backfill(read: Any, append: Any) -> int:
    """Rows (position, originator id, version, topic, state), page by page, chained."""
    after = count = 0
    while page := read(after, PAGE):
        append(
            [int(r[0]) for r in page],
            [StoredEvent(r[1], int(r[2]), str(r[3]), bytes(r[4])) for r in page],
        )
        count += len(page)
        after = int(page[-1][0])
    if count:
        log.warning("chain.backfilled", events=count, head=after)
    return count


# -- verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    position: int
    kind: str  # altered | missing | unchained
    aggregate_id: str | None
    aggregate_version: int | None
    topic: str | None
    detail: str


@dataclass
class ChainReport:
    events: int = 0  # events checked
    head_position: int = 0
    head_hash: bytes = GENESIS
    breaks: list[ChainBreak] = field(default_factory=list)
    breaks_total: int = 0
    # position -> recomputed hash, for positions asked for (checkpoints)
    hashes: dict[int, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.breaks_total == 0

    @property
    def first_break(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


MAX_REPORTED = 100


def _merge(
    events: Iterator[Notification], links: Iterator[ChainLink]
) -> Iterator[tuple[Notification | None, ChainLink | None]]:
    e, k = next(events, None), next(links, None)
    while e is not None or k is not None:
        if k is None or (e is not None and e.id < k.position):
            yield e, None
            e = next(events, None)
        elif e is None or k.position < e.id:
            yield None, k
            k = next(links, None)
        else:
            yield e, k
            e, k = next(events, None), next(links, None)


def _paged(fetch: Any, key: Any, page: int) -> Iterator[Any]:
    after = 0
    while rows := fetch(after, page):
        yield from rows
        after = key(rows[-1])


def verify_chain(
    read_events: EventPager,
    table: ChainTable,
    *,
    up_to: int | None = None,
    keep_hashes_at: frozenset[int] = frozenset(),
    page: int = PAGE,
) -> ChainReport:
    """Recompute the chain from the first event (up to position ``up_to``) and compare
    it with the stored links; one page of rows in memory at a time."""
    report = ChainReport()
    prev_position, prev = 0, GENESIS

    def found(brk: ChainBreak) -> None:
        report.breaks_total += 1
        if len(report.breaks) < MAX_REPORTED:
            report.breaks.append(brk)

    events = _paged(read_events, lambda n: n.id, page)
    links = _paged(table.links, lambda k: k.position, page)
    for event, stored in _merge(events, links):
        position = event.id if event is not None else stored.position  # type: ignore[union-attr]
        if up_to is not None and position > up_to:
            break
        if event is None:
            assert stored is not None  # noqa: S101 - _merge yields one of the two
            found(
                ChainBreak(
                    position,
                    "missing",
                    stored.originator_id,
                    stored.originator_version,
                    stored.topic,
                    "the chain records an event here but the store has none: deleted",
                )
            )
            prev_position, prev = position, stored.hash
            report.hashes.update({position: prev} if position in keep_hashes_at else {})
            continue
        report.events += 1
        expected = link(
            prev, event.id, event.originator_id, event.originator_version, event.topic, event.state
        )
        aggregate = _hex(event.originator_id)
        if stored is None:
            found(
                ChainBreak(
                    position,
                    "unchained",
                    aggregate,
                    event.originator_version,
                    event.topic,
                    "the event has no link in the chain: inserted outside the recorder",
                )
            )
        elif stored.prev_position != prev_position:
            found(
                ChainBreak(
                    stored.prev_position,
                    "missing",
                    None,
                    None,
                    None,
                    f"the link of position {position} follows position "
                    f"{stored.prev_position}, which is gone (event and link deleted)",
                )
            )
            expected = stored.hash
        elif stored.hash != expected:
            found(
                ChainBreak(
                    position,
                    "altered",
                    aggregate,
                    event.originator_version,
                    event.topic,
                    "the stored event no longer matches its link: its row was edited",
                )
            )
            expected = stored.hash  # carry on from the recorded chain to find more
        prev_position, prev = position, expected
        if position in keep_hashes_at:
            report.hashes[position] = prev
    report.head_position, report.head_hash = prev_position, prev
    return report
