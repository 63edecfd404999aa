"""Feeds one projection from a stream, exactly once in effect.

The runner polls a batch of records, drops any at or below the offset already
applied in their partition (redelivery), applies the rest and records the new
offsets in the same SQLite transaction. A batch that fails is retried event by
event; an event that keeps failing is parked in ``dead_letters`` with its error so
the rest of the stream keeps flowing, and the runner reports itself unhealthy
until an admin replays or discards it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.store import ViewStore
from projections.stream import EventStream, StreamRecord, Subscription

log = structlog.get_logger(__name__)

DEAD_LETTER_DDL = """
CREATE TABLE IF NOT EXISTS dead_letters (
    position INTEGER PRIMARY KEY,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    type TEXT NOT NULL,
    envelope TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    parked_at REAL NOT NULL
)
"""


@dataclass
class RunnerStats:
    applied: int = 0
    batches: int = 0
    duplicates_skipped: int = 0
    failures: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.time)


class ProjectionRunner:
    def __init__(
        self,
        projection: Projection,
        store: ViewStore,
        stream: EventStream,
        *,
        batch_size: int = 2000,
        poll_timeout: float = 0.5,
        max_attempts: int = 3,
        retry_backoff: float = 0.05,
    ) -> None:
        self.projection = projection
        self.store = store
        self.stream = stream
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.stats = RunnerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._advanced = threading.Condition()
        self._subscription: Subscription | None = None
        with store.transaction() as conn:
            conn.execute(DEAD_LETTER_DDL)
            projection.create_tables(conn)

    @property
    def name(self) -> str:
        return self.projection.name

    # -- lifecycle ---------------------------------------------------------------

    def subscribe(self) -> Subscription:
        if self._subscription is None:
            self._subscription = self.stream.subscribe(self.name, self.store.offsets)
        return self._subscription

    def start(self) -> None:
        if self._thread is not None:
            return
        self.subscribe()
        self._thread = threading.Thread(target=self.run_forever, name=f"projection-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def run_forever(self) -> None:
        log.info("projection.started", projection=self.name, position=self.position)
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep the runner alive; the error is reported
                self.stats.failures += 1
                self.stats.last_error = repr(exc)
                log.exception("projection.poll_failed", projection=self.name)
                self._stop.wait(1.0)
        log.info("projection.stopped", projection=self.name, position=self.position)

    def run_once(self, timeout: float | None = None) -> int:
        """Poll one batch and apply it; returns how many events were applied."""
        subscription = self.subscribe()
        records = subscription.poll(
            self.batch_size, self.poll_timeout if timeout is None else timeout
        )
        if not records:
            return 0
        applied = self.apply_records(records)
        subscription.committed({r.partition: r.offset for r in records})
        return applied

    def catch_up(self, timeout: float = 0.05) -> int:
        """Apply everything currently available (for tools and tests)."""
        total = 0
        while True:
            n = self.run_once(timeout)
            total += n
            if n == 0 and self.lag() in (0, None):
                return total

    # -- applying ----------------------------------------------------------------

    def apply_records(self, records: Sequence[StreamRecord]) -> int:
        fresh = self._fresh(records)
        if not fresh:
            return 0
        try:
            self._apply(fresh)
        except Exception:
            log.warning("projection.batch_failed", projection=self.name, size=len(fresh))
            for record in fresh:
                self._apply_one_or_park(record)
        self.stats.batches += 1
        with self._advanced:
            self._advanced.notify_all()
        return len(fresh)

    def _fresh(self, records: Sequence[StreamRecord]) -> list[StreamRecord]:
        applied = self.store.offsets(sorted({r.partition for r in records}))
        fresh = [r for r in records if r.offset > applied[r.partition]]
        self.stats.duplicates_skipped += len(records) - len(fresh)
        return fresh

    def _apply(self, records: Sequence[StreamRecord]) -> None:
        offsets: dict[int, tuple[int, int]] = {}
        for r in records:
            offsets[r.partition] = (r.offset, r.event.position)
        with self.store.transaction() as conn:
            self.projection.apply(conn, [r.event for r in records])
            self.store.save_offsets(conn, offsets)
        self.stats.applied += len(records)

    def _apply_one_or_park(self, record: StreamRecord) -> None:
        error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._apply([record])
                return
            except Exception as exc:
                error = exc
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))
        self.stats.failures += 1
        self.stats.last_error = repr(error)
        log.error(
            "projection.event_parked",
            projection=self.name,
            position=record.event.position,
            type=record.event.type,
            error=repr(error),
        )
        with self.store.transaction() as conn:
            self._park(conn, record, repr(error))
            offsets = {record.partition: (record.offset, record.event.position)}
            self.store.save_offsets(conn, offsets)

    def _park(self, conn: sqlite3.Connection, record: StreamRecord, error: str) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.event.position,
                record.partition,
                record.offset,
                record.event.type,
                record.event.model_dump_json(),
                error,
                self.max_attempts,
                time.time(),
            ),
        )

    # -- dead letters --------------------------------------------------------------

    def dead_letters(self) -> list[dict[str, object]]:
        rows = self.store.reader().execute(
            'SELECT position, partition, "offset", type, error, attempts, parked_at '
            "FROM dead_letters ORDER BY position"
        )
        return [dict(r) for r in rows]

    def replay_dead_letter(self, position: int) -> bool:
        """Apply a parked event again; on success it leaves the dead-letter table."""
        row = (
            self.store.reader()
            .execute("SELECT envelope FROM dead_letters WHERE position = ?", (position,))
            .fetchone()
        )
        if row is None:
            return False
        envelope = EventEnvelope.model_validate(json.loads(row[0]))
        with self.store.transaction() as conn:
            self.projection.apply(conn, [envelope])
            conn.execute("DELETE FROM dead_letters WHERE position = ?", (position,))
        return True

    # -- status ------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self.store.position()

    def lag(self) -> int | None:
        head = self.stream.head()
        return max(head - self.position, 0)

    @property
    def healthy(self) -> bool:
        parked = self.store.reader().execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        return int(parked) == 0

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until this projection has applied ``position`` (read-your-writes)."""
        deadline = time.monotonic() + timeout
        with self._advanced:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._advanced.wait(min(remaining, 0.05))
        return True
