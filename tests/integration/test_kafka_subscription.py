"""The Kafka subscription on its own: records fetched ahead on a thread of its own
and handed over in store order, polls that do not wait, and a partition with a
transaction pending never taken for read to its end."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.utils import get_topic
from kafka import KafkaProducer

from domain.volunteers import Volunteer
from infra.kafka_stream import (
    HEADER_POSITION,
    HEADER_PREV,
    HEADER_TYPE,
    KafkaStream,
    KafkaSubscription,
    ensure_topic,
)
from projections.envelope import EventEnvelope
from projections.stream import StreamRecord
from tests.integration.conftest import History, KafkaBroker

pytestmark = pytest.mark.kafka


def _fetchers(group: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"kafka-fetch-{group}" and t.is_alive()]


def _event_positions(records: list[StreamRecord]) -> list[int]:
    """The positions the records' events carry (a subscription to every type decodes all)."""
    positions: list[int] = []
    for r in records:
        assert r.event is not None
        positions.append(r.event.position)
    return positions


def _everything(subscription: KafkaSubscription, head: int, size: int) -> list[int]:
    positions: list[int] = []
    deadline = time.monotonic() + 60
    while len(positions) < head and time.monotonic() < deadline:
        positions += [r.position for r in subscription.poll(size, 0.5)]
    return positions


def test_records_of_types_not_asked_for_come_without_their_event(
    history: History, group_prefix: str
) -> None:
    """A subscriber naming the types it handles is handed every record, in store
    order (its offsets must move past them all), but only those types decoded."""
    stored = history.app.recorder.select_notifications(start=1, limit=history.head)
    wanted = get_topic(Volunteer.Registered)
    stream = KafkaStream.from_settings(history.settings, group_prefix=group_prefix)
    subscription = stream.subscribe("typed", lambda ps: {p: -1 for p in ps}, frozenset({wanted}))
    try:
        records: list[StreamRecord] = []
        deadline = time.monotonic() + 60
        while len(records) < history.head and time.monotonic() < deadline:
            records += subscription.poll(500, 0.5)
    finally:
        subscription.close()
    assert [r.position for r in records] == [n.id for n in stored]
    decoded = [r for r in records if r.event is not None]
    assert [r.position for r in decoded] == [n.id for n in stored if n.topic == wanted]
    assert all(
        r.event is not None and r.event.type == wanted and r.event.position == r.position
        for r in decoded
    )
    assert 0 < len(decoded) < len(records)
    assert subscription.passed_over == len(records) - len(decoded)
    assert subscription.undecodable == 0


@pytest.mark.parametrize("fetch_ahead", [500, 0])
def test_records_are_handed_over_in_store_order_and_the_fetcher_stops(
    history: History, group_prefix: str, fetch_ahead: int
) -> None:
    stream = KafkaStream.from_settings(
        history.settings, group_prefix=group_prefix, fetch_ahead=fetch_ahead
    )
    group = f"order-{fetch_ahead}"
    subscription = stream.subscribe(group, lambda ps: {p: -1 for p in ps})
    try:
        assert len(_fetchers(group)) == (1 if fetch_ahead else 0)
        # polls smaller than what the fetcher hands over: chunks are cut, not lost
        positions = _everything(subscription, history.head, 300)
        assert positions == list(range(1, history.head + 1))
        assert subscription.poll(100, 0.2) == []
        assert subscription.lag() == 0
    finally:
        subscription.close()
    assert _fetchers(group) == []
    started = time.monotonic()
    assert subscription.poll(100, 5.0) == []  # closed: returns at once
    assert time.monotonic() - started < 1.0


def test_a_poll_with_no_time_to_wait_returns_the_records_already_fetched(
    history: History, group_prefix: str
) -> None:
    """On the polling thread (no fetcher): kafka-python fetches far more than a poll
    of 10 returns; polls that do not wait hand those over (and send the next
    fetches) rather than return nothing."""
    stream = KafkaStream.from_settings(history.settings, group_prefix=group_prefix, fetch_ahead=0)
    subscription = stream.subscribe("no-wait", lambda ps: {p: -1 for p in ps})
    try:
        deadline = time.monotonic() + 30
        first: list[Any] = []
        while not first and time.monotonic() < deadline:
            first = subscription.poll(10, 1.0)
        assert first
        more = 0
        deadline = time.monotonic() + 10
        while more < 100 and time.monotonic() < deadline:
            more += len(subscription.poll(10, 0))  # never waits for the network
            time.sleep(0.01)  # (fetch responses land meanwhile)
        assert more >= 100
    finally:
        subscription.close()


# -- a transaction pending on one partition --------------------------------------------


def _value(position: int) -> bytes:
    aggregate = uuid.uuid4()
    return (
        EventEnvelope(
            event_id=uuid.uuid5(aggregate, "1"),
            position=position,
            type="tests:Thing.Happened",
            version=1,
            aggregate_id=aggregate,
            aggregate_version=1,
            recorded_at=datetime(2026, 3, 2, tzinfo=UTC),
            actor="key:test",
            payload={},
        )
        .model_dump_json()
        .encode()
    )


def _send(producer: Any, topic: str, partition: int, position: int) -> None:
    producer.send(
        topic,
        value=_value(position),
        partition=partition,
        headers=[
            (HEADER_POSITION, str(position).encode()),
            (HEADER_TYPE, b"tests:Thing.Happened"),
            (HEADER_PREV, str(position - 1).encode()),
        ],
    )


@pytest.fixture
def producers(kafka_broker: KafkaBroker) -> Iterator[tuple[str, Any, Any]]:
    """A two-partition topic and two transactional producers of it."""
    topic = f"test.pending.{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka_broker.bootstrap, topic, 2)
    made = []
    for name in ("a", "b"):
        producer = KafkaProducer(
            bootstrap_servers=kafka_broker.bootstrap, transactional_id=f"{topic}.{name}"
        )
        producer.init_transactions()
        made.append(producer)
    yield topic, made[0], made[1]
    for producer in made:
        producer.close(timeout=5)


@pytest.mark.parametrize("fetch_ahead", [500, 0])
def test_a_partition_with_a_transaction_pending_is_not_read_to_its_end(
    kafka_broker: KafkaBroker,
    producers: tuple[str, Any, Any],
    group_prefix: str,
    fetch_ahead: int,
) -> None:
    """Position 3 is written to partition 1 in a transaction still open (as when the
    commit markers of one transaction have reached partition 0 but not yet 1), and
    position 4 is committed on partition 0. A subscription picking up the chain
    (positions applied before: the chain is unknown) must wait for partition 1, not
    take it for read to its end and deliver 4 before 3."""
    topic, pending, committed = producers
    committed.begin_transaction()
    _send(committed, topic, 0, 1)
    _send(committed, topic, 1, 2)
    committed.commit_transaction()
    pending.begin_transaction()
    _send(pending, topic, 1, 3)
    pending.flush()
    committed.begin_transaction()
    _send(committed, topic, 0, 4)
    committed.commit_transaction()

    stream = KafkaStream(
        kafka_broker.bootstrap,
        topic,
        partitions=2,
        group_prefix=group_prefix,
        session_timeout_ms=6_000,
        fetch_ahead=fetch_ahead,
    )
    subscription = stream.subscribe("pending", lambda ps: {p: 0 for p in ps})  # 1 and 2 applied
    try:
        delivered: list[int] = []
        deadline = time.monotonic() + 30
        while subscription.lag() is None and time.monotonic() < deadline:
            delivered += _event_positions(subscription.poll(10, 0.2))
        assert subscription.lag() is not None  # assigned, and every partition fetched
        delivered += _event_positions(subscription.poll(10, 1.5))
        assert delivered == []
        pending.commit_transaction()
        deadline = time.monotonic() + 30
        while len(delivered) < 2 and time.monotonic() < deadline:
            delivered += _event_positions(subscription.poll(10, 0.5))
        assert delivered == [3, 4]
    finally:
        subscription.close()
