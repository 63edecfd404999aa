"""The SQLite event store with group commit and atomic idempotency records.

The library's recorder commits one transaction per ``save``; at 16 concurrent
requests that caps throughput at the disk's fsync rate. This recorder commits an
``insert_events`` call that finds no commit under way at once, on the caller's
thread; calls that arrive meanwhile go to a writer thread, which commits everything
queued in one transaction, each call inside its own SAVEPOINT: calls stay atomic
and independent (a conflicting call rolls back alone), and one fsync serves many.
The application's single command writer (services/command_executor.py) groups the
commands of this process itself, so its calls take the first path: no hand-over
to another thread and back (each costs GIL hand-offs).

Idempotency records (``save(..., idempotency=[...])``) are written in the same
savepoint as the events, so a command's events and the record of its key commit
or vanish together.

Rows go in with multi-row ``INSERT ... VALUES (...), (...)`` statements, not one
statement per row: Python's sqlite3 releases the GIL around every statement step,
and on a busy server each release costs the writer a wait of up to the 5 ms
switch interval to get it back (the event loop takes it meanwhile). A group's
events, hash-chain links and idempotency records thus cost a step per 166 rows of
each, not one per row.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from infra.hash_chain import SQLITE_DDL as CHAIN_DDL
from infra.hash_chain import SQLiteChainTable
from infra.process_lock import for_database
from infra.sqlite_rows import insert_rows
from infra.wal_checkpoint import WalCheckpointer

IDEMPOTENCY_DDL = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response TEXT NOT NULL,
    position INTEGER,
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, key)
)
"""


_KEYS_PER_SELECT = 500  # bound parameters per lookup (SQLite allows 32,766)


def _sqlite_time(moment: datetime) -> str:
    """``moment`` as ``recorded_at`` holds it: ``strftime('%Y-%m-%dT%H:%M:%fZ')``, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class IdempotencyRecord:
    scope: str
    key: str
    fingerprint: str
    response: str  # JSON
    # The index, among the events of the call that writes the record, of the
    # request's last event: the position a retry answers. None: the call's last
    # (a request that recorded nothing answers the head its call reached).
    last_event: int | None = None

    def position(self, ids: Sequence[int]) -> int | None:
        if not ids:
            return None
        if self.last_event is None:
            return max(ids)
        return ids[self.last_event]


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    response: str
    position: int | None


class IdempotencyKeyTakenError(IntegrityError):
    """Another request with the same idempotency key committed first."""

    def __init__(self, scope: str, key: str) -> None:
        super().__init__(f"idempotency key {key!r} already used")
        self.scope = scope
        self.key = key


class EventStoreBusyError(PersistenceError):
    """The store's write lock stayed taken past the lock timeout (another process
    holds a long write transaction). Nothing was written; retrying later may work."""

    code = "event-store-busy"


class EventStoreFullError(PersistenceError):
    """The disk (or the database's size limit) is full. Nothing was written;
    commands fail until space is freed."""

    code = "event-store-full"


_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def storage_error(exc: BaseException) -> PersistenceError:
    """What a failed write transaction means for the caller: a full disk, a busy
    store, or another persistence error. The SQLite error may sit anywhere in the
    chain (the library wraps it; a rollback after it may raise in turn)."""
    seen: BaseException | None = exc
    for _ in range(16):  # a chain is short; never follow a cycle
        if seen is None:
            break
        if isinstance(seen, sqlite3.Error):
            code = getattr(seen, "sqlite_errorcode", None)
            if code is not None:
                primary = code & 0xFF  # extended result codes keep the primary in the low byte
                if primary == sqlite3.SQLITE_FULL:
                    return EventStoreFullError(str(seen))
                if primary in _BUSY_CODES:
                    return EventStoreBusyError(str(seen))
        seen = seen.__cause__ or seen.__context__
    return exc if isinstance(exc, PersistenceError) else PersistenceError(str(exc))


@dataclass
class _Job:
    events: Sequence[StoredEvent]
    idempotency: Sequence[IdempotencyRecord]
    done: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    error: Exception | None = None


CommitListener = Callable[[int], None]


class GroupCommitSQLiteRecorder(SQLiteApplicationRecorder):
    max_group = 512

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._commit_lock = threading.Lock()  # one group committing at a time
        self.listeners: list[CommitListener] = []
        self.groups_committed = 0
        self.calls_committed = 0
        self.chain = SQLiteChainTable(datastore, events_table_name)  # see infra.hash_chain
        # one writing process at a time, waiting in the kernel (see infra.process_lock)
        self.process_lock = for_database(datastore.pool.db_name)
        # what this process committed that the last look for others' writes had not
        # yet passed (see :meth:`written_elsewhere`)
        self._seen: int | None = None
        self._own: set[int] = set()
        self._own_lock = threading.Lock()
        # the WAL is copied back by a thread of its own, not inside commits (see
        # infra.wal_checkpoint); an in-memory store has no WAL
        pool = datastore.pool
        self.checkpointer = None if pool.is_sqlite_memory_mode else WalCheckpointer(pool.db_name)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), IDEMPOTENCY_DDL, CHAIN_DDL]

    def create_table(self) -> None:
        super().create_table()
        self.chain.backfill(self.events_table_name)  # a store older than the chain

    # -- writing -------------------------------------------------------------------

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        job = _Job(stored_events, kwargs.get("idempotency") or ())
        if self._commit_lock.acquire(blocking=False):
            # nothing is being committed: commit on the caller's thread rather than
            # hand over to the writer thread and wait for it to wake (the
            # application's single command writer is the usual caller)
            try:
                self._commit_group([job])
            finally:
                self._commit_lock.release()
        else:
            self._ensure_writer()
            self._queue.put(job)
            job.done.wait()
        if job.error is not None:
            raise job.error
        return job.ids

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="event-store-writer", daemon=True
                )
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.max_group:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                jobs.append(nxt)
            with self._commit_lock:
                self._commit_group(jobs)

    def _commit_group(self, jobs: list[_Job]) -> None:
        lock = self.process_lock
        try:
            with (
                lock.held() if lock is not None else nullcontext(),
                self.datastore.transaction(commit=True) as c,
            ):
                if self.checkpointer is not None:
                    self.checkpointer.configure(c.sqlite_cursor.connection)
                for job in jobs:
                    self._insert_job(c, job)
        except Exception as exc:  # the whole group failed to commit: nothing was written
            error = storage_error(exc)
            for job in jobs:
                if job.error is None:
                    job.error = error
                    job.ids = []
        else:
            self._committed([j for j in jobs if j.error is None])
        finally:
            for job in jobs:
                job.done.set()

    def _committed(self, committed: list[_Job]) -> None:
        if self._seen is not None:  # someone follows others' writes (else nobody prunes)
            with self._own_lock:
                for job in committed:
                    self._own.update(job.ids)
        if self.checkpointer is not None:
            self.checkpointer.committed()
        self.groups_committed += 1
        self.calls_committed += len(committed)
        head = max((max(j.ids) for j in committed if j.ids), default=None)
        if head is not None:
            for listener in self.listeners:
                listener(head)

    def _insert_job(self, c: SQLiteCursor, job: _Job) -> None:
        c.execute("SAVEPOINT job")
        try:
            ids = self._insert_events(c, job.events)
            self.chain.append(c, ids, job.events)
            if job.idempotency:
                self._insert_idempotency(c, job.idempotency, ids)
        except IdempotencyKeyTakenError as exc:
            c.execute("ROLLBACK TO job")
            job.error = exc
        except sqlite3.IntegrityError as exc:
            c.execute("ROLLBACK TO job")
            job.error = IntegrityError(exc)
        else:
            job.ids = ids
        finally:
            c.execute("RELEASE job")

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> list[int]:
        """The library's insert, as multi-row statements. Inside the write
        transaction nobody else inserts, so each statement's rows take consecutive
        rowids (the notification ids) ending at ``lastrowid``."""
        rows = [
            (
                e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id,
                e.originator_version,
                e.topic,
                e.state,
            )
            for e in stored_events
        ]
        return insert_rows(c, self.events_table_name, 4, rows)

    @staticmethod
    def _insert_idempotency(
        c: SQLiteCursor, records: Sequence[IdempotencyRecord], ids: Sequence[int]
    ) -> None:
        rows = [(r.scope, r.key, r.fingerprint, r.response, r.position(ids)) for r in records]
        try:
            insert_rows(
                c, "idempotency_keys (scope, key, fingerprint, response, position)", 5, rows
            )
        except sqlite3.IntegrityError:  # which key? (the statement inserted none of them)
            seen: set[tuple[str, str]] = set()
            for record in records:
                if (record.scope, record.key) in seen:  # the same key twice in one call
                    raise IdempotencyKeyTakenError(record.scope, record.key) from None
                seen.add((record.scope, record.key))
                c.execute(
                    "SELECT 1 FROM idempotency_keys WHERE scope = ? AND key = ?",
                    (record.scope, record.key),
                )
                if c.fetchone() is not None:
                    raise IdempotencyKeyTakenError(record.scope, record.key) from None
            raise

    def close(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(5)
        if self.checkpointer is not None:
            self.checkpointer.close()
        if self.process_lock is not None:
            self.process_lock.close()

    # -- others' writes --------------------------------------------------------------

    def written_elsewhere(self, limit: int = 10_000) -> list[StoredEvent] | None:
        """The events other processes committed since the last call, in order: what
        a cache of this process's aggregates must catch up with. ``None``: more than
        ``limit`` of them (an import ran), forget everything. The first call only
        marks where the log stands.

        Rowids are taken under the write lock, so a commit seen here has rowids
        above every commit seen before: the log's tail is all that is new.
        """
        if self._seen is None:
            self._seen = int(self.max_notification_id() or 0)
            return []
        table = self.events_table_name  # the recorder's own name, never input
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
                f"FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (self._seen, limit + 1),
            )
            rows: list[tuple[int, str, int, str, bytes]] = cursor.fetchall()
        if not rows:
            return []
        overflow = len(rows) > limit
        seen = self._seen = int(self.max_notification_id() or 0) if overflow else rows[-1][0]
        with self._own_lock:
            own = self._own
            self._own = {rowid for rowid in own if rowid > seen}
        if overflow:
            return None
        return [
            StoredEvent(UUID(originator), version, topic, state)
            for rowid, originator, version, topic, state in rows
            if rowid not in own
        ]

    # -- forgetting idempotency records ----------------------------------------------

    def prune_idempotency(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest idempotency records, those recorded
        before ``before``; returns how many. Records are read in insertion (rowid)
        order and the first one recorded at or after ``before`` ends the look, so a
        call reads what it deletes and one more row, whatever the table's size."""
        cutoff = _sqlite_time(before)
        lock = self.process_lock
        with (
            self._commit_lock,  # between this process's group commits
            lock.held() if lock is not None else nullcontext(),
            self.datastore.transaction(commit=True) as c,
        ):
            c.execute(
                "SELECT rowid, recorded_at FROM idempotency_keys ORDER BY rowid LIMIT ?", (limit,)
            )
            old: list[int] = []
            for row in c.fetchall():
                if row["recorded_at"] >= cutoff:
                    break
                old.append(row["rowid"])
            for start in range(0, len(old), _KEYS_PER_SELECT):
                chunk = old[start : start + _KEYS_PER_SELECT]
                marks = ", ".join("?" * len(chunk))
                c.execute(f"DELETE FROM idempotency_keys WHERE rowid IN ({marks})", chunk)  # noqa: S608 - placeholders
        return len(old)

    # -- reading idempotency records -------------------------------------------------

    def find_responses(self, scope: str, keys: Sequence[str]) -> dict[str, StoredResponse]:
        """The stored responses of those of ``keys`` that were used, in one read
        (a batch of 1,000 keyed items used to open 1,000 transactions)."""
        found: dict[str, StoredResponse] = {}
        unique = list(dict.fromkeys(keys))
        select = "SELECT key, fingerprint, response, position FROM idempotency_keys"
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(unique), _KEYS_PER_SELECT):
                chunk = unique[start : start + _KEYS_PER_SELECT]
                marks = ", ".join("?" * len(chunk))  # placeholders only: the keys are bound
                c.execute(f"{select} WHERE scope = ? AND key IN ({marks})", (scope, *chunk))
                for row in c.fetchall():
                    found[row["key"]] = StoredResponse(
                        row["fingerprint"], row["response"], row["position"]
                    )
        return found
