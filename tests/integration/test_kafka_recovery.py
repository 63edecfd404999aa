"""Failures on the Kafka path, on a real broker: consumers stopped or killed mid-way,
the broker going away while commands keep coming, partitions moving between two
consumers, the relay crashing mid-transaction, and records delivered again. In
every case each event is applied exactly once and the read models equal a
rebuild from the event store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from structlog.testing import capture_logs

from infra.backup import copy_database
from infra.embedded_stream import EmbeddedStream
from infra.kafka_stream import HEADER_POSITION, KafkaStream, header, tail_consumer
from infra.relay import Relay
from infra.settings import Settings
from projections.catalog import PROJECTIONS
from projections.leaderboard import LeaderboardProjection
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import StreamRecord
from services import commands as c
from services.application import CivicApplication
from services.bootstrap import Platform, build_application
from services.principals import SYSTEM
from tests.conftest import wait_until
from tests.integration.conftest import (
    ROOT,
    History,
    KafkaBroker,
    catch_up_to,
    dump_tables,
    kafka_settings,
    ledger_runner,
    load_demo,
    read_ledger,
    rebuild,
)

pytestmark = pytest.mark.kafka


def kafka_stream(settings: Settings, group_prefix: str) -> KafkaStream:
    return KafkaStream.from_settings(
        settings, group_prefix=group_prefix, session_timeout_ms=6_000, rejoin_after=10.0
    )


def volunteers_of(app: CivicApplication) -> list[Any]:
    head = app.head()
    return [
        n.originator_id
        for n in app.recorder.select_notifications(start=1, limit=head)
        if n.topic.endswith("Volunteer.Registered")
    ]


class Traffic:
    """Commands issued from a thread until stopped; every failure is kept."""

    def __init__(self, app: CivicApplication, per_second: float = 100) -> None:
        self.app = app
        self.volunteers = volunteers_of(app)
        self.interval = 1 / per_second
        self.issued = 0
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            volunteer = self.volunteers[k % len(self.volunteers)]
            try:
                self.app.execute(
                    c.AwardPoints(volunteer_id=volunteer, points=1, reason="x"), SYSTEM
                )
                self.issued += 1
            except Exception as exc:  # a command must never fail; the test asserts none did
                self.failures.append(exc)
            k += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def embedded_reference(app: CivicApplication, views: Path) -> dict[str, Any]:
    paths = rebuild(EmbeddedStream(app.recorder), views, app.head())
    return {name: dump_tables(path) for name, path in paths.items()}


def read_topic(settings: Settings) -> tuple[Counter[int], int]:
    """Committed records per position, and how many records (committed or not,
    aborted included) the partitions hold."""
    consumer = tail_consumer(settings.kafka or "", "civic-test-count")
    uncommitted = tail_consumer(
        settings.kafka or "", "civic-test-raw", isolation_level="read_uncommitted"
    )
    try:
        topic = settings.kafka_topic
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        counts: Counter[int] = Counter()
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    counts[int(header(r.headers, HEADER_POSITION) or b"0")] += 1
        raw = sum(uncommitted.end_offsets(tps).values())
        return counts, raw
    finally:
        consumer.close()
        uncommitted.close()


def cli(*args: str, settings: Settings) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        CIVIC_DATA_DIR=str(settings.data_dir),
        CIVIC_KAFKA=settings.kafka or "",
        CIVIC_KAFKA_TOPIC=settings.kafka_topic,
        CIVIC_DOCUMENT_SECRET=settings.document_secret.get_secret_value()
        if settings.document_secret
        else "",
        CIVIC_LOG_FORMAT="json",
        CIVIC_LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "services.cli_stream", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def position_of(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            row = conn.execute("SELECT MAX(position) FROM stream_position").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0] or 0)


@pytest.fixture
def store(kafka_config: Settings) -> Iterator[CivicApplication]:
    app = build_application(kafka_config)
    try:
        yield app
    finally:
        app.close()


# -- consumers -------------------------------------------------------------------------


def test_consumer_stopped_mid_batch_resumes_without_loss_or_repeat(
    history: History, tmp_path: Path, group_prefix: str
) -> None:
    stream = kafka_stream(history.settings, group_prefix)
    path = tmp_path / "ledger.sqlite"
    first = ledger_runner(path, stream, batch_size=400)
    records: list[StreamRecord] = []  # delivered by the consumer, not yet applied
    deadline = time.monotonic() + 20
    while len(records) < 300 and time.monotonic() < deadline:
        records += first.subscribe().poll(400 - len(records), 1.0)
    assert len(records) >= 300
    assert first.apply_records(records[: len(records) // 2]) == len(records) // 2
    first.stop()  # the rest of the batch was delivered but never applied

    second = ledger_runner(path, stream, batch_size=400)
    try:
        catch_up_to(second, history.head)
    finally:
        second.stop()
    read_ledger(path).assert_exactly(history.head)
    assert first.stats.applied + second.stats.applied == history.head


@pytest.mark.parametrize(
    "names", [("leaderboard",), ("leaderboard", "audit_trail")], ids=["alone", "a group"]
)
def test_projection_process_killed_mid_catch_up_loses_and_repeats_nothing(
    history: History, tmp_path: Path, group_prefix: str, names: tuple[str, ...]
) -> None:
    settings = history.settings.model_copy(update={"data_dir": tmp_path})
    view = settings.views_dir / "leaderboard.sqlite"
    views = [settings.views_dir / f"{name}.sqlite" for name in names]
    args = ("project", *names, "--batch-size", "20", "--group-prefix", group_prefix)
    process = cli(*args, settings=settings)
    try:
        wait_until(lambda: position_of(view) > 0, 30, 0.01, "the process to apply something")
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)  # mid-way, no clean shutdown
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    killed_at = position_of(view)
    assert 0 < killed_at < history.head

    process = cli(*args, settings=settings)
    try:
        wait_until(
            lambda: all(position_of(v) >= history.head for v in views),
            60,
            what="the restarted process",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    for name, path in zip(names, views, strict=True):
        assert dump_tables(path) == history.reference[name], name
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0] == 0


def test_rebalance_between_two_consumers_of_one_group(
    kafka_config: Settings, store: CivicApplication, tmp_path: Path, group_prefix: str
) -> None:
    load_demo(store, volunteers=40, months=1)
    relay = Relay.from_settings(kafka_config, store)
    relay.start()
    ledger_path, board_path = tmp_path / "ledger.sqlite", tmp_path / "leaderboard.sqlite"

    def pair(stream: KafkaStream) -> tuple[ProjectionRunner, ProjectionRunner]:
        board = ProjectionRunner(LeaderboardProjection(), ViewStore(board_path), stream)
        return ledger_runner(ledger_path, stream, batch_size=50), board

    first = pair(kafka_stream(kafka_config, group_prefix))
    second = pair(kafka_stream(kafka_config, group_prefix))
    try:
        with Traffic(store, per_second=150) as traffic:
            for runner in (*first, *second):
                runner.start()
            # both members of each group take a share of the partitions and apply
            wait_until(
                lambda: all(r.stats.applied > 0 for r in (*first, *second)),
                40,
                what="both consumers of each group to apply events",
            )
            for runner in second:
                runner.stop()  # leaves the group: its partitions move to the first
            time.sleep(1.0)
        assert not traffic.failures
        head = store.head()
        assert relay.wait_published(head, 30)
        reference = embedded_reference(store, tmp_path / "reference")
        wait_until(lambda: len(read_ledger(ledger_path).positions) >= head, 40, what="ledger")
        wait_until(
            lambda: dump_tables(board_path) == reference["leaderboard"], 40, what="leaderboard"
        )
    finally:
        for runner in (*first, *second):
            runner.stop()
        relay.stop()
    read_ledger(ledger_path).assert_exactly(head, store_order=False)
    assert dump_tables(board_path) == reference["leaderboard"]


# -- the broker ------------------------------------------------------------------------


def test_broker_restart_while_commands_keep_arriving(
    restartable_broker: KafkaBroker, tmp_path: Path, group_prefix: str
) -> None:
    settings = kafka_settings(tmp_path / "data", restartable_broker.bootstrap)
    platform = Platform.build(settings)
    assert isinstance(platform.stream, KafkaStream)
    assert platform.relay is not None
    platform.stream.group_prefix = group_prefix
    ledger = ledger_runner(settings.views_dir / "ledger.sqlite", platform.stream)
    platform.runners["ledger"] = ledger
    app = platform.app
    load_demo(app, volunteers=30, months=1)
    platform.start()
    try:
        with Traffic(app, per_second=100) as traffic:
            assert platform.runners["leaderboard"].wait_for(app.head(), 30)
            restartable_broker.stop()
            down_from = traffic.issued
            time.sleep(2.0)
            assert traffic.issued > down_from  # commands commit while Kafka is away
            restartable_broker.start()
            time.sleep(1.0)
        assert not traffic.failures
        head = app.head()
        assert platform.relay.wait_published(head, 60), platform.relay.stats
        for runner in platform.runners.values():
            assert runner.wait_for(head, 60), (runner.name, runner.position, head)
            assert runner.healthy, runner.dead_letters()[:3]
    finally:
        platform.close()

    read_ledger(settings.views_dir / "ledger.sqlite").assert_exactly(head)
    counts, _ = read_topic(settings)
    assert sorted(counts) == list(range(1, head + 1))
    assert set(counts.values()) == {1}
    app = build_application(settings)
    try:
        reference = embedded_reference(app, tmp_path / "reference")
    finally:
        app.close()
    for name in PROJECTIONS:
        assert dump_tables(settings.views_dir / f"{name}.sqlite") == reference[name], name


# -- the relay -------------------------------------------------------------------------


class CrashingRelay(Relay):
    """Fails half-way through its second batch, inside the open transaction."""

    sends = 0

    def connect(self) -> Any:
        fresh = self._producer is None
        producer = super().connect()
        if fresh:  # the real producer, failing on one send
            send = producer.send

            def failing_send(*args: Any, **kwargs: Any) -> Any:
                self.sends += 1
                if self.sends == self.batch_size + self.batch_size // 2:
                    msg = "crash mid-transaction"
                    raise RuntimeError(msg)
                return send(*args, **kwargs)

            producer.send = failing_send
        return producer


def test_relay_crash_mid_transaction_and_after_commit_publishes_no_duplicates(
    kafka_config: Settings, store: CivicApplication
) -> None:
    head = load_demo(store, volunteers=40, months=1)
    crashing = CrashingRelay(
        store.recorder, kafka_config.kafka or "", kafka_config.kafka_topic, batch_size=200
    )
    assert crashing.publish_batch() == 200  # committed
    with pytest.raises(RuntimeError, match="mid-transaction"):
        crashing.publish_batch()  # 100 records sent, never committed
    # the crashed relay is simply abandoned, its producer and transaction open

    restarted = Relay(store.recorder, kafka_config.kafka or "", kafka_config.kafka_topic)
    assert restarted.catch_up(60)  # fences the abandoned producer: its transaction aborts
    assert restarted.published == head
    # a relay that committed but died before noting it: the next one reads the tail
    for volunteer in volunteers_of(store)[:50]:
        store.execute(c.AwardPoints(volunteer_id=volunteer, points=3, reason="x"), SYSTEM)
    more = store.head()
    assert restarted.publish_batch() == more - head
    again = Relay(store.recorder, kafka_config.kafka or "", kafka_config.kafka_topic)
    assert again.catch_up(30)
    assert again.published == more
    assert again.stats.events == 0
    again.stop()
    restarted.stop()
    crashing.stop()

    counts, raw = read_topic(kafka_config)
    assert sorted(counts) == list(range(1, more + 1))
    assert set(counts.values()) == {1}
    assert raw > more  # the aborted records and the transaction markers are in the log


def test_a_relay_refuses_a_topic_that_holds_another_history(
    kafka_config: Settings, store: CivicApplication, tmp_path: Path
) -> None:
    """A store restored from a backup, or another store, pointed at a topic: the relay
    carries on only where the topic's last event is the store's event at that position."""
    head = load_demo(store, volunteers=20, months=1)
    first = Relay(store.recorder, kafka_config.kafka or "", kafka_config.kafka_topic)
    assert first.catch_up(60)
    first.stop()

    def relay_of(app: CivicApplication) -> Relay:
        return Relay(app.recorder, kafka_config.kafka or "", kafka_config.kafka_topic)

    def store_at(name: str) -> CivicApplication:
        return build_application(kafka_config.model_copy(update={"data_dir": tmp_path / name}))

    # a copy of this store (a backup restored), then written to: it carries on
    (tmp_path / "restored").mkdir()
    copy_database(kafka_config.data_dir / "events.sqlite", tmp_path / "restored/events.sqlite")
    restored = store_at("restored")
    for volunteer in volunteers_of(restored)[:5]:
        restored.execute(c.AwardPoints(volunteer_id=volunteer, points=1, reason="x"), SYSTEM)
    relay = relay_of(restored)
    assert relay.catch_up(30)
    assert relay.published == head + 5
    relay.stop()

    # another store with a longer history, and one with a shorter one: refused
    longer, shorter = store_at("longer"), store_at("shorter")
    assert load_demo(longer, volunteers=30, months=1, seed=8) > head + 5
    assert load_demo(shorter, volunteers=5, months=1, seed=8) < head + 5
    for app, problem in (
        (longer, f"holds another event at position {head + 5} than the store"),
        (shorter, f"holds events up to position {head + 5} but the store's head is"),
    ):
        stranger = relay_of(app)
        assert not stranger.catch_up(2)
        assert problem in (stranger.last_error or ""), stranger.last_error
        assert stranger.published == 0
        stranger.stop()
    for app in (restored, longer, shorter):
        app.close()
    counts, _ = read_topic(kafka_config)
    assert sorted(counts) == list(range(1, head + 6))
    assert set(counts.values()) == {1}


def test_relay_process_killed_while_publishing_publishes_no_duplicates(
    kafka_config: Settings, store: CivicApplication
) -> None:
    head = load_demo(store)
    process = cli("relay", settings=kafka_config)
    raw = tail_consumer(
        kafka_config.kafka or "", "civic-test-watch", isolation_level="read_uncommitted"
    )
    try:
        topic = kafka_config.kafka_topic

        def sending() -> bool:
            partitions = raw.partitions_for_topic(topic)
            if not partitions:
                return False
            tps = [TopicPartition(topic, p) for p in partitions]
            sent: int = sum(raw.end_offsets(tps).values())  # kafka-python is untyped
            return sent > 0

        wait_until(sending, 30, 0.005, "the relay process to send")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        raw.close()
        if process.poll() is None:
            process.kill()

    restarted = Relay.from_settings(kafka_config, store)
    assert restarted.catch_up(60)
    restarted.stop()
    counts, _ = read_topic(kafka_config)
    assert sorted(counts) == list(range(1, head + 1))
    assert set(counts.values()) == {1}


# -- redelivery ------------------------------------------------------------------------


def test_redelivered_records_leave_read_models_unchanged(
    history: History, tmp_path: Path, group_prefix: str
) -> None:
    stream = kafka_stream(history.settings, group_prefix)
    paths = rebuild(stream, tmp_path / "views", history.head)
    before = {name: dump_tables(path) for name, path in paths.items()}

    # replay everything, then one partition again, into the same views
    everything = _replay(stream, "replay-all", lambda p: -1, history.head)
    reader = tail_consumer(history.settings.kafka or "", "civic-test-ends")
    try:
        tps = [TopicPartition(history.settings.kafka_topic, p) for p in range(6)]
        ends = {tp.partition: offset for tp, offset in reader.end_offsets(tps).items()}
    finally:
        reader.close()
    partition_3 = _replay(stream, "replay-3", lambda p: -1 if p == 3 else ends[p] - 1, None)
    assert partition_3
    assert {r.partition for r in partition_3} == {3}
    projections: dict[str, Any] = {name: f() for name, f in PROJECTIONS.items()}
    for name, path in paths.items():
        projection = projections.get(name)
        runner = (
            ProjectionRunner(projection, ViewStore(path), stream)
            if projection is not None
            else ledger_runner(path, stream)
        )
        assert runner.apply_records(everything) == 0
        assert runner.apply_records(partition_3) == 0
        assert runner.stats.duplicates_skipped == len(everything) + len(partition_3)
        runner.store.close()
    assert {name: dump_tables(path) for name, path in paths.items()} == before
    assert before == history.reference


def _replay(
    stream: KafkaStream, group: str, offset: Any, expected: int | None
) -> list[StreamRecord]:
    """Every record a subscription delivers when told the projection applied
    ``offset(partition)`` (-1: nothing)."""
    subscription = stream.subscribe(group, lambda ps: {p: offset(p) for p in ps})
    records: list[StreamRecord] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < (1.0 if expected is None else 20.0):
            batch = subscription.poll(1000, 0.2)
            if batch:
                records.extend(batch)
                quiet_since = time.monotonic()
            if expected is not None and len(records) >= expected:
                break
    finally:
        subscription.close()
    if expected is not None:
        assert len(records) == expected
    return records


class ResetRelay(Relay):
    """A relay that lost its place: it connects like any relay, then publishes from
    ``start`` again (what a relay with another transactional id, or a restored
    backup of an old offset store, would do)."""

    def __init__(self, *args: Any, start: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_at = start

    def connect(self) -> Any:
        fresh = self._producer is None
        producer = super().connect()
        if fresh:
            self.stats.published = self.start_at
        return producer


def test_two_relays_and_a_relay_sending_everything_again_leave_read_models_unchanged(
    kafka_config: Settings, store: CivicApplication, tmp_path: Path, group_prefix: str
) -> None:
    load_demo(store, volunteers=40, months=1)
    stream = kafka_stream(kafka_config, group_prefix)
    views = tmp_path / "views"
    runners = [
        ProjectionRunner(factory(), ViewStore(views / f"{name}.sqlite"), stream, batch_size=200)
        for name, factory in PROJECTIONS.items()
    ]
    runners.append(ledger_runner(views / "ledger.sqlite", stream, batch_size=200))
    # two relays of one store at once: each fences the other and re-reads the tail
    relays = [Relay.from_settings(kafka_config, store) for _ in range(2)]
    try:
        with capture_logs():  # the relays' warnings, kept rather than printed
            for relay in relays:
                relay.start()
            for runner in runners:
                runner.start()
            with Traffic(store, per_second=100):
                time.sleep(3.0)
            head = store.head()
            for runner in runners:
                assert runner.wait_for(head, 60), (runner.name, runner.position, head)
            for relay in relays:
                relay.stop()
        fenced = sum(relay.stats.errors for relay in relays)  # fenced by the other, mostly
        assert fenced, "the two relays never overlapped"
        counts, _ = read_topic(kafka_config)
        assert sorted(counts) == list(range(1, head + 1))
        assert set(counts.values()) == {1}  # two relays, no record twice
        before = {r.name: dump_tables(Path(r.store.path)) for r in runners}

        # a relay that lost its place publishes the whole history again, at new
        # offsets, into the running projections
        again = ResetRelay(
            store.recorder,
            kafka_config.kafka or "",
            kafka_config.kafka_topic,
            transactional_id="civic.test.reset-relay",
            batch_size=500,
            start=0,
        )

        def seen(r: ProjectionRunner) -> int:
            return r.stats.duplicates_skipped + r.stats.applied

        before_repeats = {r.name: seen(r) for r in runners}

        def repeated(r: ProjectionRunner) -> bool:
            return seen(r) - before_repeats[r.name] >= head

        assert again.catch_up(60)
        again.stop()
        counts, _ = read_topic(kafka_config)
        assert set(counts.values()) == {2}
        for runner in runners:
            wait_until(
                partial(repeated, runner),
                60,
                what=f"{runner.name} to receive the repeats",
            )
    finally:
        for relay in relays:
            relay.stop()
        for runner in runners:
            runner.stop()
    after = {r.name: dump_tables(Path(r.store.path)) for r in runners}
    print(  # noqa: T201 - the figures for the README
        f"\nduplicates: events={head} relay_failures={fenced} republished={head} "
        f"skipped={ {r.name: seen(r) - before_repeats[r.name] for r in runners} }"
    )
    assert after == before
    read_ledger(views / "ledger.sqlite").assert_exactly(head)
    reference = embedded_reference(store, tmp_path / "reference")
    for name in PROJECTIONS:
        assert after[name] == reference[name], name
