"""Integration fixtures: a real Apache Kafka broker, one topic per test, and the
pieces the Kafka tests share (a demo history, an exactly-once ledger projection,
table dumps to compare read models).

The broker: ``CIVIC_KAFKA_BOOTSTRAP`` when the suite runner already started one
(``infra/test.sh``); otherwise ``infra/kafka/kafka.sh start`` on free loopback
ports with a temporary data directory, stopped when the session ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.embedded_stream import EmbeddedStream
from infra.relay import Relay
from infra.settings import Settings
from projections.base import Projection
from projections.catalog import PROJECTIONS
from projections.envelope import EventEnvelope
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import EventStream
from services.application import CivicApplication
from services.bootstrap import build_application

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "infra" / "kafka" / "kafka.sh"
DOCUMENT_SECRET = "test-document-secret-0123456789abcdef"


# -- the broker -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class KafkaBroker:
    """A broker this session can reach; ``owned`` when the session started it (and
    may therefore stop and restart it)."""

    bootstrap: str
    owned: bool
    env: dict[str, str] = field(default_factory=dict)

    def _run(self, command: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own script, fixed arguments
            ["bash", str(KAFKA_SH), command],  # noqa: S607
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        done = self._run("start")
        if done.returncode != 0:
            # kafka.sh start can give up while the JVM is still exec'ing (it checks
            # /proc/<pid>/cmdline before java replaced the forked shell): wait again
            done = self._run("wait")
        if done.returncode != 0:
            log = Path(self.env["CIVIC_KAFKA_DATA"]) / "kafka.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"Kafka did not start:\n{done.stdout}\n{done.stderr}\n{tail}")

    def stop(self) -> None:
        self._run("stop", timeout=90)


def start_private_broker(data_dir: Path) -> KafkaBroker:
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: cannot start infra/kafka/kafka.sh")
    port = free_port()
    env = dict(
        os.environ,
        CIVIC_KAFKA_PORT=str(port),
        CIVIC_KAFKA_CONTROLLER_PORT=str(free_port()),
        CIVIC_KAFKA_DATA=str(data_dir),
    )
    broker = KafkaBroker(f"127.0.0.1:{port}", owned=True, env=env)
    broker.start()
    return broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    external = os.environ.get("CIVIC_KAFKA_BOOTSTRAP")
    if external:
        yield KafkaBroker(external, owned=False)
        return
    broker = start_private_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def restartable_broker(
    kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaBroker]:
    """A broker the test may stop and start: the session's if this session owns it,
    else a private one (never a broker someone else started)."""
    if kafka_broker.owned:
        yield kafka_broker
        return
    broker = start_private_broker(tmp_path_factory.mktemp("kafka-private"))
    try:
        yield broker
    finally:
        broker.stop()


def kafka_settings(data_dir: Path, bootstrap: str, topic: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        kafka=bootstrap,
        kafka_topic=topic or f"civic.test.{uuid.uuid4().hex[:12]}",
        document_secret=DOCUMENT_SECRET,
        log_format="json",
        log_level="WARNING",
    )


@pytest.fixture
def kafka_config(tmp_path: Path, kafka_broker: KafkaBroker) -> Settings:
    """Settings in Kafka mode: a fresh data dir and a topic of the test's own."""
    return kafka_settings(tmp_path / "data", kafka_broker.bootstrap)


@pytest.fixture
def group_prefix() -> str:
    """Consumer groups unique to the test (no stale members from earlier tests)."""
    return f"test.{uuid.uuid4().hex[:8]}."


# -- a history ----------------------------------------------------------------------------


def load_demo(app: CivicApplication, volunteers: int = 80, months: int = 2, seed: int = 7) -> int:
    """Load a deterministic slice of the demo network (every kind of event); returns
    the store's head."""
    from services.demo import DemoConfig, generate, load  # noqa: PLC0415 - test helper

    plan = generate(
        DemoConfig(seed=seed, volunteers=volunteers, months=months),
        document_secret=app.document_secret,
        points_rule=app.points_rule,
    )
    report = load(app, plan)
    assert not report.failed, report.failures[:3]
    return app.head()


# -- an exactly-once witness --------------------------------------------------------------


class Ledger(Projection):
    """Writes one row per applied event, with no key that would refuse a repeat, and
    notes every event that arrives before one with a larger position (it saw the
    store's order broken) or out of its aggregate's version order."""

    name = "ledger"
    takes_every_event = True  # it has no handlers: ``apply`` records every event

    def __init__(self, *, timezone: str = "UTC") -> None:
        self.timezone = timezone

    def create_tables(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS ledger (position INTEGER NOT NULL, "
            "aggregate_id TEXT NOT NULL, aggregate_version INTEGER NOT NULL, type TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS anomalies (position INTEGER NOT NULL, kind TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS aggregates (aggregate_id TEXT PRIMARY KEY, "
            "version INTEGER NOT NULL)"
        )

    def begin_batch(self, conn: sqlite3.Connection) -> None:
        return None

    def flush_batch(self, conn: sqlite3.Connection, batch: Any) -> None:
        return None

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        row = conn.execute("SELECT MAX(position) FROM ledger").fetchone()
        last = int(row[0] or 0)
        for e in events:
            if e.position < last:
                conn.execute("INSERT INTO anomalies VALUES (?, 'store-order')", (e.position,))
            last = max(last, e.position)
            aggregate = str(e.aggregate_id)
            seen = conn.execute(
                "SELECT version FROM aggregates WHERE aggregate_id = ?", (aggregate,)
            ).fetchone()
            if (seen[0] if seen else 0) + 1 != e.aggregate_version:
                conn.execute("INSERT INTO anomalies VALUES (?, 'aggregate-order')", (e.position,))
            conn.execute(
                "INSERT INTO aggregates VALUES (?, ?) ON CONFLICT(aggregate_id) "
                "DO UPDATE SET version = excluded.version",
                (aggregate, e.aggregate_version),
            )
            conn.execute(
                "INSERT INTO ledger VALUES (?, ?, ?, ?)",
                (e.position, aggregate, e.aggregate_version, e.type),
            )


@dataclass
class LedgerView:
    positions: list[int]
    anomalies: list[tuple[int, str]]

    def assert_exactly(self, head: int, *, store_order: bool = True) -> None:
        duplicates = sorted({p for p in self.positions if self.positions.count(p) > 1})
        assert not duplicates, f"applied twice: {duplicates[:10]}"
        missing = sorted(set(range(1, head + 1)) - set(self.positions))
        assert not missing, f"never applied: {missing[:10]} (of {len(missing)})"
        assert len(self.positions) == head
        kinds = {kind for _, kind in self.anomalies}
        assert "aggregate-order" not in kinds, self.anomalies[:10]
        if store_order:
            assert not self.anomalies, self.anomalies[:10]


def read_ledger(path: Path) -> LedgerView:
    with sqlite3.connect(path) as conn:
        positions = [int(r[0]) for r in conn.execute("SELECT position FROM ledger")]
        anomalies = [(int(r[0]), str(r[1])) for r in conn.execute("SELECT * FROM anomalies")]
    return LedgerView(positions, anomalies)


def ledger_runner(path: Path, stream: EventStream, **options: Any) -> ProjectionRunner:
    return ProjectionRunner(Ledger(), ViewStore(path), stream, **options)


# -- comparing read models ----------------------------------------------------------------

SKIP_TABLES = {"stream_position", "dead_letters", "sqlite_sequence"}


def dump_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a view (bar its stream bookkeeping), sorted."""
    with sqlite3.connect(path) as conn:
        names = [
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] not in SKIP_TABLES
        ]
        return {
            name: sorted(
                (tuple(row) for row in conn.execute(f'SELECT * FROM "{name}"')),  # noqa: S608
                key=repr,
            )
            for name in sorted(names)
        }


# -- a published history, and its read models rebuilt from the embedded stream ----


@dataclass
class History:
    settings: Settings
    app: CivicApplication
    head: int
    reference: dict[str, dict[str, list[tuple[Any, ...]]]]  # embedded rebuild, per view


def catch_up_to(runner: ProjectionRunner, head: int, timeout: float = 30) -> None:
    """Run the runner in this thread until it applied ``head`` (bounded)."""
    deadline = time.monotonic() + timeout
    while runner.position < head:
        runner.run_once(0.2)
        if time.monotonic() > deadline:
            pytest.fail(f"{runner.name} reached {runner.position} of {head} in {timeout}s")


def rebuild(stream: EventStream, views: Path, head: int) -> dict[str, Path]:
    """Every catalogue projection and the ledger, built from ``stream`` up to
    ``head`` in ``views``; their database files."""
    paths: dict[str, Path] = {}
    projections: dict[str, Projection] = {name: f() for name, f in PROJECTIONS.items()}
    projections["ledger"] = Ledger()
    for name, projection in projections.items():
        paths[name] = views / f"{name}.sqlite"
        runner = ProjectionRunner(projection, ViewStore(paths[name]), stream)
        try:
            catch_up_to(runner, head)
            assert runner.healthy, runner.dead_letters()[:3]
        finally:
            runner.stop()
            runner.store.close()
    return paths


@pytest.fixture(scope="module")
def history(
    kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[History]:
    """A demo history in a store, published to the test topic, with the read models
    rebuilt from the embedded stream as the reference."""
    base = tmp_path_factory.mktemp("history")
    settings = kafka_settings(base / "data", kafka_broker.bootstrap)
    app = build_application(settings)
    head = load_demo(app)
    relay = Relay.from_settings(settings, app)
    assert relay.catch_up(60)
    relay.stop()
    paths = rebuild(EmbeddedStream(app.recorder), base / "reference", head)
    reference = {name: dump_tables(path) for name, path in paths.items()}
    try:
        yield History(settings, app, head, reference)
    finally:
        app.close()
