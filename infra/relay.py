"""The relay: publishes the event store's notification log to Kafka, exactly once.

The event store is the transactional outbox: a command's events and nothing else
commit together, and the relay reads them back in notification order and
produces each to the topic (key: aggregate id, value: the envelope's JSON,
headers ``position``, ``type`` and ``prev``; see ``infra.kafka_stream``).

Exactly once without an offset store of its own: every batch is one Kafka
transaction (a transactional producer, hence idempotent, acks=all), and on every
(re)connection the relay first fences any previous instance (``init_transactions``
completes or aborts its open transaction) and then reads the position of the
last *committed* record of every partition. Batches are published in order, so
everything up to the largest of those positions is published and nothing after
it is; the relay continues from there. A crash anywhere (before, during or after
a commit) therefore loses nothing and publishes nothing twice; consumers also
skip anything at or below what they applied.

The relay is decoupled from commands: while the broker is unreachable commands
keep committing to the store, the relay retries with back-off and catches up.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self
from uuid import UUID

import structlog
from eventsourcing.persistence import ApplicationRecorder
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from infra.envelope_json import AggregateRef, EnvelopeWriter, event_id_text
from infra.kafka_stream import (
    HEADER_POSITION,
    HEADER_PREV,
    HEADER_TYPE,
    bootstrap_list,
    ensure_topic,
    message_key,
    partition_for_key,
    read_last_record,
    tail_consumer,
)
from infra.stored_rows import RowReader, StoredRow

if TYPE_CHECKING:
    from infra.settings import Settings
    from services.application import CivicApplication

log = structlog.get_logger(__name__)

Header = tuple[str, bytes]
_Record = tuple[bytes, bytes, list[Header], int]  # value, key, headers, partition


@dataclass(frozen=True)
class _Batch:
    after: int  # the position it follows
    last: int  # the position of its last event
    records: list[_Record]


# -- the relay --------------------------------------------------------------------------


@dataclass
class RelayStats:
    published: int = 0  # the last global position known to be committed in Kafka
    events: int = 0  # events this process published
    batches: int = 0
    errors: int = 0
    last_error: str | None = None
    connected: bool = False
    started_at: float = field(default_factory=time.time)


class Relay:
    """Follows the store's notification log and publishes it (see module doc)."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        bootstrap_servers: str,
        topic: str = "civic.events",
        *,
        partitions: int = 6,
        transactional_id: str | None = None,
        batch_size: int = 5_000,
        poll_interval: float = 0.02,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        commit_timeout: float = 30.0,
        decode_state: Callable[[bytes], bytes] | None = None,
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.recorder = recorder
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self.transactional_id = transactional_id or f"civic.relay.{topic}"
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.commit_timeout = commit_timeout  # flush + commit of one batch, at most
        self.decode_state = decode_state
        self.producer_options = dict(producer_options or {})
        self.stats = RelayStats()
        self._producer: Any = None
        self._partition_count = partitions
        self._writer = EnvelopeWriter()
        # per aggregate (keyed by the id as the store gives it): what its envelopes
        # repeat, its record key and partition; per event type: its header
        self._aggregates: dict[UUID | str, tuple[AggregateRef, bytes, int]] = {}
        self._type_headers: dict[str, Header] = {}
        self._rows = RowReader(recorder)
        self._ahead: _Batch | None = None  # the next batch, prepared while one commits
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published = threading.Condition()

    @classmethod
    def from_settings(cls, settings: Settings, app: CivicApplication, **options: Any) -> Self:
        """A relay for the application's store, woken by its commits."""
        if not settings.kafka:
            msg = "settings.kafka (CIVIC_KAFKA) names no Kafka bootstrap servers"
            raise ValueError(msg)
        relay = cls(
            app.recorder,
            settings.kafka,
            settings.kafka_topic,
            partitions=settings.kafka_partitions,
            **options,
        )
        listeners = getattr(app.recorder, "listeners", None)
        if isinstance(listeners, list):
            listeners.append(relay.notify)
        return relay

    # -- status ----------------------------------------------------------------------

    @property
    def published(self) -> int:
        return self.stats.published

    @property
    def last_error(self) -> str | None:
        return self.stats.last_error

    @property
    def running(self) -> bool:
        """Whether this process runs the relay's thread."""
        return self._thread is not None and self._thread.is_alive()

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def lag(self) -> int:
        """Events in the store not yet published."""
        return max(self.head() - self.stats.published, 0)

    # -- lifecycle ---------------------------------------------------------------------

    def notify(self, head: int) -> None:
        """The event store's commit listener: wake the relay (cheap; any thread)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name="kafka-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._disconnect()

    def run_forever(self) -> None:
        log.info("relay.started", topic=self.topic, transactional_id=self.transactional_id)
        delay = self.backoff
        while not self._stop.is_set():
            try:
                self._wake.clear()
                if self.publish_batch() == 0:
                    self._wake.wait(self.poll_interval)
                delay = self.backoff
            except Exception as exc:  # broker down, fenced, timed out: reconnect and go on
                self._failed(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_backoff)
        log.info("relay.stopped", topic=self.topic, published=self.stats.published)

    def catch_up(self, timeout: float = 30.0) -> bool:
        """Publish until the store's current head is published (tools and tests;
        not while the relay thread runs)."""
        deadline = time.monotonic() + timeout
        target = self.head()
        while time.monotonic() < deadline:
            try:
                self.publish_batch()
            except Exception as exc:  # the same recovery as the relay thread
                self._failed(exc)
                time.sleep(self.backoff)
                continue
            if self.stats.published >= target:
                return True
        return False

    def wait_published(self, position: int, timeout: float) -> bool:
        """Block until ``position`` is committed in Kafka (by the relay thread)."""
        deadline = time.monotonic() + timeout
        with self._published:
            while self.stats.published < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._published.wait(min(remaining, 0.1))
        return True

    # -- publishing --------------------------------------------------------------------

    def publish_batch(self) -> int:
        """Publish the next batch of stored events in one Kafka transaction; returns
        how many were published (0: nothing new)."""
        producer = self.connect()
        after = self.stats.published
        batch, self._ahead = self._ahead, None
        if batch is None or batch.after != after:
            batch = self.prepare(after)
        if batch is None:
            return 0
        send = producer.send
        topic = self.topic
        producer.begin_transaction()
        for value, key, headers, partition in batch.records:
            send(topic, value, key, headers, partition)
        # Flush first: kafka-python 3.0.12's sender starts a flush for the commit that
        # it never ends, which turns linger_ms off for every later transaction (each
        # record then goes out in a batch of its own); a flush of ours ends cleanly.
        committing = _InBackground(
            lambda: _flush_and_commit(producer, self.commit_timeout), "commit_transaction"
        )
        try:
            if len(batch.records) >= self.batch_size:
                # catching up: the next batch is read and encoded while the broker
                # takes this one (used only if this one commits: see ``after``);
                # interleaved runs of bench/bench_kafka.py (a): 5-30% less wall time,
                # the same CPU
                self._ahead = self.prepare(batch.last)
        finally:
            committing.result(self.commit_timeout)
        with self._published:
            self.stats.published = batch.last
            self.stats.events += len(batch.records)
            self.stats.batches += 1
            self._published.notify_all()
        return len(batch.records)

    def prepare(self, after: int) -> _Batch | None:
        """The records of the stored events after ``after`` (a batch of them), or
        ``None`` if there are none yet."""
        rows = self.read(after, self.batch_size)
        if not rows:
            return None
        # The whole batch is encoded before any of it is sent: interleaving the two
        # costs a third more CPU (the producer's IO thread contends for the GIL).
        decode = self.decode_state
        encode = self._writer.encode
        aggregates = self._aggregates
        type_headers = self._type_headers
        records: list[_Record] = []
        append = records.append
        prev = b"%d" % after
        for position, originator_id, version, topic, state in rows:
            aggregate, key, partition = aggregates.get(originator_id) or self._aggregate(
                originator_id
            )
            position_text = b"%d" % position
            value = encode(
                position,
                position_text,
                aggregate,
                version,
                topic,
                decode(state) if decode else state,
            )
            headers = [
                (HEADER_POSITION, position_text),
                type_headers.get(topic) or self._type_header(topic),
                (HEADER_PREV, prev),
            ]
            append((value, key, headers, partition))
            prev = position_text
        return _Batch(after, rows[-1][0], records)

    def read(self, after: int, limit: int) -> Sequence[StoredRow]:
        """Up to ``limit`` stored events after position ``after``, in order."""
        return self._rows.read(after, limit)

    def _aggregate(self, originator_id: UUID | str) -> tuple[AggregateRef, bytes, int]:
        if len(self._aggregates) > 200_000:
            self._aggregates.clear()
        aggregate = AggregateRef.of(originator_id)
        key = message_key(aggregate.id)
        found = self._aggregates[originator_id] = (
            aggregate,
            key,
            partition_for_key(key, self._partition_count),
        )
        return found

    def _type_header(self, topic: str) -> Header:
        found = self._type_headers[topic] = (HEADER_TYPE, topic.encode())
        return found

    # -- connection --------------------------------------------------------------------

    def connect(self) -> Any:
        """The live producer: on first use (and after any failure) make the topic if
        missing, fence earlier relays and read where publishing stopped."""
        if self._producer is not None:
            return self._producer
        self._partition_count = ensure_topic(self.bootstrap_servers, self.topic, self.partitions)
        self._aggregates.clear()
        self._ahead = None
        options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_list(self.bootstrap_servers),
            "client_id": "civic-relay",
            "transactional_id": self.transactional_id,
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 100,  # a transaction's commit flushes at once; until then, fill batches
            "batch_size": 1_048_576,
            "max_request_size": 8_388_608,
            "transaction_timeout_ms": 15_000,
            "delivery_timeout_ms": 30_000,
            "request_timeout_ms": 10_000,
            "max_block_ms": 10_000,
            "bootstrap_timeout_ms": 5_000,
            "reconnect_backoff_max_ms": 1_000,
            # back-to-back transactions meet CONCURRENT_TRANSACTIONS while the previous
            # commit's markers are written; the default 100 ms retry puts ~100 ms on
            # the freshness tail
            "retry_backoff_ms": 20,
        }
        options.update(self.producer_options)
        producer = KafkaProducer(**options)
        try:
            # Fences any earlier relay with this transactional id and completes or
            # aborts its open transaction, so the tail read next is final.
            producer.init_transactions()
            reader = tail_consumer(self.bootstrap_servers, "civic-relay-tail")
            try:
                published, last = read_last_record(reader, self.topic, after_fencing=True)
            finally:
                reader.close(autocommit=False, timeout_ms=2_000)
        except BaseException:
            _close_quietly(producer)
            raise
        head = self.head()
        problem = None
        if published > head:
            problem = f"holds events up to position {published} but the store's head is {head}"
        elif published and not self._stored_at(published, last):
            problem = f"holds another event at position {published} than the store"
        if problem is not None:
            _close_quietly(producer)
            msg = (
                f"topic {self.topic!r} {problem}: the topic belongs to another store (or "
                "to this one before a restore); give the relay a new topic"
            )
            raise RuntimeError(msg)
        self._producer = producer
        with self._published:
            self.stats.published = published
            self.stats.connected = True
            self._published.notify_all()
        log.info("relay.connected", topic=self.topic, published=published, head=head)
        return producer

    def _stored_at(self, position: int, value: bytes | None) -> bool:
        """Whether the record ``value`` carries the event the store holds at ``position``
        (its ``event_id`` names the aggregate and version: ``docs/envelope.schema.json``)."""
        try:
            event_id = json.loads(value or b"null")["event_id"]
        except (ValueError, TypeError, KeyError):
            return False
        found = self.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            return False
        n = found[0]
        aggregate = n.originator_id if isinstance(n.originator_id, UUID) else UUID(n.originator_id)
        return bool(event_id == event_id_text(aggregate.bytes, n.originator_version))

    def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        self.stats.connected = False
        if producer is not None:
            _close_quietly(producer)

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self.stats.last_error = repr(exc)
        log.warning(
            "relay.publish_failed",
            topic=self.topic,
            published=self.stats.published,
            error=repr(exc),
        )
        self._disconnect()


class _InBackground:
    """A blocking producer call in a thread of its own, waited for with a deadline.
    kafka-python 3.0's ``commit_transaction`` waits without one, and a broker that
    goes away at the wrong moment leaves it waiting for ever; the relay then gives
    the producer up (a new one fences it and aborts its transaction) instead of
    stalling. Meanwhile the relay's own thread can do other work."""

    def __init__(self, call: Callable[[], object], what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self._outcome: list[BaseException | None] = []
        self._thread = threading.Thread(
            target=self._run, args=(call,), name=f"relay-{what}", daemon=True
        )
        self._thread.start()

    def _run(self, call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:  # handed to the caller of result()
            self._outcome.append(exc)
        else:
            self._outcome.append(None)

    def result(self, timeout: float) -> None:
        """Wait until ``timeout`` seconds after the start; raise what the call raised."""
        self._thread.join(max(self.started + timeout - time.monotonic(), 0.0))
        if not self._outcome:
            msg = f"{self.what} did not complete within {timeout:.0f} s"
            raise KafkaTimeoutError(msg)
        error = self._outcome[0]
        if error is not None:
            raise error


def _flush_and_commit(producer: Any, timeout: float) -> None:
    producer.flush(timeout=timeout)
    producer.commit_transaction()


def _close_quietly(producer: Any) -> None:
    """Close a producer whose transaction may be dead; an open transaction is
    aborted by the broker when the next relay fences it (or on its timeout)."""
    try:
        producer.close(timeout=1)
    except Exception as exc:  # closing cannot make things worse; note it and move on
        log.debug("relay.producer_close_failed", error=repr(exc))
