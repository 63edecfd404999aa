"""The embedded stream: follows the event store's notification log in-process.

SQLite cannot push new events, so subscribers poll the log; to keep latency low
without hammering the database, the event store's writer wakes them the moment a
group commits (in this process), and a short poll interval catches writes made by
other processes (a CLI import while the server runs).

Subscribers in one process (the runners of ``civic serve``) share what is
decoded: each event is decoded once, whatever its type, and kept until every
subscriber has read it. A stream that keeps nothing (``keep_decoded=0``: one read
model in a process of its own, ``civic project NAME``) has nothing to share, so
each subscription selects only the event types its subscriber handles (SQL
``topic IN``) and is told how far the selection reached by a record without an
event (see ``projections.stream``).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from eventsourcing.persistence import ApplicationRecorder

from infra.envelopes import envelope_from_row
from infra.stored_rows import RowReader, StoredRow
from projections.stream import PositionLookup, StreamRecord

PARTITION = 0
# A filtered selection scans at most this many positions per read (so a read model
# of rare events does not scan a long history in one statement)
FILTERED_SPAN = 50_000


class EmbeddedStream:
    KEEP_DECODED = 50_000

    def __init__(
        self,
        recorder: ApplicationRecorder,
        *,
        decode_state: Callable[[bytes], bytes] | None = None,
        poll_interval: float = 0.25,
        keep_decoded: int = KEEP_DECODED,
    ) -> None:
        self.recorder = recorder
        self._rows = RowReader(recorder)
        self.decode_state = decode_state
        self.poll_interval = poll_interval
        self._new_events = threading.Condition()
        self._head_seen = 0
        self.keep_decoded = keep_decoded
        # position -> record, least recently read first
        self._recent: OrderedDict[int, StreamRecord] = OrderedDict()
        self._recent_lock = threading.Lock()
        # held while decoding: subscribers that reach the same stretch at once wait
        # for one of them to decode it, then read it from ``_recent``
        self._decoding = threading.Lock()
        self.decoded = 0  # records decoded (each position once while it stays cached)
        self._subscriptions: weakref.WeakSet[EmbeddedSubscription] = weakref.WeakSet()
        self._read_by_all = 0  # positions up to this were dropped as read by all

    def notify(self, head: int) -> None:
        """Called by the event store after each commit."""
        with self._new_events:
            self._head_seen = max(self._head_seen, head)
            self._new_events.notify_all()

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def subscribe(
        self, group: str, lookup: PositionLookup, types: frozenset[str] | None = None
    ) -> EmbeddedSubscription:
        after = lookup([PARTITION])[PARTITION]
        topics = sorted(types) if types is not None and self.keep_decoded <= 0 else None
        subscription = EmbeddedSubscription(self, after, topics)
        self._subscriptions.add(subscription)
        return subscription

    @property
    def cached(self) -> int:
        """Decoded records kept."""
        return len(self._recent)

    def read(self, after: int, limit: int) -> list[StreamRecord]:
        """Records after ``after``. Every projection reads the same stretch of the
        log, so decoded records are kept (the ``keep_decoded`` least recently read
        are evicted) and each is decoded once, not once per subscriber. A stream
        that keeps nothing decodes for the caller alone."""
        if self.keep_decoded <= 0:
            fresh = self._records(self._rows.read(after, limit))
            self.decoded += len(fresh)
            return fresh
        cached = self._cached(after, limit)
        if len(cached) == limit:
            return cached
        with self._decoding:
            # another subscriber may have decoded this stretch while we waited
            last = cached[-1].offset if cached else after
            more = self._cached(last, limit - len(cached))
            cached += more
            if len(cached) == limit:
                return cached
            last = cached[-1].offset if cached else after
            fresh = self._decode(last, limit - len(cached))
        return cached + fresh

    def _cached(self, after: int, limit: int) -> list[StreamRecord]:
        cached: list[StreamRecord] = []
        with self._recent_lock:
            recent = self._recent
            get, touch = recent.get, recent.move_to_end
            position = after + 1
            while len(cached) < limit and (record := get(position)) is not None:
                touch(position)
                cached.append(record)
                position += 1
        return cached

    def read_types(self, after: int, limit: int, topics: Sequence[str]) -> list[StreamRecord]:
        """Records after ``after`` of the event types ``topics`` (decoded for this
        caller only), then, if the selection reached past the last of them, a record
        without an event at the position it reached."""
        head = self.head()
        if head <= after:
            return []
        if not topics:  # a subscriber of no type moves to the head
            return [StreamRecord(PARTITION, head, head, None)]
        stop = min(head, after + FILTERED_SPAN)
        records = self._records(self._rows.read(after, limit, topics=topics, stop=stop))
        self.decoded += len(records)
        if len(records) < limit and (not records or records[-1].offset < stop):
            records.append(StreamRecord(PARTITION, stop, stop, None))
        return records

    def _records(self, rows: Sequence[StoredRow]) -> list[StreamRecord]:
        decode = self.decode_state
        return [
            StreamRecord(
                PARTITION,
                position,
                position,
                envelope_from_row(
                    position, originator, version, topic, decode(state) if decode else state
                ),
            )
            for position, originator, version, topic, state in rows
        ]

    def _decode(self, after: int, limit: int) -> list[StreamRecord]:
        fresh = self._records(self._rows.read(after, limit))
        if fresh:
            with self._recent_lock:
                recent = self._recent
                for record in fresh:
                    recent[record.offset] = record
                pop = recent.popitem
                for _ in range(len(recent) - self.keep_decoded):
                    pop(last=False)
                # what every open subscription has read goes too (once all are at the
                # head, nothing stays cached)
                slowest = min(
                    (sub.after for sub in list(self._subscriptions) if not sub.closed),
                    default=None,
                )
                if slowest is not None and slowest > self._read_by_all:
                    if slowest - self._read_by_all <= len(recent):
                        drop = recent.pop
                        for position in range(self._read_by_all + 1, slowest + 1):
                            drop(position, None)
                    else:
                        for position in [p for p in recent if p <= slowest]:
                            del recent[position]
                    self._read_by_all = slowest
            self.decoded += len(fresh)
        return fresh

    def wait_for_new(self, after: int, timeout: float) -> None:
        with self._new_events:
            if self._head_seen <= after:
                self._new_events.wait(min(timeout, self.poll_interval))


class EmbeddedSubscription:
    def __init__(
        self, stream: EmbeddedStream, after: int, topics: Sequence[str] | None = None
    ) -> None:
        self.stream = stream
        self.after = max(after, 0)
        self.topics = topics  # None: every event, through the shared decoded records
        self.closed = False

    def _read(self, max_records: int) -> list[StreamRecord]:
        if self.topics is None:
            return self.stream.read(self.after, max_records)
        return self.stream.read_types(self.after, max_records, self.topics)

    def poll(self, max_records: int, timeout: float) -> list[StreamRecord]:
        records = self._read(max_records)
        if not records and timeout > 0 and not self.closed:
            self.stream.wait_for_new(self.after, timeout)
            records = self._read(max_records)
        if records:
            self.after = records[-1].offset
        return records

    def committed(self, offsets: Mapping[int, int]) -> None:
        """Positions live in the subscriber's database; nothing to do here."""

    def lag(self) -> int | None:
        return max(self.stream.head() - self.after, 0)

    def close(self) -> None:
        self.closed = True
