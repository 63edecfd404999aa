"""The Kafka path against plain kafka-python, on a real broker, in one run.

(a) publishing: the relay publishing N events from the event store (read,
    encode, one transaction per 5,000, each record's partition given) against a
    plain kafka-python producer sending the same N pre-encoded envelopes (same
    keys, headers and batching): without transactions and with the default
    partitioner; with transactions of 5,000; and with transactions and explicit
    partitions, as the relay sends (like for like). Rates, and CPU time per event
    of this process (``time.process_time``, the producer's IO thread included;
    hardware instruction counters are not available on the VM);
(b) consuming: a plain consumer loop that only decodes each value's JSON against
    our subscription alone and against each read model chosen (``--models``,
    default the three that read the whole history) fed by its ProjectionRunner on
    KafkaStream, one at a time and all at once;
(c) freshness: about 1,000 commands/s for about 10 s through
    ``CivicApplication.execute`` from a few threads, relay and leaderboard runner
    in the same process: commit → committed in Kafka → visible in the leaderboard.

(a) and (b) run with kafka-python's record CRC-32C computed by the ``crc32c``
package and by its pure-Python fallback. Figures only; nothing is asserted.

The broker: ``--bootstrap`` or ``CIVIC_KAFKA_BOOTSTRAP``, else one started with
infra/kafka/kafka.sh on free ports (stopped at the end). The history (N events:
the demo network, then manual awards) is kept under var/bench and reused.

Run: ``.venv/bin/python bench/bench_kafka.py [--events 200000] [--crc32c both|on|off]``
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kafka.record.util as record_util  # noqa: E402 - after the path set-up
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.record._crc32c import crc as crc32c_pure  # noqa: E402

from infra.embedded_stream import EmbeddedStream  # noqa: E402
from infra.envelope_json import encode_envelope  # noqa: E402
from infra.heap import freeze_startup_heap  # noqa: E402
from infra.kafka_stream import (  # noqa: E402
    HEADER_POSITION,
    HEADER_PREV,
    HEADER_TYPE,
    KafkaStream,
    ensure_topic,
    message_key,
    partition_for_key,
)
from infra.relay import Relay  # noqa: E402
from infra.settings import Settings  # noqa: E402
from projections.catalog import PROJECTIONS, split_for_two_cores  # noqa: E402
from projections.leaderboard import LeaderboardProjection  # noqa: E402
from projections.runner import ProjectionRunner, read_index_name  # noqa: E402
from projections.store import ViewStore  # noqa: E402
from projections.stream import StreamRecord  # noqa: E402
from services import commands as c  # noqa: E402
from services.application import BatchItem, CivicApplication  # noqa: E402
from services.bootstrap import build_application  # noqa: E402
from services.demo import DemoConfig, generate, load  # noqa: E402
from services.principals import SYSTEM  # noqa: E402

SECRET = "bench-document-secret-0123456789abcdef"  # noqa: S105 - a throwaway bench store
PARTITIONS = 6
RELAY_BATCH = 5_000
PRODUCER_TUNING: dict[str, Any] = {"acks": "all", "linger_ms": 5, "batch_size": 1_048_576}


# -- set-up ------------------------------------------------------------------------------


def settings_for(data_dir: Path, bootstrap: str | None = None, topic: str = "x") -> Settings:
    return Settings(
        data_dir=data_dir,
        kafka=bootstrap,
        kafka_topic=topic,
        document_secret=SECRET,
        log_format="json",
        log_level="WARNING",
    )


def volunteers_of(app: CivicApplication) -> list[Any]:
    return [
        n.originator_id
        for n in app.recorder.select_notifications(start=1, limit=app.head())
        if n.topic.endswith("Volunteer.Registered")
    ]


def make_history(target: Path, events: int) -> None:
    """The demo network (its full size, about 72,000 events, from 100,000 events up),
    then manual awards until the store holds ``events``."""
    volunteers, months = (3000, 12) if events >= 100_000 else (max(events // 40, 50), 2)
    app = build_application(settings_for(target))
    try:
        plan = generate(
            DemoConfig(volunteers=volunteers, months=months),
            document_secret=app.document_secret,
            points_rule=app.points_rule,
        )
        load(app, plan)
        people = volunteers_of(app)
        k = 0
        while app.head() < events:
            items = [
                BatchItem(
                    c.AwardPoints(
                        volunteer_id=people[(k + i) % len(people)],
                        points=1 + (k + i) % 7,
                        reason="文明户评比",
                    )
                )
                for i in range(min(1000, events - app.head()))
            ]
            app.execute_batch(items, SYSTEM)
            k += len(items)
    finally:
        app.close()


def history(events: int, regenerate: bool) -> Path:
    path = ROOT / "var" / "bench" / f"kafka-{events}"
    if regenerate and path.exists():
        shutil.rmtree(path)
    if not (path / "events.sqlite").exists():
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        started = time.perf_counter()
        make_history(partial, events)
        partial.rename(path)
        print(f"generated {events:,} events in {time.perf_counter() - started:.0f} s -> {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    script = ROOT / "infra" / "kafka" / "kafka.sh"
    data = Path(tempfile.mkdtemp(prefix="civic-bench-kafka-"))
    port = free_port()
    env = dict(
        os.environ,
        CIVIC_KAFKA_PORT=str(port),
        CIVIC_KAFKA_CONTROLLER_PORT=str(free_port()),
        CIVIC_KAFKA_DATA=str(data),
    )

    def run(command: str) -> int:
        return subprocess.run(
            ["bash", str(script), command],
            env=env,
            check=False,
            capture_output=True,
        ).returncode

    print(f"starting a broker on 127.0.0.1:{port} ...")
    if run("start") != 0 and run("wait") != 0:  # see the tests' conftest for the retry
        raise SystemExit("the broker did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        run("stop")
        shutil.rmtree(data, ignore_errors=True)


def use_crc32c(enabled: bool) -> str:
    """Switch kafka-python's record CRC-32C between the C package and its pure-Python
    fallback (what a missing ``crc32c`` extra gives) for producers and consumers."""
    c_impl = getattr(record_util, "crc32c_c", None)
    impl = c_impl if enabled and c_impl is not None else crc32c_pure
    record_util.calc_crc32c.__defaults__ = (impl,)
    return "crc32c package" if impl is c_impl else "pure-Python CRC"


@dataclass
class Rate:
    label: str
    events: int
    wall: float
    cpu: float
    streams: int = 1  # consumers that each read all ``events`` in ``cpu``

    @property
    def per_second(self) -> float:
        return self.events / self.wall

    def line(self, versus: Rate | None = None) -> str:
        ratio = ""
        if versus:
            ratio = f"  = {self.per_second / versus.per_second:6.1%} of raw"
            if self.cpu == self.cpu:  # also per CPU-second (in this process, all threads)
                ratio += f" ({versus.cpu * self.streams / self.cpu:6.1%} per CPU-s)"
        cpu = f", CPU {self.cpu:5.2f} s" if self.cpu == self.cpu else ""  # nan: not measured
        return (
            f"    {self.label:<56} {self.per_second:>9,.0f} events/s"
            f"  ({self.events:,} in {self.wall:5.2f} s{cpu}){ratio}"
        )


def timed(label: str, events: int, fn: Callable[[], object]) -> Rate:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Rate(label, events, time.perf_counter() - wall, time.process_time() - cpu)


# -- (a) publishing ------------------------------------------------------------------------


Message = tuple[bytes, bytes, int, list[tuple[str, bytes]]]


def pre_encode(app: CivicApplication) -> list[Message]:
    messages: list[Message] = []
    prev, after = b"0", 0
    while True:
        chunk = app.recorder.select_notifications(
            start=after, limit=10_000, inclusive_of_start=False
        )
        if not chunk:
            return messages
        for n in chunk:
            aggregate = n.originator_id
            key = message_key(aggregate if isinstance(aggregate, UUID) else UUID(aggregate))
            position = str(n.id).encode()
            headers = [
                (HEADER_POSITION, position),
                (HEADER_TYPE, n.topic.encode()),
                (HEADER_PREV, prev),
            ]
            messages.append((key, encode_envelope(n), partition_for_key(key, PARTITIONS), headers))
            prev = position
        after = chunk[-1].id


RAW_LABELS = {
    "raw": "raw producer",
    "txn": "raw producer, transactions of 5,000",
    "txn+partitions": "raw, transactions, explicit partitions",
}


def raw_produce(bootstrap: str, messages: Sequence[Message], kind: str) -> Rate:
    """``kind``: ``raw`` (no transactions, the default partitioner), ``txn``
    (transactions of 5,000 as the relay's) or ``txn+partitions`` (and each record's
    partition given, as the relay does: like for like)."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, PARTITIONS)
    options = dict(PRODUCER_TUNING)
    transactional = kind != "raw"
    explicit = kind == "txn+partitions"
    if transactional:
        options["transactional_id"] = f"bench.{topic}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, **options)
    if transactional:
        producer.init_transactions()

    def send_all() -> None:
        for start in range(0, len(messages), RELAY_BATCH):
            if transactional:
                producer.begin_transaction()
            for key, value, partition, headers in messages[start : start + RELAY_BATCH]:
                producer.send(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    partition=partition if explicit else None,
                )
            if transactional:
                producer.commit_transaction()
        producer.flush()

    try:
        return timed(RAW_LABELS[kind], len(messages), send_all)
    finally:
        producer.close()


def relay_publish(app: CivicApplication, bootstrap: str, topic: str) -> Rate:
    relay = Relay(app.recorder, bootstrap, topic, batch_size=RELAY_BATCH)
    relay.connect()  # creating the topic and fencing are not publishing
    try:
        head = app.head()
        return timed("relay (store → envelope → transaction)", head, lambda: relay.catch_up(600))
    finally:
        relay.stop()


# -- (b) consuming ---------------------------------------------------------------------------


def raw_consume(bootstrap: str, topic: str, events: int) -> Rate:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=2_000,
        fetch_max_wait_ms=50,  # as our subscriptions fetch (fewer stalls than the default)
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen = 0

    def consume() -> None:
        nonlocal seen
        loads = json.loads
        while seen < events:
            for records in consumer.poll(timeout_ms=500, max_records=2_000).values():
                for r in records:
                    loads(r.value)
                seen += len(records)

    try:
        return timed("raw consumer loop (poll + json.loads)", events, consume)
    finally:
        consumer.close()


def subscription_only(
    stream: KafkaStream, events: int, label: str = "KafkaSubscription alone (decode + merge)"
) -> Rate:
    subscription = stream.subscribe(f"sub-{uuid.uuid4().hex[:6]}", lambda ps: {p: -1 for p in ps})
    seen = 0

    def consume() -> None:
        nonlocal seen
        while seen < events:
            seen += len(subscription.poll(2_000, 0.5))

    try:
        return timed(label, events, consume)
    finally:
        subscription.close()


def run_to(runner: ProjectionRunner, events: int) -> None:
    while runner.position < events:
        runner.run_once(0.5)
    if runner.read_indexes_pending:  # deferred from far behind: part of the work
        runner.build_read_indexes()


def projections_consume(
    stream: KafkaStream, views: Path, events: int, names: Sequence[str]
) -> list[Rate]:
    rates = []
    for name in names:
        factory = PROJECTIONS[name]
        runner = ProjectionRunner(factory(), ViewStore(views / f"{name}-1.sqlite"), stream)
        rates.append(
            timed(f"{name} (runner on KafkaStream)", events, partial(run_to, runner, events))
        )
        runner.stop()
    together = {
        name: ProjectionRunner(PROJECTIONS[name](), ViewStore(views / f"{name}-all.sqlite"), stream)
        for name in names
    }
    stream.group_prefix += "all."

    def all_at_once() -> None:
        threads = [threading.Thread(target=run_to, args=(r, events)) for r in together.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    label = f"all {len(together)} in one process (threads), each"
    both = timed(label, events, all_at_once)
    both.streams = len(together)
    for runner in together.values():
        runner.stop()
    rates.append(both)
    return rates


def embedded_consume(
    app: CivicApplication, views: Path, events: int, names: Sequence[str]
) -> list[Rate]:
    """The same read models fed from the store by the embedded stream, for scale."""
    rates = []
    for name in names:
        factory = PROJECTIONS[name]
        stream = EmbeddedStream(app.recorder)
        runner = ProjectionRunner(factory(), ViewStore(views / f"{name}-emb.sqlite"), stream)
        rates.append(
            timed(f"{name} (runner on EmbeddedStream)", events, partial(run_to, runner, events))
        )
        runner.stop()
    return rates


def position_of(path: Path, name: str | None = None) -> int:
    """The view's position; 0 until the read indexes of read model ``name`` (deferred
    by a runner that started far behind) are built too."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            row = conn.execute("SELECT MAX(position) FROM stream_position").fetchone()
            if name is not None:
                built = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if not read_index_names(name) <= built:
                    return 0
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)


def read_index_names(name: str) -> set[str]:
    return {read_index_name(s) for s in PROJECTIONS[name]().read_indexes}


def cli_env(data_dir: Path, bootstrap: str, topic: str) -> dict[str, str]:
    return dict(
        os.environ,
        CIVIC_DATA_DIR=str(data_dir),
        CIVIC_KAFKA=bootstrap,
        CIVIC_KAFKA_TOPIC=topic,
        CIVIC_DOCUMENT_SECRET=SECRET,
        CIVIC_LOG_FORMAT="json",
        CIVIC_LOG_LEVEL="WARNING",
    )


def cli(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli_stream", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def processes_consume(
    bootstrap: str, topic: str, events: int, groups: Sequence[Sequence[str]], label: str
) -> Rate:
    """A ``civic project NAME...`` process per group of read models, all at once; timed
    from the first event any of them applied to the last of them reaching the end."""
    data = Path(tempfile.mkdtemp(prefix="civic-bench-views-"))
    env = cli_env(data, bootstrap, topic)
    prefix = f"bench.{uuid.uuid4().hex[:6]}."
    processes = [cli(["project", *group, "--group-prefix", prefix], env) for group in groups]
    names = [name for group in groups for name in group]
    views = [data / "views" / f"{name}.sqlite" for name in names]
    first = last = None
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if first is None and any(position_of(v) for v in views):
                first = time.perf_counter()
            # done: every view at the end, with its read indexes built
            if all(position_of(v, n) >= events for v, n in zip(views, names, strict=True)):
                last = time.perf_counter()
                break
            time.sleep(0.05)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    if first is None or last is None:
        raise SystemExit("the civic project processes did not finish")
    return Rate(label, events, last - first, float("nan"))


def processes_figures(bootstrap: str, topic: str, events: int, names: Sequence[str]) -> list[Rate]:
    """The read models as ``civic project`` processes: a process each; split for two
    cores (see ``split_for_two_cores``); all of them in one process, as a group."""
    groups: list[tuple[list[list[str]], str]] = [
        ([[name] for name in names], f"all {len(names)} at once, a process each, each")
    ]
    split = split_for_two_cores(names)
    if len(split) < len(names):
        groups.append((split, " | ".join("+".join(g) for g in split) + ", a process each"))
    if len(names) > 1:
        groups.append(([list(names)], f"all {len(names)} in one process (a group), each"))
    return [processes_consume(bootstrap, topic, events, g, label) for g, label in groups]


# -- (c) freshness ---------------------------------------------------------------------------


class TimedRelay(Relay):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published_at: dict[int, float] = {}

    def publish_batch(self) -> int:
        before = self.published
        n = super().publish_batch()
        now = time.perf_counter()
        for position in range(before + 1, self.published + 1):
            self.published_at[position] = now
        return n


class TimedRunner(ProjectionRunner):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.visible_at: dict[int, float] = {}

    def apply_records(self, records: Sequence[StreamRecord]) -> int:
        n = super().apply_records(records)
        now = time.perf_counter()
        for r in records:
            self.visible_at.setdefault(r.position, now)
        return n


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Load:
    committed: dict[int, float]  # command's last event position -> when execute returned
    failures: list[BaseException]
    seconds: float


def issue_commands(app: CivicApplication, rate: float, seconds: float, threads: int) -> Load:
    """``rate`` commands/s for ``seconds`` from ``threads`` threads, each paced."""
    people = volunteers_of(app)
    load = Load({}, [], 0.0)
    per_thread = rate / threads
    total = int(rate * seconds)
    started = time.perf_counter() + 0.2

    def issue(worker: int) -> None:
        for i in range(total // threads):
            delay = started + i / per_thread - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            command = c.AwardPoints(
                volunteer_id=people[(worker * 7919 + i) % len(people)],
                points=1,
                reason="文明户评比",
            )
            try:
                result = app.execute(command, SYSTEM)
            except Exception as exc:  # counted and reported, never fatal
                load.failures.append(exc)
                continue
            if result.position is not None:
                load.committed[result.position] = time.perf_counter()

    workers = [threading.Thread(target=issue, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    load.seconds = time.perf_counter() - started
    return load


def freshness(bootstrap: str, rate: float, seconds: float, threads: int) -> list[str]:
    data = Path(tempfile.mkdtemp(prefix="civic-bench-fresh-"))
    settings = settings_for(data, bootstrap, f"bench.fresh.{uuid.uuid4().hex[:8]}")
    app = build_application(settings)
    plan = generate(
        DemoConfig(volunteers=1000, months=1),
        document_secret=app.document_secret,
        points_rule=app.points_rule,
    )
    load(app, plan)
    relay = TimedRelay.from_settings(settings, app)  # woken by the store's commits
    stream = KafkaStream.from_settings(settings, group_prefix=f"bench.{uuid.uuid4().hex[:6]}.")
    runner = TimedRunner(LeaderboardProjection(), ViewStore(data / "leaderboard.sqlite"), stream)
    relay.start()
    runner.start()
    try:
        assert runner.wait_for(app.head(), 60)
        commands = issue_commands(app, rate, seconds, threads)
        runner.wait_for(max(commands.committed), 60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            p in runner.visible_at for p in commands.committed
        ):
            time.sleep(0.05)
    finally:
        runner.stop()
        relay.stop()
        app.close()
        shutil.rmtree(data, ignore_errors=True)

    done = commands.committed
    to_kafka = [(relay.published_at[p] - t) * 1000 for p, t in done.items()]
    to_view = [(runner.visible_at[p] - t) * 1000 for p, t in done.items() if p in runner.visible_at]
    return summarize(
        commands,
        rate,
        threads,
        [("commit → committed in Kafka", to_kafka), ("commit → visible in leaderboard", to_view)],
    )


class ViewWatcher:
    """Samples a view's applied position per partition every couple of milliseconds
    (the view is written by another process)."""

    def __init__(self, path: Path, interval: float = 0.002) -> None:
        self.path = path
        self.interval = interval
        self.reached: dict[int, list[tuple[int, float]]] = {}  # partition -> (position, when)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=5)
        try:
            while not self._stop.is_set():
                now = time.perf_counter()
                for partition, position in conn.execute(
                    "SELECT partition, position FROM stream_position"
                ):
                    seen = self.reached.setdefault(partition, [])
                    if not seen or seen[-1][0] < position:
                        seen.append((position, now))
                self._stop.wait(self.interval)
        finally:
            conn.close()

    def visible_at(self, partition: int, position: int) -> float | None:
        seen = self.reached.get(partition, [])
        i = bisect.bisect_left(seen, (position, 0.0))
        return seen[i][1] if i < len(seen) else None

    def __enter__(self) -> ViewWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def freshness_processes(bootstrap: str, rate: float, seconds: float, threads: int) -> list[str]:
    """Commands in this process; ``civic relay`` and ``civic project leaderboard`` each
    in its own process, as deployed beside API workers."""
    data = Path(tempfile.mkdtemp(prefix="civic-bench-fresh-"))
    settings = settings_for(data, bootstrap, f"bench.fresh.{uuid.uuid4().hex[:8]}")
    app = build_application(settings)
    plan = generate(
        DemoConfig(volunteers=1000, months=1),
        document_secret=app.document_secret,
        points_rule=app.points_rule,
    )
    load(app, plan)
    stream = KafkaStream.from_settings(settings)
    stream.attach_store(app.recorder)
    env = cli_env(data, bootstrap, settings.kafka_topic)
    view = data / "views" / "leaderboard.sqlite"
    processes = [
        cli(["relay", "--poll-interval", "0.01"], env),
        cli(["project", "leaderboard", "--group-prefix", f"bench.{uuid.uuid4().hex[:6]}."], env),
    ]
    try:
        deadline = time.monotonic() + 120
        while position_of(view) < app.head() and time.monotonic() < deadline:
            time.sleep(0.1)
        with ViewWatcher(view) as watcher:
            commands = issue_commands(app, rate, seconds, threads)
            located = {p: stream.partition_of(p) for p in commands.committed}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(
                q is None or watcher.visible_at(q, p) is None for p, q in located.items()
            ):
                time.sleep(0.05)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        app.close()
        shutil.rmtree(data, ignore_errors=True)
    latencies = []
    for p, committed_at in commands.committed.items():
        q = located[p]
        seen = watcher.visible_at(q, p) if q is not None else None
        if seen is not None:
            latencies.append((seen - committed_at) * 1000)
    return summarize(commands, rate, threads, [("commit → visible in leaderboard", latencies)])


def summarize(
    commands: Load, rate: float, threads: int, stages: Sequence[tuple[str, list[float]]]
) -> list[str]:
    done = commands.committed
    lines = [
        f"    commands: {len(done):,} in {commands.seconds:.1f} s"
        f" = {len(done) / commands.seconds:,.0f}/s from {threads} threads"
        f" (target {rate:,.0f}/s); failures {len(commands.failures)}",
    ]
    for label, values in stages:
        if not values:
            lines.append(f"    {label:<34} (nothing measured)")
            continue
        p50, p90 = statistics.median(values), percentile(values, 0.9)
        p99, worst = percentile(values, 0.99), max(values)
        lines.append(
            f"    {label:<34} p50 {p50:6.1f} ms   p90 {p90:6.1f} ms   p99 {p99:6.1f} ms"
            f"   max {worst:6.1f} ms   (n={len(values):,} of {len(done):,})"
        )
    return lines


# -- the run -----------------------------------------------------------------------------------


def median(rates: Sequence[Rate]) -> Rate:
    return sorted(rates, key=lambda r: r.per_second)[len(rates) // 2]


def publishing_report(crc: str, runs: dict[str, list[Rate]]) -> list[str]:
    """Medians of the interleaved runs of (a); the relay against each baseline, run
    by run, in rate and in CPU time per event (this process: the producer's IO
    thread included)."""
    medians = {kind: median(rates) for kind, rates in runs.items()}
    raw, relayed = medians["raw"], medians["relay"]
    lines = [f"(a) publishing, {crc} (median of {len(runs['relay'])} interleaved runs):"]
    lines += [medians[kind].line(None if kind == "raw" else raw) for kind in RAW_LABELS]
    lines.append(relayed.line(raw))
    for kind, label in RAW_LABELS.items():
        pairs = list(zip(runs["relay"], runs[kind], strict=True))
        rates = sorted(r.per_second / b.per_second for r, b in pairs)
        cpus = sorted(r.cpu / b.cpu for r, b in pairs)
        lines.append(
            f"    relay / {label + ':':<40} rate "
            + ", ".join(f"{x:.2f}" for x in rates)
            + f" (median {statistics.median(rates):.2f}); CPU/event "
            + ", ".join(f"{x:.2f}" for x in cpus)
            + f" (median {statistics.median(cpus):.2f})"
        )
    per_event = ", ".join(
        f"{kind} {medians[kind].cpu / medians[kind].events * 1e6:.1f}" for kind in medians
    )
    lines.append(f"    CPU µs per event (medians): {per_event}")
    return lines


def throughput(
    base: Path,
    bootstrap: str,
    modes: Sequence[bool],
    skip: str,
    repeat: int,
    names: Sequence[str],
    fetch_ahead: int,
    *,
    freeze: bool,
) -> list[str]:
    """(a) and (b), for each CRC implementation, on a copy of the history."""
    report: list[str] = []
    if "a" in skip and "b" in skip:
        return report
    work = Path(tempfile.mkdtemp(prefix="civic-bench-kafka-"))
    try:
        shutil.copytree(base, work / "data")
        app = build_application(settings_for(work / "data"))
        try:
            events = app.head()
            messages = pre_encode(app) if "a" not in skip else []
            if freeze:
                # The raw loops' input (N records of five objects each) is in no process
                # we ship; left to the collector, every full collection that whichever
                # loop allocates most (the relay) triggers would walk it. Frozen, as
                # `civic relay` freezes its heap once the application is built.
                gc.freeze()
            for enabled in modes:
                crc = use_crc32c(enabled)
                print(f"[{crc}] (a) publishing {events:,} events ...")
                runs: dict[str, list[Rate]] = {k: [] for k in (*RAW_LABELS, "relay")}
                for _ in range(1 if "a" in skip else repeat):  # interleaved: load drifts
                    topic = f"bench.relay.{uuid.uuid4().hex[:8]}"  # (b) reads the last one
                    runs["relay"].append(relay_publish(app, bootstrap, topic))
                    if "a" not in skip:
                        for kind in RAW_LABELS:
                            runs[kind].append(raw_produce(bootstrap, messages, kind))
                if "a" not in skip:
                    report += publishing_report(crc, runs)
                if "b" in skip:
                    continue
                print(f"[{crc}] (b) consuming ...")
                # the raw loop before, between and after ours (the broker's caches and
                # the machine's load drift): the median of the three is the baseline
                raws = [raw_consume(bootstrap, topic, events)]
                stream = KafkaStream(
                    bootstrap,
                    topic,
                    group_prefix=f"bench.{uuid.uuid4().hex[:6]}.",
                    fetch_ahead=fetch_ahead,
                )
                polling = KafkaStream(
                    bootstrap, topic, group_prefix=f"bench.{uuid.uuid4().hex[:6]}.", fetch_ahead=0
                )
                ours = [
                    subscription_only(stream, events),
                    subscription_only(polling, events, "  same, fetching in the polling thread"),
                ]
                raws.append(raw_consume(bootstrap, topic, events))
                ours += projections_consume(stream, work / f"views-{enabled}", events, names)
                raws.append(raw_consume(bootstrap, topic, events))
                raw_in = median(raws)
                if enabled:  # CRC settings of this process do not reach the children
                    ours += processes_figures(bootstrap, topic, events, names)
                spread = ", ".join(f"{r.per_second:,.0f}" for r in raws)
                report += [f"(b) consuming, {crc} (raw runs: {spread} events/s):", raw_in.line()]
                report += [rate.line(raw_in) for rate in ours]
                if enabled:
                    report.append("  for scale, the same read models fed by the embedded stream:")
                    report += [r.line() for r in embedded_consume(app, work / "emb", events, names)]
        finally:
            app.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--bootstrap", default=os.environ.get("CIVIC_KAFKA_BOOTSTRAP"))
    parser.add_argument("--crc32c", choices=("both", "on", "off"), default="both")
    parser.add_argument("--rate", type=float, default=1000.0, help="commands/s in (c)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--skip", default="", help="parts to skip, e.g. 'c' or 'ab'")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of (a)")
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="leave the start-up heap to the collector (the relay, `civic project` and the "
        "server freeze it at start: infra/heap.py)",
    )
    parser.add_argument(
        "--models",
        default="leaderboard,unit_metrics,audit_trail",
        help=f"read models of (b), comma-separated (known: {', '.join(PROJECTIONS)})",
    )
    parser.add_argument(
        "--fetch-ahead",
        type=int,
        default=KafkaStream("x").fetch_ahead,
        help="records a subscription fetches ahead on its own thread in (b); 0: none",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown or not names:
        parser.error(f"unknown read models {unknown} (known: {', '.join(PROJECTIONS)})")
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(30)  # warnings and up
    )

    base = history(args.events, args.regenerate)
    if not args.no_gc_freeze:
        freeze_startup_heap()  # as our processes do at start; the raw loops gain too
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f};"
        f" history {base} ({args.events:,} events);"
        f" start-up heap {'left to the collector' if args.no_gc_freeze else 'frozen'}"
    )
    modes = {"both": (True, False), "on": (True,), "off": (False,)}[args.crc32c]
    report: list[str] = []
    with broker(args.bootstrap) as bootstrap:
        report += throughput(
            base,
            bootstrap,
            modes,
            args.skip,
            args.repeat,
            names,
            args.fetch_ahead,
            freeze=not args.no_gc_freeze,
        )
        if "c" not in args.skip:
            use_crc32c(True)
            print(f"(c) freshness at {args.rate:,.0f} commands/s for {args.seconds:.0f} s ...")
            report.append("(c) freshness, relay and leaderboard in their own processes:")
            report += freshness_processes(bootstrap, args.rate, args.seconds, args.threads)
            report.append("(c) freshness, all in one process (commands, relay, leaderboard):")
            report += freshness(bootstrap, args.rate, args.seconds, args.threads)
    print()
    print("\n".join(report))


if __name__ == "__main__":
    main()
