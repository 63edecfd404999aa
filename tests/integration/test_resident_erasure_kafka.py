"""Crypto-shredding of residents' data on the real broker: the Kafka topic never
carries an order's or a wish's personal data in clear, and once erased, what it
carries can no longer be opened."""

from __future__ import annotations

from uuid import UUID

import pytest

from infra.relay import Relay
from infra.settings import Settings
from projections.envelope import EventEnvelope
from services import commands as c
from services.bootstrap import build_application
from services.principals import SYSTEM
from tests.integration.test_erasure_kafka import _assert_absent, _topic_messages

pytestmark = pytest.mark.kafka

NAME, PHONE, ADDRESS, REF = "诸葛桂芳", "13744448888", "五里店路8号", "档案-秘密-K7"


def _first(messages: list[bytes], aggregate: UUID, name: str) -> dict[str, str]:
    for value in messages:
        envelope = EventEnvelope.model_validate_json(value)
        if envelope.aggregate_id == aggregate and envelope.name == name:
            return envelope.payload
    raise AssertionError(f"{name} was not published")


def test_the_topic_carries_only_ciphertext_of_residents(kafka_config: Settings) -> None:
    app = build_application(kafka_config)
    relay = Relay.from_settings(kafka_config, app)
    try:
        center = app.execute(c.OpenUnit(code="c", name="中心", tier="center"), SYSTEM)
        unit = center.result["unit_id"]
        item = app.execute(
            c.AddMenuItem(unit_id=unit, category="elderly_disabled", title="理发"), SYSTEM
        ).result["item_id"]
        placed = app.execute(
            c.PlaceOrder(
                menu_item_id=item, resident_name=NAME, resident_phone=PHONE, address=ADDRESS
            ),
            SYSTEM,
        )
        order = UUID(placed.result["order_id"])
        posted = app.execute(c.PostWish(unit_id=unit, title="书包", resident_ref=REF), SYSTEM)
        wish = UUID(posted.result["wish_id"])
        assert relay.catch_up(60)

        secrets = [NAME, PHONE, ADDRESS, REF]
        before = _topic_messages(kafka_config)
        _assert_absent(before, secrets)
        order_payload = _first(before, order, "Placed")
        wish_payload = _first(before, wish, "Posted")
        assert app.vault.open(order, "resident_name", order_payload["resident_name"]) == NAME
        assert app.vault.open(wish, "resident_ref", wish_payload["resident_ref"]) == REF

        app.execute(c.EraseOrderResidentData(order_id=order, reason="居民申请"), SYSTEM)
        app.execute(c.EraseWishResidentData(wish_id=wish, reason="居民申请"), SYSTEM)
        assert relay.catch_up(60)
        after = _topic_messages(kafka_config)
        assert set(before) <= set(after)  # nothing on the topic was rewritten
        _assert_absent(after, secrets)
        fresh = build_application(kafka_config)
        try:
            for field in ("resident_name", "resident_phone", "address"):
                assert fresh.vault.open(order, field, order_payload[field]) is None
            assert fresh.vault.open(wish, "resident_ref", wish_payload["resident_ref"]) is None
        finally:
            fresh.close()
        facts = [EventEnvelope.model_validate_json(v) for v in set(after) - set(before)]
        assert sorted(e.name for e in facts) == ["ResidentDataErased"] * 2
        assert all(set(e.payload) == {"reason"} for e in facts)
    finally:
        relay.stop()
        app.close()
