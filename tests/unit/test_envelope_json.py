"""The spliced envelope (``EnvelopeWriter``) is byte for byte the parsed one
(``encode_envelope``, itself checked against the pydantic model): on every kind of
event the demo records, on random states written by the library's transcoder, and
on the states it must not splice (which take the parsed path)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Notification,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.envelope_json import AggregateRef, EnvelopeWriter, encode_envelope
from infra.envelopes import envelope_from_notification
from infra.settings import Settings
from services.bootstrap import build_application
from services.demo import DemoConfig, generate, load

AWARDED = "domain.passbook:Passbook.PointsAwarded"  # class_version 1
CONFIRMED = "domain.activities:Activity.ServiceConfirmed"  # class_version 2, upcasts v1
OPENED = "domain.passbook:Passbook.Opened"  # a created event (originator_topic)
AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def transcoder() -> JSONTranscoder:
    """The library's transcoder as every application configures it."""
    t = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        t.register(transcoding)
    return t


TRANSCODER = transcoder()


def stored(payload: Mapping[str, Any], *, actor: Any = "key:system", **head: Any) -> bytes:
    """A state as the library's mapper writes it: timestamp, originator_topic (on a
    created event), actor, the event's fields, class_version last."""
    state: dict[str, Any] = {"timestamp": head.pop("timestamp", AT)}
    if "originator_topic" in head:
        state["originator_topic"] = head.pop("originator_topic")
    if actor is not None:
        state["actor"] = actor
    state.update(payload)
    if "class_version" in head:
        state["class_version"] = head.pop("class_version")
    assert not head
    return TRANSCODER.encode(state)


def both(
    state: bytes, topic: str = AWARDED, position: int = 7, version: int = 3
) -> tuple[bytes, bytes, EnvelopeWriter]:
    """(spliced or fallen back, parsed), and the writer (which path it took)."""
    aggregate = AggregateRef.of(uuid4())
    writer = EnvelopeWriter()
    value = writer.encode(position, b"%d" % position, aggregate, version, topic, state)
    n = Notification(
        id=position,
        originator_id=aggregate.id,
        originator_version=version,
        topic=topic,
        state=state,
    )
    return value, encode_envelope(n), writer


def test_every_kind_of_demo_event_is_spliced_to_the_same_bytes(tmp_path: Path) -> None:
    app = build_application(Settings(data_dir=tmp_path, log_format="json"))
    try:
        plan = generate(
            DemoConfig(seed=7, volunteers=60, months=2),
            document_secret=app.document_secret,
            points_rule=app.points_rule,
        )
        assert not load(app, plan).failed
        notifications = app.recorder.select_notifications(start=1, limit=app.head())
        writer = EnvelopeWriter()
        refs: dict[UUID | str, AggregateRef] = {}
        for n in notifications:
            aggregate = refs.setdefault(n.originator_id, AggregateRef.of(n.originator_id))
            value = writer.encode(
                n.id, b"%d" % n.id, aggregate, n.originator_version, n.topic, n.state
            )
            assert value == encode_envelope(n), n.topic
            assert value == envelope_from_notification(n).model_dump_json().encode(), n.topic
        assert len({n.topic for n in notifications}) > 15
        assert writer.parsed == 0  # the demo's states are all spliced
        assert writer.spliced == len(notifications)
    finally:
        app.close()


def test_unicode_escapes_and_typed_values_are_spliced() -> None:
    text = '文明户评比 "quoted" back\\slash \n\t\x00\x1f\x7f \u2028\u2029 🎉 é'
    payload = {
        "reason": text,
        "lot_id": uuid4(),
        "path": [uuid4(), uuid4()],
        "nested": {"at": AT, "amount": Decimal("12.50"), "list": [None, True, 1.5, -0.0]},
        "points": 7,
        "big": 2**70,
        "empty": {},
        "not_a_number": float("nan"),
        "infinite": float("-inf"),
    }
    value, parsed, writer = both(stored(payload, actor="resident:张三 🎉"))
    assert value == parsed
    assert writer.spliced == 1
    assert json.loads(value)["payload"]["reason"] == text


def test_an_empty_payload_a_created_event_and_odd_uuids_are_spliced() -> None:
    upper = stored({"x": 1}).replace(
        b'"x":1', b'"x":{"_type_":"uuid_hex","_data_":"%b"}' % uuid4().hex.upper().encode()
    )
    for state, topic in [
        (upper, AWARDED),  # lower-cased, as encode_envelope does
        (stored({"ratio": 0.5, "ciphertext": "pii1.Once-0j3S"}), AWARDED),  # no exponent
        # exponent-like text inside strings (random base64 ciphertext reads so at times)
        (stored({"ciphertext": "pii1.x3e-5y7E+2", "ratio": 0.5, "n": "1e-05"}), AWARDED),
        (stored({}), AWARDED),
        (stored({}, originator_topic="domain.passbook:Passbook"), OPENED),
        (stored({"volunteer_id": uuid4()}, originator_topic="domain.passbook:Passbook"), OPENED),
    ]:
        value, parsed, writer = both(state, topic)
        assert value == parsed
        assert writer.spliced == 1, state


def test_a_timestamp_outside_utc_is_written_as_pydantic_writes_it() -> None:
    east = datetime(2026, 3, 1, 17, 30, tzinfo=timezone(timedelta(hours=8)))
    state = stored({"points": 1}, timestamp=east)
    value, parsed, writer = both(state)
    assert value == parsed
    assert writer.spliced == 1
    assert json.loads(value)["recorded_at"] == "2026-03-01T17:30:00+08:00"


def test_a_versioned_event_is_spliced_at_its_version_and_upcast_below_it() -> None:
    fields = {
        "volunteer_id": uuid4(),
        "confirmation_id": uuid4(),
        "minutes": 90,
        "people_served": 3,
        "note": "",
    }
    current = stored({**fields, "hours_source": "organizer"}, class_version=2)
    value, parsed, writer = both(current, CONFIRMED)
    assert value == parsed
    assert writer.spliced == 1
    empty = stored({}, class_version=2)
    value, parsed, writer = both(empty, CONFIRMED)
    assert value == parsed
    assert writer.spliced == 1

    legacy = stored(fields)  # version 1: no class_version, no hours_source
    value, parsed, writer = both(legacy, CONFIRMED)
    assert value == parsed
    assert writer.parsed == 1
    envelope = json.loads(value)
    assert envelope["version"] == 2
    assert envelope["payload"]["hours_source"] == "organizer"


def test_states_it_cannot_vouch_for_take_the_parsed_path() -> None:
    hex32 = uuid4().hex
    states = {
        "a float in exponent form": stored({"ratio": 1e-05, "big": 1e22}),
        "an escape json would not write": stored({"reason": "x"}).replace(b'"x"', b'"\\u00e9"'),
        "a typed value of another kind": stored({"x": 1}).replace(
            b'"x":1', b'"x":{"_type_":"date_iso","_data_":"2026-03-01"}'
        ),
        "a UUID written with an escape": stored({"x": 1}).replace(
            b'"x":1', b'"x":{"_type_":"uuid_hex","_data_":"%b\\u0041"}' % hex32[1:].encode()
        ),
        "a typed value with _type_ second": stored({"x": 1}).replace(
            b'"x":1', b'"x":{"_data_":"%b","_type_":"uuid_hex"}' % hex32.encode()
        ),
        "an actor to unescape": stored({"points": 1}, actor='a "quoted" actor'),
        "an actor that is not a string": stored({"points": 1}, actor=uuid4()),
        "no actor": stored({"points": 1}, actor=None),
        "a class version on an unversioned class": stored({"points": 1}, class_version=2),
        "a standard field out of place": stored(
            {"points": 1, "originator_topic": "domain.passbook:Passbook"}
        ),
    }
    for why, state in states.items():
        value, parsed, writer = both(state)
        assert value == parsed, why
        assert writer.parsed == 1, why


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.datetimes(timezones=st.just(UTC))
)
_KEYS = st.text().filter(lambda k: k != "_type_") | st.sampled_from(
    ["actor", "timestamp", "class_version", "originator_topic", "_data_", "e+1"]
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.dictionaries(
        # the library's own keys, never an event's field names (class_version only
        # ever comes last, from the library; originator_topic here is out of place)
        _KEYS.filter(lambda k: k not in {"actor", "timestamp", "class_version"}),
        _VALUES,
        max_size=6,
    ),
    actor=st.text(),
    timestamp=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))])),
    topic=st.sampled_from([AWARDED, CONFIRMED]),
    versioned=st.booleans(),
)
def test_random_states_are_spliced_or_parsed_to_the_same_bytes(
    payload: dict[str, Any], actor: str, timestamp: datetime, topic: str, versioned: bool
) -> None:
    head: dict[str, Any] = {"timestamp": timestamp}
    if versioned:
        head["class_version"] = 2
    value, parsed, _ = both(stored(payload, actor=actor, **head), topic)
    assert value == parsed
