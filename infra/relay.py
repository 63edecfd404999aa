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

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pydantic_core
import structlog
from eventsourcing.persistence import ApplicationRecorder, Notification
from eventsourcing.utils import resolve_topic
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from infra.kafka_stream import (
    HEADER_POSITION,
    HEADER_PREV,
    HEADER_TYPE,
    bootstrap_list,
    ensure_topic,
    message_key,
    partition_for_key,
    read_last_published,
    tail_consumer,
)

if TYPE_CHECKING:
    from infra.settings import Settings
    from services.application import CivicApplication

log = structlog.get_logger(__name__)


# -- the envelope's JSON, straight from the stored state ------------------------------
#
# ``infra.envelopes.envelope_from_notification(n).model_dump_json()`` is the
# definition of a record's value; this is the same bytes about four times faster
# (pydantic-core parses and writes the JSON; no model is built), which is most of
# what the relay spends per event besides kafka-python's own work. The tests
# check the two agree byte for byte on every kind of event the domain records.


_from_json = pydantic_core.from_json
_to_json = pydantic_core.to_json
_sha1 = hashlib.sha1
_VARIANT = "89ab89ab89ab89ab"  # the RFC 4122 variant nibble for each hex digit


def _uuid_text(hex32: str) -> str:
    h = hex32.lower()
    if len(h) != 32:
        return str(UUID(hex32))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _plain(value: Any) -> Any:
    """Unwrap the library's typed JSON (``{"_type_": ..., "_data_": ...}``)."""
    kind = type(value)
    if kind is dict:
        tag = value.get("_type_")
        if tag is not None:
            data = value["_data_"]
            return _uuid_text(data) if tag == "uuid_hex" else data
        return {k: _plain(v) for k, v in value.items()}
    if kind is list:
        return [_plain(v) for v in value]
    return value


def _event_id(aggregate_id: UUID, version: int) -> str:
    """``str(uuid5(aggregate_id, str(version)))``."""
    h = _sha1(aggregate_id.bytes + str(version).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:32]}"


def _utc_text(iso: str) -> str:
    """A stored ISO 8601 instant as pydantic writes it (``Z`` for UTC)."""
    if iso.endswith("+00:00"):
        return iso[:-6] + "Z"
    return _to_json(datetime.fromisoformat(iso)).decode()[1:-1]


_CLASS_VERSIONS: dict[str, tuple[Any, int]] = {}


def _event_class(topic: str) -> tuple[Any, int]:
    found = _CLASS_VERSIONS.get(topic)
    if found is None:
        cls = resolve_topic(topic)
        found = _CLASS_VERSIONS[topic] = (cls, getattr(cls, "class_version", 1))
    return found


def encode_envelope(n: Notification, state: bytes | None = None) -> bytes:
    """The JSON value of the record for notification ``n`` (``state``: plaintext
    state when the store encrypts or compresses)."""
    stored = _from_json(state if state is not None else n.state)
    recorded_at = stored.pop("timestamp")
    stored.pop("originator_topic", None)
    actor = stored.pop("actor", "system")
    version = stored.pop("class_version", 1)
    payload = {k: _plain(v) if type(v) is dict or type(v) is list else v for k, v in stored.items()}
    cls, current = _event_class(n.topic)
    while version < current:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(payload)
        version += 1
    aggregate_id = n.originator_id if isinstance(n.originator_id, UUID) else UUID(n.originator_id)
    return _to_json(
        {
            "event_id": _event_id(aggregate_id, n.originator_version),
            "position": n.id,
            "type": n.topic,
            "version": current,
            "aggregate_id": str(aggregate_id),
            "aggregate_version": n.originator_version,
            "recorded_at": _utc_text(_plain(recorded_at)),
            "actor": _plain(actor),
            "payload": payload,
        }
    )


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
        self._partition_cache: dict[bytes, int] = {}
        self._type_headers: dict[str, bytes] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published = threading.Condition()

    @classmethod
    def from_settings(cls, settings: Settings, app: CivicApplication, **options: Any) -> Relay:
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
        notifications = self.recorder.select_notifications(
            start=after, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        # Encode the whole batch before sending any of it: interleaving the two
        # costs a third more CPU (the producer's IO thread contends for the GIL on
        # every pydantic-core call).
        decode = self.decode_state
        values = [encode_envelope(n, decode(n.state) if decode else None) for n in notifications]
        send = producer.send
        topic = self.topic
        prev = str(after).encode()
        producer.begin_transaction()
        for n, value in zip(notifications, values, strict=True):
            aggregate_id = n.originator_id
            key = message_key(
                aggregate_id if isinstance(aggregate_id, UUID) else UUID(aggregate_id)
            )
            position = str(n.id).encode()
            send(
                topic,
                value=value,
                key=key,
                partition=self._partition(key),
                headers=[
                    (HEADER_POSITION, position),
                    (HEADER_TYPE, self._type_header(n.topic)),
                    (HEADER_PREV, prev),
                ],
            )
            prev = position
        # Flush first: kafka-python 3.0.12's sender starts a flush for the commit that
        # it never ends, which turns linger_ms off for every later transaction (each
        # record then goes out in a batch of its own); a flush of ours ends cleanly.
        producer.flush(timeout=self.commit_timeout)
        _within(producer.commit_transaction, self.commit_timeout, "commit_transaction")
        with self._published:
            self.stats.published = notifications[-1].id
            self.stats.events += len(notifications)
            self.stats.batches += 1
            self._published.notify_all()
        return len(notifications)

    def _partition(self, key: bytes) -> int:
        partition = self._partition_cache.get(key)
        if partition is None:
            if len(self._partition_cache) > 200_000:
                self._partition_cache.clear()
            partition = self._partition_cache[key] = partition_for_key(key, self._partition_count)
        return partition

    def _type_header(self, topic: str) -> bytes:
        value = self._type_headers.get(topic)
        if value is None:
            value = self._type_headers[topic] = topic.encode()
        return value

    # -- connection --------------------------------------------------------------------

    def connect(self) -> Any:
        """The live producer: on first use (and after any failure) make the topic if
        missing, fence earlier relays and read where publishing stopped."""
        if self._producer is not None:
            return self._producer
        self._partition_count = ensure_topic(self.bootstrap_servers, self.topic, self.partitions)
        self._partition_cache.clear()
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
                published = read_last_published(reader, self.topic, after_fencing=True)
            finally:
                reader.close(autocommit=False, timeout_ms=2_000)
        except BaseException:
            _close_quietly(producer)
            raise
        head = self.head()
        if published > head:
            _close_quietly(producer)
            msg = (
                f"topic {self.topic!r} holds events up to position {published} but the "
                f"store's head is {head}: the topic belongs to another store"
            )
            raise RuntimeError(msg)
        self._producer = producer
        with self._published:
            self.stats.published = published
            self.stats.connected = True
            self._published.notify_all()
        log.info("relay.connected", topic=self.topic, published=published, head=head)
        return producer

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


def _within(call: Callable[[], object], timeout: float, what: str) -> None:
    """Run a blocking producer call with a deadline. kafka-python 3.0's
    ``commit_transaction`` waits without one, and a broker that goes away at the
    wrong moment leaves it waiting for ever; the relay then gives the producer up
    (a new one fences it and aborts its transaction) instead of stalling."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, name=f"relay-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        msg = f"{what} did not complete within {timeout:.0f} s"
        raise KafkaTimeoutError(msg)
    error = outcome[0]
    if error is not None:
        raise error


def _close_quietly(producer: Any) -> None:
    """Close a producer whose transaction may be dead; an open transaction is
    aborted by the broker when the next relay fences it (or on its timeout)."""
    try:
        producer.close(timeout=1)
    except Exception as exc:  # closing cannot make things worse; note it and move on
        log.debug("relay.producer_close_failed", error=repr(exc))
