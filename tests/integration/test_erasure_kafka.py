"""Crypto-shredding on the real broker: the Kafka topic never carries a volunteer's
personal data in clear, and once the volunteer is erased, what it carries can no
longer be opened (messages on a topic cannot be deleted; their key can)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.volunteers import mask_document_number
from infra.kafka_stream import tail_consumer
from infra.relay import Relay
from infra.settings import Settings
from projections.envelope import EventEnvelope
from services import commands as c
from services.bootstrap import build_application
from services.principals import SYSTEM
from tests.conftest import open_network, register_volunteer, resident_id

pytestmark = pytest.mark.kafka

NAME, PHONE = "司马春兰", "13655556666"


def _topic_messages(settings: Settings) -> list[bytes]:
    from kafka import TopicPartition  # noqa: PLC0415

    consumer = tail_consumer(settings.kafka or "", "civic-test-erasure")
    try:
        topic = settings.kafka_topic
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        values: list[bytes] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(r.value for r in records)
        return values
    finally:
        consumer.close()


def _registration(messages: list[bytes], volunteer: UUID) -> dict[str, Any]:
    for value in messages:
        envelope = EventEnvelope.model_validate_json(value)
        if envelope.aggregate_id == volunteer and envelope.name == "Registered":
            return envelope.payload
    raise AssertionError("the registration was not published")


def test_the_topic_carries_only_ciphertext_and_erasure_shreds_it(kafka_config: Settings) -> None:
    app = build_application(kafka_config)
    relay = Relay.from_settings(kafka_config, app)
    try:
        _, _, station = open_network(app)
        id_number = resident_id()
        volunteer = register_volunteer(app, station, name=NAME, phone=PHONE, id_number=id_number)
        app.execute(c.AwardPoints(volunteer_id=volunteer, points=12, reason="评比"), SYSTEM)
        assert relay.catch_up(60)

        secrets = [NAME, PHONE, id_number, mask_document_number(id_number)]
        before = _topic_messages(kafka_config)
        _assert_absent(before, secrets)
        payload = _registration(before, volunteer)
        # the published token is the data: it opens with the volunteer's key...
        assert app.vault.open(volunteer, "name", payload["name"]) == NAME
        assert app.vault.open(volunteer, "phone", payload["phone"]) == PHONE

        app.execute(c.EraseVolunteer(volunteer_id=volunteer, reason="本人申请"), SYSTEM)
        assert relay.catch_up(60)
        after = _topic_messages(kafka_config)
        assert set(before) <= set(after)  # nothing on the topic was rewritten
        _assert_absent(after, secrets)
        # ...and after erasure it opens with nothing, here or in a fresh process
        assert app.vault.open(volunteer, "name", payload["name"]) is None
        fresh = build_application(kafka_config)
        try:
            for field in ("name", "phone", "document_masked"):
                assert fresh.vault.open(volunteer, field, payload[field]) is None
        finally:
            fresh.close()
        erased = [EventEnvelope.model_validate_json(v) for v in set(after) - set(before)]
        assert [e.name for e in erased] == ["Erased"]
        assert set(erased[0].payload) == {"reason"}
        _assert_absent([Path(kafka_config.vault_db).read_bytes()], secrets)
    finally:
        relay.stop()
        app.close()


def _assert_absent(values: list[bytes], secrets: list[str]) -> None:
    blob = b"\n".join(values)
    for secret in secrets:
        for form in (secret.encode(), json.dumps(secret).strip('"').encode()):
            assert form not in blob, secret
