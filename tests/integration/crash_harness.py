"""A crash campaign: a seeded workload runs against the event store while the
relay and the projection consumers, each its own ``civic`` process, are killed
with SIGKILL at random points and restarted; afterwards every read model is
compared with a from-scratch recomputation from the event store.

Reproducible: the workload (``services.demo`` with the campaign's seed) and the
kill schedule (which process, how long after it was seen working) come from one
seed. Wall-clock interleavings differ between runs; what a run must show does not:
each position on the topic exactly once, and read models equal to the rebuild.

Used by ``tests/integration/test_crash_campaign.py`` (a quick variant in CI, the
long one behind ``--run-slow``); ``python -m tests.integration.crash_harness``
is not provided on purpose: the pytest fixtures own the broker.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx
from kafka import TopicPartition

from infra.backup import processes_using
from infra.embedded_stream import EmbeddedStream
from infra.kafka_stream import HEADER_POSITION, header, tail_consumer
from infra.settings import Settings
from projections.catalog import PROJECTIONS
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.view_files import live_path
from services.application import CivicApplication
from services.demo import DemoConfig, generate, load

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


CIVIC = Path(sys.executable).with_name("civic")

Tables = dict[str, list[tuple[Any, ...]]]


def civic_command(*args: str) -> list[str]:
    """The installed ``civic`` entry point (its module when not installed)."""
    if CIVIC.exists():
        return [str(CIVIC), *args]
    return [sys.executable, "-c", "from services.cli import main; main()", *args]


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    secret = settings.document_secret.get_secret_value() if settings.document_secret else ""
    env = dict(
        os.environ,
        CIVIC_DATA_DIR=str(settings.data_dir),
        CIVIC_KAFKA_TOPIC=settings.kafka_topic,
        CIVIC_DOCUMENT_SECRET=secret,
        CIVIC_LOG_FORMAT="json",
        CIVIC_LOG_LEVEL="WARNING",
        **extra,
    )
    if settings.kafka:
        env["CIVIC_KAFKA"] = settings.kafka
    return env


def view_position(path: Path) -> int:
    """The highest position a projection database recorded (0: none yet)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute("SELECT MAX(position) FROM stream_position").fetchone()
    except sqlite3.OperationalError:  # not created yet, or busy recovering
        return 0
    return int(row[0] or 0)


class Broker(Protocol):
    """A broker the campaign may stop and start (the integration fixtures' one)."""

    def stop(self) -> None: ...

    def start(self) -> None: ...


# -- a supervised process ----------------------------------------------------------------


@dataclass
class Supervised:
    """One ``civic`` process the campaign starts, kills and restarts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    progress: Callable[[], int]  # grows while the process does its work
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    starts: int = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        self.starts += 1

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            msg = f"{self.name} exited on its own with {self.process.returncode}: {self.log_path}"
            raise AssertionError(msg)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.kills += 1

    def stop(self) -> int:
        """SIGTERM and wait: the exit code (0, or -SIGTERM when the signal came while
        the process was still starting, before it installed its handler)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return -9


# -- the API server ---------------------------------------------------------------------


class ApiServer:
    """``civic serve`` on a free port (embedded stream, read models in process)."""

    def __init__(self, settings: Settings, workers: int = 1) -> None:
        self.settings = settings
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = settings.data_dir / "serve.log"
        self.kills = 0

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                civic_command("serve", "--port", str(self.port), "--workers", str(self.workers)),
                cwd=ROOT,
                env=process_env(self.settings),
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while not self.up():
            if time.monotonic() > deadline:
                msg = f"civic serve did not answer in 60 s: see {self.log}"
                raise AssertionError(msg)
            time.sleep(0.05)

    def up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            msg = f"civic serve exited with {self.process.returncode}: see {self.log}"
            raise AssertionError(msg)
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.kills += 1

    def workers_pids(self) -> set[int]:
        """The uvicorn worker processes (children of ``civic serve --workers N``)."""
        assert self.process is not None
        return {pid for pid in child_pids(self.process.pid) if is_uvicorn_worker(pid)}

    def worker_ready(self, pid: int) -> bool:
        """Whether the worker has opened the event store (its application is built,
        just before it starts answering)."""
        return pid in processes_using([self.settings.data_dir / "events.sqlite"])

    def write_lock_holder(self) -> int | None:
        """The worker holding the event store's write lock between processes, if one
        does (``/proc/locks``: a FLOCK on ``events.sqlite.writer-lock``)."""
        return flock_holder(self.settings.data_dir / "events.sqlite.writer-lock")

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -9


def child_pids(parent: int) -> list[int]:
    """Live processes whose parent is ``parent`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # after the command name (in parentheses): state, then the parent's pid
        if int(stat.rpartition(")")[2].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def is_uvicorn_worker(pid: int) -> bool:
    """A process started by multiprocessing's spawn (uvicorn's workers are), not its
    resource tracker."""
    try:
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"from multiprocessing.spawn import spawn_main; spawn_main(" in b" ".join(cmdline)


def flock_holder(path: Path) -> int | None:
    """The pid holding an exclusive ``flock`` on ``path`` (None: nobody, or no file)."""
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return None
    for line in Path("/proc/locks").read_text().splitlines():
        # e.g. "3: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF"
        fields = line.split()
        if "->" in fields:  # a waiter, listed under the lock it waits for
            continue
        if fields[1:4] == ["FLOCK", "ADVISORY", "WRITE"] and fields[5].endswith(f":{inode}"):
            return int(fields[4])
    return None


# -- the topic ---------------------------------------------------------------------------


class TopicWatch:
    """Counts records on the topic, uncommitted ones included (so the relay is seen
    working inside its open transaction)."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.kafka_topic
        self.consumer = tail_consumer(
            settings.kafka or "", "civic-crash-watch", isolation_level="read_uncommitted"
        )
        self._lock = threading.Lock()

    def records(self) -> int:
        with self._lock:
            partitions = self.consumer.partitions_for_topic(self.topic)
            if not partitions:
                return 0
            tps = [TopicPartition(self.topic, p) for p in partitions]
            return int(sum(self.consumer.end_offsets(tps).values()))

    def close(self) -> None:
        self.consumer.close()


def committed_positions(settings: Settings) -> Counter[int]:
    """How many committed records the topic holds per store position."""
    consumer = tail_consumer(settings.kafka or "", "civic-crash-count")
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
        return counts
    finally:
        consumer.close()


# -- comparing with a recomputation ------------------------------------------------------


def row_differences(actual: Mapping[str, list[Any]], expected: Mapping[str, list[Any]]) -> int:
    """Rows in one dump and not the other (as multisets), over every table."""
    total = 0
    for table in set(actual) | set(expected):
        a, e = (
            Counter(map(repr, actual.get(table, []))),
            Counter(map(repr, expected.get(table, []))),
        )
        total += sum(((a - e) + (e - a)).values())
    return total


def recompute(
    app: CivicApplication, scratch: Path, timezone: str, timeout: float = 600.0
) -> dict[str, Path]:
    """Every read model built from scratch from the event store (embedded stream)
    in ``scratch``; their database files."""
    stream = EmbeddedStream(app.recorder)
    head = app.head()
    paths: dict[str, Path] = {}
    for name, factory in sorted(PROJECTIONS.items()):
        paths[name] = scratch / f"{name}.sqlite"
        runner = ProjectionRunner(factory(timezone=timezone), ViewStore(paths[name]), stream)
        deadline = time.monotonic() + timeout
        try:
            while runner.position < head:
                runner.run_once(0.2)
                if time.monotonic() > deadline:
                    msg = f"recomputing {name}: {runner.position} of {head} in {timeout}s"
                    raise AssertionError(msg)
            assert runner.healthy, runner.dead_letters()[:3]
        finally:
            runner.stop()
            runner.store.close()
    return paths


# -- the campaign ------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignConfig:
    seed: int = 2024
    kills: int = 12
    volunteers: int = 80
    months: int = 2
    batch_size: int = 10  # commands per transaction of the workload
    max_dwell: float = 0.5  # seconds a process works before it is killed, at most
    progress_timeout: float = 30.0  # kill anyway if a process shows no progress this long
    projection_batch: int = 50  # events per projection transaction (more kill points)
    session_timeout_ms: int = 6_000  # the broker's minimum: a killed member leaves soonest
    static_membership: bool = True  # a restarted consumer takes its partitions back at once
    outage_after: int | None = None  # the broker goes down after this many kills...
    outage_seconds: float = 10.0  # ...for this long, while the workload goes on


@dataclass
class CampaignReport:
    seed: int
    commands: int = 0
    command_failures: Counter[str] = field(default_factory=Counter)
    events: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    kills_while_working: int = 0
    seconds: float = 0.0
    differences: dict[str, int] = field(default_factory=dict)
    topic_duplicates: int = 0
    topic_missing: int = 0
    exit_codes: dict[str, int] = field(default_factory=dict)
    waits: list[tuple[str, float]] = field(default_factory=list)  # seconds until it worked
    outage_seconds: float = 0.0
    commands_during_outage: int = 0

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())

    def summary(self) -> str:
        return (
            f"seed={self.seed} commands={self.commands} events={self.events} "
            f"kills={self.total_kills} ({dict(sorted(self.kills.items()))}, "
            f"{self.kills_while_working} while working) seconds={self.seconds:.0f} "
            f"differences={self.differences} topic_duplicates={self.topic_duplicates} "
            f"topic_missing={self.topic_missing} command_failures={dict(self.command_failures)} "
            f"broker_outage={self.outage_seconds:.0f}s ({self.commands_during_outage} commands)"
        )


class Campaign:
    """Runs the workload in this process (the store) and the relay and one consumer
    process per read model, and kills the latter by the seeded schedule."""

    def __init__(
        self,
        config: CampaignConfig,
        app: CivicApplication,
        settings: Settings,
        group_prefix: str,
        broker: Broker | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self._commands = 0
        self.app = app
        self.settings = settings
        self.rng = random.Random(config.seed)
        self.report = CampaignReport(config.seed)
        self.watch = TopicWatch(settings)
        logs = settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = process_env(settings)
        self.processes = [
            Supervised(
                "relay",
                civic_command("relay"),
                env,
                logs / "relay.log",
                self.watch.records,
            )
        ]
        for name in sorted(PROJECTIONS):
            view = live_path(settings.views_dir, name)
            argv = civic_command(
                "project",
                name,
                "--batch-size",
                str(config.projection_batch),
                "--group-prefix",
                group_prefix,
                "--session-timeout-ms",
                str(config.session_timeout_ms),
            )
            if config.static_membership:
                argv += ["--group-instance-id", f"{group_prefix}{name}-1"]
            self.processes.append(
                Supervised(name, argv, env, logs / f"{name}.log", partial(view_position, view))
            )
        self._released = 0
        self._gate = threading.Condition()
        self._loader_error: BaseException | None = None

    # -- the workload: paced so that it lasts as long as the kills ----------------------

    def _allowance(self, batches: int) -> int:
        """Batches the workload may have run: one more share per kill begun."""
        released = self._released
        if released >= self.config.kills:
            return batches
        return max(1, batches * released // self.config.kills)

    def _load(self) -> None:
        plan = generate(
            DemoConfig(
                seed=self.config.seed,
                volunteers=self.config.volunteers,
                months=self.config.months,
            ),
            document_secret=self.app.document_secret,
            points_rule=self.app.points_rule,
        )
        batches = sum(1 for _ in plan.batches(self.config.batch_size))
        ran = 0

        def gate(commands: int) -> None:
            nonlocal ran
            ran += 1
            self._commands += commands
            with self._gate:
                while self._released < self.config.kills and ran >= self._allowance(batches):
                    self._gate.wait(0.5)

        try:
            result = load(self.app, plan, batch_size=self.config.batch_size, progress=gate)
        except BaseException as exc:  # reported by run()
            self._loader_error = exc
            return
        self.report.commands = result.commands
        self.report.command_failures = result.failed

    # -- the kills -----------------------------------------------------------------------

    def _release(self, shares: int) -> None:
        with self._gate:
            self._released = max(self._released, shares)
            self._gate.notify_all()

    def _kill_one(self, victim: Supervised, share: int) -> None:
        """Release the next share of the workload, wait until the victim works on it,
        let it work a random while, kill it and start it again."""
        baseline = victim.progress()
        self._release(share)
        released = time.monotonic()
        deadline = time.monotonic() + self.config.progress_timeout
        while victim.progress() <= baseline and time.monotonic() < deadline:
            time.sleep(0.01)
        if victim.progress() > baseline:
            self.report.kills_while_working += 1
        self.report.waits.append((victim.name, round(time.monotonic() - released, 1)))
        time.sleep(self.rng.uniform(0.0, self.config.max_dwell))
        victim.kill()
        self.report.kills[victim.name] += 1
        victim.start()

    def schedule(self) -> list[Supervised]:
        """Who dies next: rounds in which every process dies once, in a seeded order,
        never the same process twice in a row (it would still be restarting)."""
        order: list[Supervised] = []
        while len(order) < self.config.kills:
            round_ = self.rng.sample(self.processes, len(self.processes))
            if order and round_[0] is order[-1]:
                round_[0], round_[-1] = round_[-1], round_[0]
            order.extend(round_)
        return order[: self.config.kills]

    def run(self) -> CampaignReport:
        started = time.monotonic()
        for process in self.processes:
            process.start()
        loader = threading.Thread(target=self._load, name="crash-workload", daemon=True)
        loader.start()
        try:
            for share, victim in enumerate(self.schedule(), 1):
                self._kill_one(victim, share)
                if self._loader_error is not None:
                    raise self._loader_error
                if share == self.config.outage_after:
                    self._outage(share)
            loader.join()
            if self._loader_error is not None:
                raise self._loader_error
            self.report.events = self.app.head()
            self._converge(self.report.events)
        finally:
            for process in self.processes:
                self.report.exit_codes[process.name] = process.stop()
            self.watch.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _outage(self, share: int) -> None:
        """Stop the broker; the workload goes on (into the store) meanwhile."""
        assert self.broker is not None, "an outage needs a broker the test may stop"
        self.broker.stop()
        down = time.monotonic()
        before = self._commands
        self._release(min(share + 3, self.config.kills))  # three shares' worth meanwhile
        time.sleep(self.config.outage_seconds)
        self.report.commands_during_outage = self._commands - before
        self.broker.start()
        self.report.outage_seconds = time.monotonic() - down

    def _converge(self, head: int, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        views = [live_path(self.settings.views_dir, name) for name in PROJECTIONS]
        while any(view_position(v) < head for v in views):
            if time.monotonic() > deadline:
                positions = {v.stem: view_position(v) for v in views}
                msg = f"read models did not reach {head} in {timeout}s: {positions}"
                raise AssertionError(msg)
            time.sleep(0.2)

    # -- the verdict ----------------------------------------------------------------------

    def verify(self, scratch: Path) -> None:
        """Fill in the report's differences and topic counts (the test asserts them)."""
        from tests.integration.conftest import dump_tables  # noqa: PLC0415 - test helper

        counts = committed_positions(self.settings)
        head = self.report.events
        self.report.topic_duplicates = sum(n - 1 for n in counts.values() if n > 1)
        self.report.topic_missing = len(set(range(1, head + 1)) - set(counts))
        reference = recompute(self.app, scratch, self.settings.timezone)
        for name in sorted(PROJECTIONS):
            view = live_path(self.settings.views_dir, name)
            self.report.differences[name] = row_differences(
                dump_tables(view), dump_tables(reference[name])
            )
            with sqlite3.connect(view) as conn:
                parked = int(conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
            self.report.differences[f"{name}.dead_letters"] = parked
