"""Envelopes built from the event store without validation are the envelopes the
validator builds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid4, uuid5

from eventsourcing.persistence import Notification

from domain.units import PracticeUnit
from infra.envelopes import envelope_from_notification, event_id
from projections.envelope import EventEnvelope


def _fields() -> dict[str, object]:
    aggregate = uuid4()
    return {
        "event_id": uuid5(aggregate, "3"),
        "position": 42,
        "type": "domain.units:PracticeUnit.Opened",
        "version": 1,
        "aggregate_id": aggregate,
        "aggregate_version": 3,
        "recorded_at": datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
        "actor": "key:test",
        "payload": {"path": [str(uuid4())], "n": 1.5, "nested": {"a": [1, {"b": None}]}},
    }


def test_a_trusted_envelope_is_the_constructed_one() -> None:
    fields = _fields()
    trusted = EventEnvelope.trusted(**fields)  # type: ignore[arg-type]
    constructed = EventEnvelope.model_construct(**fields)  # type: ignore[arg-type]
    assert trusted == constructed
    assert trusted.model_fields_set == constructed.model_fields_set
    assert trusted.model_dump_json() == constructed.model_dump_json()
    assert EventEnvelope.model_validate_json(trusted.model_dump_json()) == trusted
    assert trusted.name == "Opened"
    assert trusted.aggregate_type == "PracticeUnit"
    assert trusted.model_copy(update={"position": 43}).position == 43
    assert trusted.position == 42


def test_the_event_id_is_uuid5_of_the_aggregate_and_version() -> None:
    aggregate = uuid4()
    for version in (1, 2, 99, 123456):
        assert event_id(aggregate, version) == uuid5(aggregate, str(version))


def test_stored_state_is_unwrapped_at_every_depth() -> None:
    ids = [uuid4() for _ in range(3)]
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-03-02T01:00:00+00:00"},
        "originator_topic": "domain.units:PracticeUnit",
        "actor": "key:test",
        "code": "C",
        "path": [{"_type_": "uuid_hex", "_data_": ids[0].hex}],
        "deep": {"x": [{"y": {"_type_": "uuid_hex", "_data_": ids[1].hex.upper()}}]},
        "parent_id": {"_type_": "uuid_hex", "_data_": ids[2].hex},
        "amount": {"_type_": "decimal_str", "_data_": "1.50"},
    }
    n = Notification(
        id=7,
        originator_id=ids[0],
        originator_version=1,
        topic="domain.units:PracticeUnit.Opened",
        state=json.dumps(state).encode(),
    )
    envelope = envelope_from_notification(n)
    assert envelope.payload == {
        "code": "C",
        "path": [str(ids[0])],
        "deep": {"x": [{"y": str(ids[1])}]},
        "parent_id": str(ids[2]),
        "amount": "1.50",
    }
    assert envelope.recorded_at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert envelope.actor == "key:test"
    assert envelope.event_id == uuid5(ids[0], "1")
    assert envelope.aggregate_id == ids[0]
    assert isinstance(envelope.aggregate_id, UUID)
    assert envelope.version == getattr(PracticeUnit.Opened, "class_version", 1)
    assert EventEnvelope.model_validate_json(envelope.model_dump_json()) == envelope
