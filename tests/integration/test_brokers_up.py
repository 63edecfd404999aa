"""Smoke tests: the real Kafka broker and PostgreSQL server started by
infra/kafka/kafka.sh and infra/postgres/postgres.sh are up and usable.

The suite runner starts them and exports CIVIC_KAFKA_BOOTSTRAP (e.g. 127.0.0.1:9092)
and CIVIC_PG_DSN (e.g. postgresql://civic:civic@127.0.0.1:55432/civic); without
those variables these tests are skipped.
"""

import os
import time
import uuid

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer

KAFKA_BOOTSTRAP = os.environ.get("CIVIC_KAFKA_BOOTSTRAP")
PG_DSN = os.environ.get("CIVIC_PG_DSN")


@pytest.mark.kafka
@pytest.mark.skipif(
    not KAFKA_BOOTSTRAP, reason="CIVIC_KAFKA_BOOTSTRAP not set (start: infra/kafka/kafka.sh start)"
)
def test_kafka_produce_and_consume_one_message() -> None:
    topic = f"test-brokers-up-{uuid.uuid4().hex[:12]}"
    payload = uuid.uuid4().hex.encode()

    producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, enable_idempotence=True, acks="all")
    try:
        # The topic does not exist yet: the broker auto-creates it.
        meta = producer.send(topic, key=b"k", value=payload).get(timeout=30)
    finally:
        producer.close()
    assert meta.topic == topic

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while not values and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(record.value for record in records)
        assert values == [payload]
        assert len(consumer.partitions_for_topic(topic)) == 6  # broker's num.partitions
    finally:
        consumer.close()


@pytest.mark.postgres
@pytest.mark.skipif(
    not PG_DSN, reason="CIVIC_PG_DSN not set (start: infra/postgres/postgres.sh start)"
)
def test_postgres_runs_one_statement() -> None:
    assert PG_DSN is not None  # skipped above otherwise
    with psycopg.connect(PG_DSN) as conn:
        row = conn.execute("SELECT current_user, current_database(), 1 + 1").fetchone()
    assert row == ("civic", "civic", 2)
