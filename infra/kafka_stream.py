"""The Kafka stream: projections consume the relayed events through consumer groups.

The relay (``infra.relay``) publishes every stored event to one topic, keyed by
aggregate id, as the JSON of its :class:`EventEnvelope`, with three headers:
``position`` (global position), ``type`` (event class topic) and ``prev`` (the
position of the event before it in the store). A :class:`KafkaSubscription` is a
``KafkaConsumer`` in group ``civic.<projection>`` reading committed records only;
on every assignment it asks the projection for the offsets it applied (kept in
the projection's own database) and seeks just past them, so Kafka's own committed
offsets are advisory (monitoring only).

Kafka orders records per partition, that is per aggregate. Read models that join
aggregates (a service confirmation needs the volunteer's home unit) need the
store's global order, so the subscription merges its partitions back into it:
a record is delivered once the record before it in the store (``prev``) has been
delivered, or, when that link is unknown (at start, after a rebalance), once
every other partition it owns has a record waiting or is read to its end. One
consumer that owns all partitions therefore delivers exactly the store's order;
several consumers of one group each deliver their partitions in position order.
A partition counts as read to its end only when no transaction is pending on it
(its last stable offset has reached its high watermark): a transaction's commit
markers land on its partitions one by one, so a record of it can be visible in
one partition while the records it wrote before it in another are not yet.

Fetching and decoding run on a thread of the subscription's own (``fetch_ahead``
records ahead of the projection), so kafka-python's parsing overlaps the
projection's SQL; ``poll`` hands over what that thread merged, in order.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from projections.envelope import EventEnvelope
from projections.stream import PositionLookup, StreamRecord

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder

    from infra.settings import Settings

log = structlog.get_logger(__name__)

HEADER_POSITION: Final = "position"
HEADER_TYPE: Final = "type"
HEADER_PREV: Final = "prev"

# The topic keeps every event for good: it is the source every read model is
# rebuilt from (a broker's default retention would silently drop history).
TOPIC_CONFIG: Final = {"retention.ms": "-1", "retention.bytes": "-1"}


def bootstrap_list(servers: str) -> list[str]:
    return [s.strip() for s in servers.split(",") if s.strip()]


def message_key(aggregate_id: UUID) -> bytes:
    """The record key: the aggregate id's 16 bytes (per-aggregate order)."""
    return aggregate_id.bytes


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's and kafka-python's) picks."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def ensure_topic(
    bootstrap_servers: str, topic: str, partitions: int, *, timeout_ms: int = 10_000
) -> int:
    """Create ``topic`` with ``partitions`` partitions unless it exists; return the
    partition count it has (an existing topic's count is never changed: keys
    would move to other partitions)."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_list(bootstrap_servers),
        client_id="civic-admin",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )
    try:
        try:
            admin.create_topics(
                {
                    topic: {
                        "num_partitions": partitions,
                        "replication_factor": -1,
                        "configs": dict(TOPIC_CONFIG),
                    }
                },
                timeout_ms=timeout_ms,
                wait_for_metadata=True,
            )
            log.info("kafka.topic_created", topic=topic, partitions=partitions)
            return partitions
        except TopicAlreadyExistsError:
            pass
        admin.wait_for_topics([topic], timeout_ms=timeout_ms)
        described = admin.describe_topics([topic])
        actual = len(described[0]["partitions"]) if described else 0
        if actual != partitions:
            log.warning(
                "kafka.topic_partitions_differ",
                topic=topic,
                partitions=actual,
                configured=partitions,
            )
        return actual
    finally:
        admin.close()


def tail_consumer(bootstrap_servers: str, client_id: str, **options: Any) -> Any:
    """A group-less consumer of committed records, for reading partition tails."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_list(bootstrap_servers),
        "client_id": client_id,
        "group_id": None,
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "allow_auto_create_topics": False,
        "fetch_max_wait_ms": 50,
        "reconnect_backoff_max_ms": 1_000,
    }
    config.update(options)
    return KafkaConsumer(**config)


def read_last_published(
    consumer: Any, topic: str, *, timeout: float = 30.0, after_fencing: bool = False
) -> int:
    """The highest ``position`` header among committed records (0 if none)."""
    return read_last_record(consumer, topic, timeout=timeout, after_fencing=after_fencing)[0]


def read_last_record(
    consumer: Any, topic: str, *, timeout: float = 30.0, after_fencing: bool = False
) -> tuple[int, bytes | None]:
    """The highest ``position`` header among committed records, and that record's
    value ((0, None) if none).

    ``after_fencing``: the caller has just fenced the topic's only producer (the
    relay resuming), so wait for the transaction it completed to settle first (see
    ``_settled_ends``). Others must not: under a live relay some transaction is
    nearly always open, and they only want the last committed position.

    The last offset of a partition written transactionally is a commit marker,
    not a record, and aborted records sit below it, so each tail is read
    backwards in widening windows until a committed record is found.
    """
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        return 0, None
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    begin = consumer.beginning_offsets(tps)
    deadline = time.monotonic() + timeout
    # read_committed: the last stable offset
    end = _settled_ends(consumer, tps, deadline) if after_fencing else consumer.end_offsets(tps)
    best: tuple[int, bytes | None] = (0, None)
    for tp in tps:
        hi, window = end[tp], 8
        while hi > begin[tp]:
            lo = max(begin[tp], hi - window)
            found = _max_position_between(consumer, tp, lo, hi, deadline)
            if found is not None:
                best = max(best, found, key=lambda pair: pair[0])
                break
            hi, window = lo, window * 8
    consumer.assign([])
    return best


def _settled_ends(consumer: Any, tps: list[Any], deadline: float) -> dict[Any, int]:
    """The partitions' last stable offsets once no transaction is pending on them.

    Right after a producer is fenced, the coordinator is still writing the commit or
    abort markers of the transaction it completed for it; until they land, the last
    stable offset stops short of that transaction, and a tail read then would miss
    records that are committed (the relay would send them again). So wait until the
    last stable offset reaches the high watermark (read uncommitted), or the deadline.
    """
    high_reader = tail_consumer(
        ",".join(consumer.config["bootstrap_servers"]),
        "civic-tail-high-watermark",
        isolation_level="read_uncommitted",
    )
    try:
        while True:
            stable: dict[Any, int] = consumer.end_offsets(tps)
            high: dict[Any, int] = high_reader.end_offsets(tps)
            if all(stable[tp] >= high[tp] for tp in tps):
                return stable
            if time.monotonic() > deadline:
                log.warning(
                    "kafka.tail_unsettled", pending=sum(high[tp] - stable[tp] for tp in tps)
                )
                return stable
            time.sleep(0.05)
    finally:
        high_reader.close(autocommit=False, timeout_ms=1_000)


def _max_position_between(
    consumer: Any, tp: Any, lo: int, hi: int, deadline: float
) -> tuple[int, bytes | None] | None:
    consumer.assign([tp])
    consumer.seek(tp, lo)
    best: tuple[int, bytes | None] | None = None
    while True:
        for records in consumer.poll(timeout_ms=200, max_records=500).values():
            for r in records:
                raw = header(r.headers, HEADER_POSITION) if r.offset < hi else None
                if raw is not None and (best is None or int(raw) > best[0]):
                    best = (int(raw), r.value)
        position = consumer.position(tp)
        if position is not None and position >= hi:
            return best
        if time.monotonic() > deadline:
            msg = f"timed out reading the tail of {tp.topic}[{tp.partition}]"
            raise TimeoutError(msg)


# -- the stream ------------------------------------------------------------------------


class KafkaStream:
    """``projections.stream.EventStream`` over one Kafka topic."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = "civic.events",
        *,
        partitions: int = 6,
        group_prefix: str = "civic.",
        session_timeout_ms: int = 10_000,
        fetch_max_wait_ms: int = 50,
        max_buffered: int = 20_000,
        fetch_ahead: int = 20_000,
        head_cache_seconds: float = 1.0,
        rejoin_after: float = 30.0,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self.group_prefix = group_prefix
        self.session_timeout_ms = session_timeout_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.max_buffered = max_buffered
        self.fetch_ahead = fetch_ahead  # 0: fetch on the thread that polls
        self.head_cache_seconds = head_cache_seconds
        self.rejoin_after = rejoin_after
        self.consumer_options = dict(consumer_options or {})
        self._partition_count: int | None = None
        self._recorder: ApplicationRecorder | None = None
        self._lock = threading.Lock()
        self._tail: Any = None
        self._head = 0
        self._head_at = float("-inf")

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> KafkaStream:
        if not settings.kafka:
            msg = "settings.kafka (CIVIC_KAFKA) names no Kafka bootstrap servers"
            raise ValueError(msg)
        return cls(
            settings.kafka,
            settings.kafka_topic,
            partitions=settings.kafka_partitions,
            **options,
        )

    # -- topic ---------------------------------------------------------------------

    def ensure_topic(self) -> int:
        if self._partition_count is None:
            self._partition_count = ensure_topic(
                self.bootstrap_servers, self.topic, self.partitions
            )
        return self._partition_count

    # -- EventStream ---------------------------------------------------------------

    def subscribe(
        self, group: str, lookup: PositionLookup, types: frozenset[str] | None = None
    ) -> KafkaSubscription:
        self.ensure_topic()
        return KafkaSubscription(self, group, lookup, types)

    def head(self) -> int:
        """The last published global position (read from the partition tails; cached
        briefly; the last known value while the broker is unreachable)."""
        with self._lock:
            if time.monotonic() - self._head_at < self.head_cache_seconds:
                return self._head
            try:
                if self._tail is None:
                    self._tail = tail_consumer(
                        self.bootstrap_servers, "civic-head", bootstrap_timeout_ms=2_000
                    )
                self._head = max(self._head, read_last_published(self._tail, self.topic))
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("kafka.head_unavailable", topic=self.topic, error=repr(exc))
                self._close_tail()
            self._head_at = time.monotonic()
            return self._head

    def _close_tail(self) -> None:
        if self._tail is not None:
            try:
                self._tail.close(autocommit=False, timeout_ms=1_000)
            except KafkaError:  # closing a consumer of an unreachable broker
                log.debug("kafka.tail_close_failed", topic=self.topic)
            self._tail = None

    def close(self) -> None:
        with self._lock:
            self._close_tail()

    # -- read-your-writes ------------------------------------------------------------

    def attach_store(self, recorder: ApplicationRecorder) -> None:
        """Let :meth:`partition_of` find an event's aggregate in the store."""
        self._recorder = recorder

    def partition_of(self, position: int) -> int | None:
        """The partition the event at ``position`` was (or will be) published to."""
        if self._recorder is None or position < 1:
            return None
        found = self._recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            return None
        originator = found[0].originator_id
        aggregate_id = originator if isinstance(originator, UUID) else UUID(str(originator))
        return partition_for_key(
            message_key(aggregate_id), self._partition_count or self.partitions
        )


# -- a subscription --------------------------------------------------------------------


# A buffered record: (global position, position of the event before it, record).
_Pending = tuple[int, int, StreamRecord]
_NO_LINK = 1 << 62  # no ``prev`` header: never linked
_UNKNOWN = -1  # watermark before the chain is picked up
_FETCH_WAIT_SECONDS = 0.1  # longest the fetching thread waits (so it sees close soon)
_FETCHER_STOP_SECONDS = 10.0


def _read_headers(headers: Sequence[tuple[str, bytes]]) -> tuple[bytes | None, bytes | None, int]:
    """A record's ``type`` and ``position`` headers (None where missing) and the
    position linked by its ``prev`` header (``_NO_LINK`` where missing), in one pass."""
    kind = stated = None
    prev = _NO_LINK
    for name, value in headers:
        if name == HEADER_TYPE:
            kind = value
        elif name == HEADER_POSITION:
            stated = value
        elif name == HEADER_PREV:
            prev = int(value)
    return kind, stated, prev


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    """Runs on the consumer's IO thread (the one that heartbeats), so it must stay
    quick and must not wait on the polling thread: it reads the projection's
    positions, seeks, and bumps the subscription's assignment generation."""

    def __init__(self, subscription: KafkaSubscription) -> None:
        self.subscription = subscription
        self.consumer: Any = None  # the consumer this listener serves

    def _current(self) -> bool:
        return self.consumer is not None and self.consumer is self.subscription._consumer

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self._current():  # a replaced consumer's farewell is not ours to act on
            self.subscription._revoked({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self._current():
            self.subscription._assigned(list(assigned))


class KafkaSubscription:
    """One projection's consumer: delivers records in store order (see module doc).

    Rebalances can happen on the consumer's IO thread at any moment, so the
    fetching thread owns the consumer and all merge state and re-synchronises from
    the projection's database whenever the assignment generation moved: it drops
    what it buffered and what the poll in flight returned, and seeks every owned
    partition just past its applied offset again. Records already handed over
    may then come again; the runner's check against its database drops them.
    """

    def __init__(
        self,
        stream: KafkaStream,
        group: str,
        lookup: PositionLookup,
        types: frozenset[str] | None = None,
    ) -> None:
        self.stream = stream
        self.group = group
        self.lookup = lookup
        # the ``type`` headers worth decoding (None: every record)
        self._wanted = None if types is None else frozenset(t.encode() for t in types)
        self.passed_over = 0  # records of other types, delivered without decoding
        self.undecodable = 0
        self.restarts = 0
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_list(stream.bootstrap_servers),
            "group_id": f"{stream.group_prefix}{group}",
            "client_id": f"civic-{group}",
            "isolation_level": "read_committed",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "allow_auto_create_topics": False,
            "session_timeout_ms": stream.session_timeout_ms,
            "heartbeat_interval_ms": max(stream.session_timeout_ms // 4, 500),
            "fetch_max_wait_ms": stream.fetch_max_wait_ms,
            "max_poll_records": 2_000,
            "bootstrap_timeout_ms": 5_000,
            "reconnect_backoff_max_ms": 1_000,  # back within a second of a broker restart
        }
        self._options.update(stream.consumer_options)
        # written by the rebalance listener (IO thread), read by the polling thread
        self._generation = 0
        self._owned: tuple[int, ...] = ()
        self._unassigned_since: float | None = time.monotonic()
        # the polling thread's own state
        self._synced = 0
        self._buffers: dict[int, deque[_Pending]] = {}
        self._paused: set[int] = set()
        self._watermark = _UNKNOWN  # every position <= this was delivered or applied
        self._stable: dict[int, int] = {}  # last stable offsets, valid until the next fetch
        self._lag: int | None = None
        self._closed = False
        self._high_reader: Any = None  # reads high watermarks (see _refresh_stable)
        self._consumer: Any = None
        self._consumer = self._join()
        # the hand-over from the fetching thread to the one that polls
        self._handover = threading.Condition()
        self._ready: deque[list[StreamRecord]] = deque()  # merged, in store order
        self._ready_count = 0
        self._ready_lag: int | None = None  # the fetching side's lag, as of the hand-over
        self._commits: dict[int, int] = {}  # applied offsets to pass on to Kafka
        self._failure: Exception | None = None  # what stopped the fetching thread
        self._fetcher: threading.Thread | None = None
        if stream.fetch_ahead > 0:
            self._fetcher = threading.Thread(
                target=self._fetch_ahead, name=f"kafka-fetch-{group}", daemon=True
            )
            self._fetcher.start()

    def _join(self) -> Any:
        listener = _Rebalance(self)
        consumer = KafkaConsumer(**self._options)
        listener.consumer = consumer
        consumer.subscribe([self.stream.topic], listener=listener)
        # Fetch metadata now that the topic is subscribed, before the first
        # JoinGroup: joined without it, the member is assigned nothing (or its
        # assignment snapshot is empty) and must rebalance again at once.
        consumer.topics()
        return consumer

    def _rejoin_if_stuck(self) -> None:
        """kafka-python 3.0.12 can drop the end of a rebalance (SyncGroup answered,
        the assignment never applied, no further rejoin) when polls use short
        timeouts; a member that has waited this long for an assignment starts over
        with a fresh consumer."""
        since = self._unassigned_since
        if since is None or time.monotonic() - since < self.stream.rejoin_after:
            return
        log.warning("kafka.rebalance_stuck", group=self.group, waited=self.stream.rejoin_after)
        self._unassigned_since = time.monotonic()
        try:
            fresh = self._join()
        except (KafkaError, OSError) as exc:  # the broker is away: try again later
            log.warning("kafka.rejoin_failed", group=self.group, error=repr(exc))
            return
        self.restarts += 1
        old, self._consumer = self._consumer, fresh
        self._owned = ()
        self._generation += 1
        try:
            old.close(autocommit=False, timeout_ms=2_000)
        except KafkaError as exc:  # it is being replaced either way
            log.debug("kafka.close_failed", group=self.group, error=repr(exc))

    def _tp(self, partition: int) -> Any:
        return TopicPartition(self.stream.topic, partition)

    # -- rebalance callbacks (consumer IO thread) ------------------------------------

    def _revoked(self, partitions: set[int]) -> None:
        self._owned = tuple(p for p in self._owned if p not in partitions)
        self._unassigned_since = time.monotonic()
        self._generation += 1

    def _assigned(self, assigned: list[Any]) -> None:
        topic = self.stream.topic
        owned = sorted(tp.partition for tp in self._consumer.assignment() if tp.topic == topic)
        applied = self.lookup(owned)
        self._seek([tp.partition for tp in assigned if tp.topic == topic], applied)
        self._owned = tuple(owned)
        self._unassigned_since = None
        self._generation += 1
        log.info("kafka.partitions_assigned", group=self.group, offsets=applied)

    def _seek(self, partitions: Sequence[int], applied: Mapping[int, int]) -> None:
        """Position each partition just past the offset the projection applied."""
        for p in partitions:
            offset = applied.get(p, -1)
            if offset >= 0:
                self._consumer.seek(self._tp(p), offset + 1)
            else:
                self._consumer.seek_to_beginning(self._tp(p))

    # -- Subscription ------------------------------------------------------------------

    def poll(self, max_records: int, timeout: float) -> list[StreamRecord]:
        if self._fetcher is None:
            return self._fetch(max_records, timeout)
        deadline = time.monotonic() + timeout
        with self._handover:
            while not self._ready:
                if self._failure is not None:
                    raise self._failure  # the runner subscribes afresh
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return []
                self._handover.wait(remaining)
            out: list[StreamRecord] = []
            ready = self._ready
            while ready and len(out) < max_records:
                chunk, room = ready[0], max_records - len(out)
                if len(chunk) <= room:
                    out += ready.popleft()
                else:
                    out += chunk[:room]
                    ready[0] = chunk[room:]
            self._ready_count -= len(out)
            self._handover.notify_all()
        return out

    def committed(self, offsets: Mapping[int, int]) -> None:
        if self._fetcher is None:
            self._commit(offsets)
            return
        with self._handover:  # the fetching thread owns the consumer: it sends them
            self._commits.update(offsets)

    def lag(self) -> int | None:
        if self._fetcher is None:
            return self._lag
        with self._handover:
            lag = self._ready_lag
            return None if lag is None else lag + self._ready_count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        fetcher = self._fetcher
        if fetcher is not None:
            with self._handover:
                self._handover.notify_all()
            if fetcher is not threading.current_thread():
                fetcher.join(_FETCHER_STOP_SECONDS)
            if fetcher.is_alive():
                log.warning("kafka.fetcher_still_running", group=self.group)
            self._send_commits()
        self._consumer.close(autocommit=False, timeout_ms=5_000)
        if self._high_reader is not None:
            try:
                self._high_reader.close(autocommit=False, timeout_ms=1_000)
            except KafkaError as exc:  # closing a consumer of an unreachable broker
                log.debug("kafka.close_failed", group=self.group, error=repr(exc))

    # -- fetching (the fetching thread, or the polling one when fetch_ahead is 0) -----

    def _fetch_ahead(self) -> None:
        """Keep up to ``fetch_ahead`` records merged and ready for ``poll``."""
        limit = self.stream.fetch_ahead
        chunk = int(self._options["max_poll_records"])
        try:
            while not self._closed:
                self._send_commits()
                with self._handover:
                    room = limit - self._ready_count
                    if room <= 0:
                        self._handover.wait(_FETCH_WAIT_SECONDS)
                        continue
                out = self._fetch(min(room, chunk), _FETCH_WAIT_SECONDS)
                with self._handover:
                    if out:
                        self._ready.append(out)
                        self._ready_count += len(out)
                    self._ready_lag = self._lag
                    self._handover.notify_all()
        except Exception as exc:  # handed to the runner, which subscribes afresh
            log.warning("kafka.fetch_failed", group=self.group, error=repr(exc))
            with self._handover:
                self._failure = exc
                self._handover.notify_all()

    def _send_commits(self) -> None:
        with self._handover:
            commits, self._commits = self._commits, {}
        if commits:
            self._commit(commits)

    def _fetch(self, max_records: int, timeout: float) -> list[StreamRecord]:
        """Merged records, waiting up to ``timeout`` for some; with no time to wait,
        the records kafka-python has already fetched."""
        deadline = time.monotonic() + timeout
        polled = False
        while True:
            self._rejoin_if_stuck()
            self._sync()
            out = self._merge(max_records)
            if out:
                return out
            remaining = deadline - time.monotonic()
            if self._closed or (polled and remaining <= 0):
                return []
            polled = True
            generation = self._generation
            fetched = self._consumer.poll(
                timeout_ms=max(int(remaining * 1000), 0), max_records=max_records
            )
            if self._generation != generation or self._generation != self._synced:
                continue  # the assignment moved meanwhile: _sync drops this and re-seeks
            if fetched:
                self._stable.clear()  # stale once newer records were fetched
                self._buffer(fetched)
                out = self._merge(max_records)
                if out:
                    return out
            blocked = self._blocking()
            if blocked:
                self._refresh_stable(blocked)

    def _commit(self, offsets: Mapping[int, int]) -> None:
        owned = set(self._owned)
        commit = {
            self._tp(p): OffsetAndMetadata(o + 1, "", -1) for p, o in offsets.items() if p in owned
        }
        if commit:
            try:
                self._consumer.commit_async(commit)
            except KafkaError as exc:  # advisory only: the view holds the real positions
                log.debug("kafka.commit_skipped", group=self.group, error=repr(exc))

    # -- merging (fetching side only) -------------------------------------------------

    def _sync(self) -> None:
        """Adopt the latest assignment: empty buffers, positions from the database."""
        generation = self._generation
        if generation == self._synced:
            return
        owned = self._owned
        applied = self.lookup(list(owned)) if owned else {}
        try:
            self._seek(owned, applied)
            for p in owned:
                self._consumer.resume(self._tp(p))
        except KafkaError as exc:  # the assignment moved again; the next call retries
            log.info("kafka.resync_deferred", group=self.group, error=repr(exc))
            return
        self._buffers = {p: deque() for p in owned}
        self._paused = set()
        # A projection that applied nothing starts at the store's first event;
        # otherwise the chain is picked up once every partition has spoken.
        self._watermark = 0 if all(o < 0 for o in applied.values()) else _UNKNOWN
        self._stable = {}
        self._synced = generation
        self._update_lag()

    def _buffer(self, fetched: Mapping[Any, Sequence[Any]]) -> None:
        """Buffer fetched records per partition, decoded; one of a type the subscriber
        does not handle from its headers alone (its value is not decoded)."""
        validate = EventEnvelope.__pydantic_validator__.validate_json
        wanted = self._wanted
        for tp, records in fetched.items():
            partition = tp.partition
            buffer = self._buffers.get(partition)
            if buffer is None:
                continue
            append = buffer.append
            for r in records:
                kind, stated, prev = _read_headers(r.headers)
                skip = wanted is not None and kind is not None and kind not in wanted
                if skip and stated is not None:  # (without a position: decoded after all)
                    at = int(stated)
                    self.passed_over += 1
                    append((at, prev, StreamRecord(partition, r.offset, at, None)))
                    continue
                try:
                    envelope = validate(r.value)
                except (ValidationError, ValueError, TypeError) as exc:
                    self.undecodable += 1
                    log.error(
                        "kafka.record_undecodable",
                        topic=tp.topic,
                        partition=partition,
                        offset=r.offset,
                        error=repr(exc),
                    )
                    continue
                append((envelope.position, prev, StreamRecord.of(partition, r.offset, envelope)))
            if len(buffer) > self.stream.max_buffered and partition not in self._paused:
                self._consumer.pause(tp)
                self._paused.add(partition)
        self._update_lag()

    def _merge(self, max_records: int) -> list[StreamRecord]:
        """Deliver buffered records in store order (see the module doc)."""
        buffers = self._buffers
        heads = [(buf[0][0], p) for p, buf in buffers.items() if buf]
        heapq.heapify(heads)
        out: list[StreamRecord] = []
        watermark = self._watermark
        while heads and len(out) < max_records:
            position, p = heads[0]
            buffer = buffers[p]
            _, prev, record = buffer[0]
            if prev > watermark and not self._others_ready(p):
                break
            buffer.popleft()
            out.append(record)
            watermark = max(watermark, position)
            if buffer:
                heapq.heapreplace(heads, (buffer[0][0], p))
            else:
                heapq.heappop(heads)
        self._watermark = watermark
        if out:
            self._resume_drained()
            self._update_lag()
        return out

    def _others_ready(self, partition: int) -> bool:
        """Every other owned partition has a record waiting or is read to its end."""
        for q, buffer in self._buffers.items():
            if q != partition and not buffer and not self._read_to_end(q):
                return False
        return True

    def _read_to_end(self, partition: int) -> bool:
        stable = self._stable.get(partition)
        if stable is None:
            return False
        position = self._position(partition)
        return position is not None and position >= stable

    def _blocking(self) -> list[int]:
        """Owned partitions with nothing buffered and not known to be read to the end,
        when some other partition has records waiting on them."""
        if not any(self._buffers.values()):
            return []
        return [q for q, buffer in self._buffers.items() if not buffer and q not in self._stable]

    def _refresh_stable(self, partitions: list[int]) -> None:
        """Note the partitions read to their end: their last stable offsets, where no
        transaction is pending (the last stable offset has reached the high
        watermark). A partition with one pending may hold records of positions
        below those waiting elsewhere (see the module doc): it is asked again."""
        tps = [self._tp(p) for p in partitions]
        try:
            ends = self._consumer.end_offsets(tps, timeout_ms=5_000)
            if self._high_reader is None:
                self._high_reader = tail_consumer(
                    self.stream.bootstrap_servers,
                    f"civic-{self.group}-high-watermark",
                    isolation_level="read_uncommitted",
                )
            highs = self._high_reader.end_offsets(tps, timeout_ms=5_000)
        except (KafkaError, OSError) as exc:
            log.warning("kafka.end_offsets_failed", group=self.group, error=repr(exc))
            return
        for tp, offset in ends.items():
            if tp.partition in self._buffers and offset >= highs.get(tp, offset + 1):
                self._stable[tp.partition] = offset

    def _resume_drained(self) -> None:
        for p in [p for p in self._paused if len(self._buffers.get(p, ())) < 1_000]:
            self._paused.discard(p)
            if p in self._buffers:
                self._consumer.resume(self._tp(p))

    def _position(self, partition: int) -> int | None:
        """The consumer's next fetch offset (past commit markers and aborted records),
        without waiting on the network; None while it is being (re)set."""
        try:
            position: int | None = self._consumer.position(self._tp(partition), timeout_ms=0)
        except KafkaError:
            return None
        return position

    def _highwater(self, partition: int) -> int | None:
        try:
            highwater: int | None = self._consumer.highwater(self._tp(partition))
        except KafkaError:
            return None
        return highwater

    def _update_lag(self) -> None:
        """Records not yet delivered: behind each owned partition's high watermark plus
        those buffered here (unknown until every partition has been fetched once)."""
        if not self._buffers:
            self._lag = None
            return
        total = 0
        for p, buffer in self._buffers.items():
            highwater, position = self._highwater(p), self._position(p)
            if highwater is None or position is None:
                self._lag = None
                return
            total += max(highwater - position, 0) + len(buffer)
        self._lag = total
