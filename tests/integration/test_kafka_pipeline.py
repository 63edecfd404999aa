"""The Kafka pipeline end to end on a real broker: commands → event store → relay →
Kafka → projection runners → read models; and the same read models whether they
are fed by the embedded stream or by Kafka."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from infra.embedded_stream import EmbeddedStream
from infra.envelope_json import encode_envelope
from infra.envelopes import envelope_from_notification
from infra.kafka_stream import HEADER_POSITION, KafkaStream, header, tail_consumer
from infra.metrics import render_prometheus
from infra.settings import Settings
from projections import leaderboard
from projections.catalog import PROJECTIONS
from projections.envelope import EventEnvelope
from projections.group import RunnerGroup
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import EventStream
from services import commands as c
from services.application import CivicApplication
from services.bootstrap import Platform, build_application
from services.principals import SYSTEM
from tests.conftest import wait_until
from tests.integration.conftest import (
    ROOT,
    History,
    dump_tables,
    kafka_settings,
    ledger_runner,
    load_demo,
    read_ledger,
    rebuild,
)

# -- the documented value ------------------------------------------------------------------


def test_relay_value_is_the_envelope_json_for_every_kind_of_event(tmp_path: Path) -> None:
    app = build_application(kafka_settings(tmp_path, "127.0.0.1:9"))
    try:
        head = load_demo(app, volunteers=60, months=2)
        notifications = app.recorder.select_notifications(start=1, limit=head)
        kinds = {n.topic for n in notifications}
        assert len(kinds) > 15
        for n in notifications:
            expected = envelope_from_notification(n).model_dump_json().encode()
            assert encode_envelope(n) == expected, n.topic
            EventEnvelope.model_validate_json(expected)
    finally:
        app.close()


def test_envelope_schema_document_is_generated_from_the_model() -> None:
    document = ROOT / "docs" / "envelope.schema.json"
    expected = json.dumps(EventEnvelope.model_json_schema(), indent=2, ensure_ascii=False) + "\n"
    assert document.read_text(encoding="utf-8") == expected, (
        "regenerate: .venv/bin/python -c 'import json; from projections.envelope import "
        "EventEnvelope; print(json.dumps(EventEnvelope.model_json_schema(), indent=2, "
        "ensure_ascii=False))' > docs/envelope.schema.json"
    )


# -- one store, two streams ------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.parametrize("kind", ["embedded", "kafka"])
def test_read_models_are_the_same_on_either_stream(
    history: History, kind: str, tmp_path: Path, group_prefix: str
) -> None:
    stream: EventStream
    if kind == "kafka":
        kafka = KafkaStream.from_settings(
            history.settings, group_prefix=group_prefix, session_timeout_ms=6_000
        )
        stream = kafka
    else:
        stream = EmbeddedStream(history.app.recorder)
    paths = rebuild(stream, tmp_path / "views", history.head)
    if isinstance(stream, KafkaStream):
        assert stream.head() == history.head
        stream.close()

    ledger = read_ledger(paths["ledger"])
    ledger.assert_exactly(history.head)  # each event once, in the store's order
    for name, path in paths.items():
        assert dump_tables(path) == history.reference[name], name
    # the same query answers from either
    with sqlite3.connect(paths["leaderboard"]) as conn:
        board = leaderboard.top(conn, period="all", limit=5)
    assert board
    assert board[0].points >= board[-1].points


@pytest.mark.kafka
def test_a_group_of_read_models_on_one_consumer_builds_the_same_views(
    history: History, tmp_path: Path, group_prefix: str
) -> None:
    """``civic project NAME NAME...`` on Kafka: one consumer, each record fetched and
    parsed once, every read model (and the ledger) as each builds alone."""
    stream = KafkaStream.from_settings(
        history.settings, group_prefix=group_prefix, session_timeout_ms=6_000
    )
    names = [*PROJECTIONS, "ledger"]
    runners = [
        ledger_runner(tmp_path / "ledger.sqlite", stream)
        if name == "ledger"
        else ProjectionRunner(PROJECTIONS[name](), ViewStore(tmp_path / f"{name}.sqlite"), stream)
        for name in names
    ]
    group = RunnerGroup(runners, stream)
    group.start()
    try:
        wait_until(
            lambda: all(r.position >= history.head for r in runners),
            60,
            what="the group to catch up",
        )
        assert group.running and all(r.running for r in runners)
    finally:
        group.stop()
        stream.close()
    read_ledger(tmp_path / "ledger.sqlite").assert_exactly(history.head)
    for name, runner in zip(names, runners, strict=True):
        assert runner.healthy, name
        if name != "ledger":
            assert dump_tables(Path(runner.store.path)) == history.reference[name], name


@pytest.mark.kafka
def test_topic_holds_each_event_once_with_headers_and_keys(history: History) -> None:
    consumer = tail_consumer(history.settings.kafka or "", "civic-test-reader")
    try:
        topic = history.settings.kafka_topic
        assert consumer.partitions_for_topic(topic) == set(range(6))
        from kafka import TopicPartition  # noqa: PLC0415

        tps = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen: dict[int, int] = {}
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    position = int(header(r.headers, HEADER_POSITION) or b"0")
                    envelope = EventEnvelope.model_validate_json(r.value)
                    assert envelope.position == position
                    assert r.key == envelope.aggregate_id.bytes
                    assert header(r.headers, "type") == envelope.type.encode()
                    seen[position] = seen.get(position, 0) + 1
                    assert tp.partition >= 0
        assert sorted(seen) == list(range(1, history.head + 1))
        assert set(seen.values()) == {1}
    finally:
        consumer.close()


# -- the platform in Kafka mode -----------------------------------------------------------


@pytest.mark.kafka
def test_commands_reach_the_leaderboard_through_kafka_with_read_your_writes(
    kafka_config: Settings, group_prefix: str
) -> None:
    platform = Platform.build(kafka_config)
    assert isinstance(platform.stream, KafkaStream)
    assert platform.relay is not None
    platform.stream.group_prefix = group_prefix
    ledger = ledger_runner(kafka_config.views_dir / "ledger.sqlite", platform.stream)
    platform.runners["ledger"] = ledger
    platform.start()
    try:
        # one consumer for every read model (and the ledger), on the group's thread
        assert platform.group is not None
        assert platform.group.members == list(platform.runners.values())
        assert all(r.running for r in platform.runners.values())
        app = platform.app
        head = load_demo(app, volunteers=30, months=1)
        board = platform.runners["leaderboard"]
        assert board.wait_for(head, 20)
        volunteer = _any_volunteer(app, head)
        before = _points(board, volunteer)
        awarded = 0
        for points in (7, 11, 13):
            result = app.execute(
                c.AwardPoints(volunteer_id=volunteer, points=points, reason="文明户评比"), SYSTEM
            )
            awarded += points
            assert result.position is not None
            assert board.wait_for(result.position, 10)  # read-your-writes, per partition
            assert _points(board, volunteer) == before + awarded

        head = app.head()
        for runner in platform.runners.values():
            assert runner.wait_for(head, 20), runner.name
            assert runner.healthy, runner.dead_letters()[:3]
        wait_until(lambda: platform.relay is not None and platform.relay.lag() == 0, 10)
        read_ledger(Path(ledger.store.path)).assert_exactly(head)

        metrics = render_prometheus(platform)
        topic = kafka_config.kafka_topic
        assert f'civic_relay_published_position{{topic="{topic}"}} {head}' in metrics
        assert f'civic_relay_lag_events{{topic="{topic}"}} 0' in metrics
        assert f'civic_projection_position{{projection="leaderboard"}} {head}' in metrics
        assert 'civic_projection_healthy{projection="audit_trail"} 1' in metrics
        assert "# TYPE civic_projection_events_applied_total counter" in metrics
    finally:
        platform.close()


def _points(runner: ProjectionRunner, volunteer: Any) -> int:
    with sqlite3.connect(runner.store.path) as conn:
        mine = leaderboard.rank_of(conn, str(volunteer), period="all")
    return mine[1].points if mine is not None else 0


def _any_volunteer(app: CivicApplication, head: int) -> Any:
    for n in app.recorder.select_notifications(start=1, limit=head):
        if n.topic.endswith("Volunteer.Registered"):
            return n.originator_id
    raise AssertionError("the demo registered no volunteer")
