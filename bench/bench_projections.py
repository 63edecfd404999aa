"""How fast history projects into the read models.

Generates a realistic history once (about 100,000 events by default: a network of
stations, volunteers, activities with sign-ups, waitlists, check-in and out,
confirmations and awards, rewards and redemptions, deductions and expiry) with the
real domain aggregates saved by the library's own SQLite application, spread over
fifteen months by a simulated clock. The history is kept under ``var/bench`` and
reused on later runs.

Then, for each read model chosen (``--models``; default the three that read the
whole history: leaderboard, unit_metrics, audit_trail) and for all of them
together, it measures (events/s of the whole stream, including events a model
ignores):

* ``decode``: reading the notification log and turning it into envelopes;
* ``batched``: applying pre-decoded envelopes in the runner's batches
  (accumulate, then ``executemany`` upserts, one transaction per batch);
* ``end-to-end``: ``ProjectionRunner.catch_up`` from the embedded stream
  (decode + apply); for all of them, one runner after another, and their
  runners in their threads at once (decoding shared through the stream's cache);
* ``baseline``: the library's one-transaction-per-event style: each event
  applied in its own transaction together with its position.

All of them together: one after another, in threads, and in a process each.

Run: ``.venv/bin/python bench/bench_projections.py [--events 100000] [--regenerate]
[--models leaderboard,unit_metrics,audit_trail] [--batch 20000]``
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import Application

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.activities import Activity  # noqa: E402 - after the path set-up
from domain.base import CivicAggregate, acting_as  # noqa: E402
from domain.categories import Category  # noqa: E402
from domain.errors import DomainError  # noqa: E402
from domain.passbook import AwardKind, Passbook  # noqa: E402
from domain.points import ExpiryKind, ExpiryPolicy, PointsRule  # noqa: E402
from domain.redemptions import redeem  # noqa: E402
from domain.rewards import Reward  # noqa: E402
from domain.units import PracticeUnit, UnitTier  # noqa: E402
from domain.volunteers import Volunteer  # noqa: E402
from infra.embedded_stream import EmbeddedStream  # noqa: E402
from infra.heap import freeze_startup_heap  # noqa: E402
from projections.catalog import PROJECTIONS, split_for_two_cores  # noqa: E402
from projections.group import RunnerGroup  # noqa: E402
from projections.runner import BATCH_SIZE, BULK_LAG, ProjectionRunner  # noqa: E402
from projections.store import ViewStore  # noqa: E402
from projections.stream import PositionLookup, StreamRecord, Subscription  # noqa: E402

BATCH = BATCH_SIZE  # the runner's default batch size
READ = 2000  # notifications read from the log at a time
DEFAULT_MODELS = ("leaderboard", "unit_metrics", "audit_trail")
START = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)


class HistoryApp(Application[UUID]):
    """The library's application, used only to record the generated history."""


class SimulatedClock:
    """Event timestamps of a history that spans months, not the seconds it takes to
    generate it. Installed as the events' ``create_timestamp`` for the generation."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def open_app(path: Path) -> HistoryApp:
    return HistoryApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )


class HistoryGenerator:
    """Plausible history: 2 centers, 8 institutes, 40 stations, 3,000 volunteers with
    passbooks, rewards at every institute, then activities every few hours (sign-ups
    with waitlists and cancellations, check-in and out or hours entered, service
    confirmed and points awarded, closing) and, around each, manual awards,
    deductions, redemptions (some cancelled) and expiry."""

    def __init__(self, app: HistoryApp, clock: SimulatedClock, seed: int) -> None:
        self.app = app
        self.clock = clock
        self.rng = random.Random(seed)
        self.rule = PointsRule()
        self.policy = ExpiryPolicy(kind=ExpiryKind.DAYS, days=180)
        self.stations: list[PracticeUnit] = []
        self.institutes: list[PracticeUnit] = []
        self.volunteers: list[Volunteer] = []
        self.passbooks: dict[UUID, Passbook] = {}
        self.rewards: list[Reward] = []

    def network(self) -> None:
        units: list[PracticeUnit] = []
        for c in range(2):
            center = PracticeUnit.open(
                code=f"C{c}", name=f"中心{c}", tier=UnitTier.CENTER, parent=None
            )
            units.append(center)
            for i in range(4):
                institute = PracticeUnit.open(
                    code=f"C{c}I{i}", name=f"所{c}{i}", tier=UnitTier.INSTITUTE, parent=center
                )
                self.institutes.append(institute)
                units.append(institute)
                for k in range(5):
                    station = PracticeUnit.open(
                        code=f"C{c}I{i}S{k}",
                        name=f"站{c}{i}{k}",
                        tier=UnitTier.STATION,
                        parent=institute,
                    )
                    self.stations.append(station)
                    units.append(station)
        self.app.save(*units)

    def people(self, count: int = 3000) -> None:
        for n in range(count):
            self.clock.now = START + timedelta(minutes=n)
            volunteer = Volunteer.register(
                document_digest=f"bench-{n}",
                document_masked="110***********001X",
                home_station=self.rng.choice(self.stations),
                name=f"志愿者{n}",
                phone=f"138{n:08d}",
            )
            passbook = Passbook.open_for(volunteer.id, volunteer.home_path)
            self.volunteers.append(volunteer)
            self.passbooks[volunteer.id] = passbook
            self.app.save(volunteer, passbook)
        self.rewards = [
            Reward.list_at(
                unit=unit,
                name=f"礼品{k}",
                description="",
                cost_points=self.rng.choice([5, 10, 20]),
                stock=10_000,
            )
            for k, unit in enumerate(self.institutes + self.stations[:10])
        ]
        self.app.save(*self.rewards)

    def activity(self, day: datetime) -> None:
        rng, clock = self.rng, self.clock
        unit = rng.choice(self.stations) if rng.random() < 0.85 else rng.choice(self.institutes)
        starts = day.replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        clock.now = day
        activity = Activity.publish(
            unit=unit,
            title="服务活动",
            category=rng.choice(list(Category)),
            starts_at=starts,
            ends_at=starts + timedelta(hours=3),
            location="社区",
            capacity=rng.randint(8, 16),
            points_per_hour=rng.choice([5, 10, 15]),
        )
        for k, volunteer in enumerate(rng.sample(self.volunteers, rng.randint(8, 20))):
            clock.now = day + timedelta(minutes=10 + k)
            activity.sign_up(volunteer, clock.now)
        touched: dict[UUID, CivicAggregate] = {}
        if rng.random() < 0.04:
            clock.now = day + timedelta(hours=20)
            activity.cancel("天气原因")
        else:
            for volunteer_id in activity.enrolled[:2]:
                if rng.random() < 0.3:
                    clock.now = day + timedelta(hours=30)
                    activity.cancel_signup(volunteer_id, "临时有事", clock.now)
            for volunteer_id in activity.enrolled:
                self.serve(activity, volunteer_id, starts, touched)
            clock.now = starts + timedelta(hours=5)
            activity.close(clock.now)
            for volunteer in rng.sample(self.volunteers, 6):
                clock.now = starts + timedelta(hours=6)
                self.points(volunteer, touched)
        self.app.save(activity, *touched.values())

    def serve(
        self,
        activity: Activity,
        volunteer_id: UUID,
        starts: datetime,
        touched: dict[UUID, CivicAggregate],
    ) -> None:
        rng, clock = self.rng, self.clock
        minutes: int | None = None
        if rng.random() < 0.8:
            clock.now = starts - timedelta(minutes=rng.randint(0, 30))
            activity.check_in(volunteer_id, clock.now)
            clock.now = starts + timedelta(minutes=rng.randint(60, 180))
            activity.check_out(volunteer_id, clock.now)
        else:
            minutes = rng.randint(60, 180)
        clock.now = starts + timedelta(hours=4)
        record = activity.confirm_service(
            volunteer_id, minutes=minutes, people_served=rng.randint(0, 12), now=clock.now
        )
        passbook = self.passbooks[volunteer_id]
        passbook.award(
            points=self.rule.points_for(
                minutes=record.minutes,
                points_per_hour=record.points_per_hour,
                source=record.source,
                category=record.category,
            ),
            kind=AwardKind.SERVICE,
            source_id=record.confirmation_id,
            reason="服务积分",
            now=clock.now,
            policy=self.policy,
            activity_id=activity.id,
            minutes=record.minutes,
        )
        touched[passbook.id] = passbook

    def points(self, volunteer: Volunteer, touched: dict[UUID, CivicAggregate]) -> None:
        """A manual award, a deduction, a redemption (1 in 5 cancelled) or expiry."""
        rng, now = self.rng, self.clock.now
        passbook = self.passbooks[volunteer.id]
        roll = rng.random()
        try:
            if roll < 0.25:
                passbook.award(
                    points=rng.randint(5, 30),
                    kind=AwardKind.MANUAL,
                    source_id=uuid4(),
                    reason="文明户",
                    now=now,
                    policy=self.policy,
                )
            elif roll < 0.30:
                passbook.deduct(
                    points=rng.randint(1, 5), reason="更正", adjustment_id=uuid4(), now=now
                )
            elif roll < 0.85:
                reward = rng.choice(self.rewards)
                redemption = redeem(
                    redemption_id=uuid4(),
                    volunteer=volunteer,
                    passbook=passbook,
                    reward=reward,
                    quantity=1,
                    now=now,
                )
                if rng.random() < 0.2:
                    redemption.cancel("不要了", passbook, reward)
                else:
                    redemption.fulfil("已领取")
                touched[reward.id] = reward
                touched[redemption.id] = redemption
            else:
                passbook.expire_due(now)
        except DomainError:
            return  # e.g. not enough points: nothing happened
        touched[passbook.id] = passbook


def generate(path: Path, target: int, seed: int = 7) -> int:
    """Record about ``target`` events of plausible history; returns the count."""
    app = open_app(path)
    clock = SimulatedClock(START)
    saved = CivicAggregate.Event.__dict__.get("create_timestamp")
    CivicAggregate.Event.create_timestamp = staticmethod(clock)  # type: ignore[method-assign]
    try:
        with acting_as("admin:bench"):
            history = HistoryGenerator(app, clock, seed)
            history.network()
            history.people()
            day = START + timedelta(days=3)
            while (app.recorder.max_notification_id() or 0) < target:
                day += timedelta(hours=history.rng.choice([3, 5, 8]))
                history.activity(day)
        return int(app.recorder.max_notification_id() or 0)
    finally:
        if saved is None:
            del CivicAggregate.Event.create_timestamp
        else:
            CivicAggregate.Event.create_timestamp = saved  # type: ignore[method-assign]
        app.close()


def history(data_dir: Path, target: int, regenerate: bool) -> Path:
    path = data_dir / f"history-{target}.db"
    if regenerate and path.exists():
        path.unlink()
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        started = time.perf_counter()
        n = generate(partial, target)
        partial.rename(path)
        print(f"generated {n:,} events in {time.perf_counter() - started:.1f} s -> {path}")
    return path


# -- measuring -----------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    events: int
    wall: float
    cpu: float  # CPU time of this process (on a shared machine, the steadier figure)

    def line(self, baseline: Figure | None = None) -> str:
        rate = self.events / self.wall
        cpu_rate = self.events / self.cpu if self.cpu else float("inf")
        vs = f"  {rate / (baseline.events / baseline.wall):5.1f}x baseline" if baseline else ""
        return (
            f"  {self.label:<50} {rate:>9,.0f} events/s  (CPU {cpu_rate:>9,.0f}/s;"
            f" {self.events:,} in {self.wall:.2f} s){vs}"
        )


def measure(label: str, events: int, fn: Callable[[], object]) -> Figure:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Figure(label, events, time.perf_counter() - wall, time.process_time() - cpu)


class _NoStream:
    """Runners fed by hand (``apply_records``) never poll a stream."""

    def subscribe(
        self, group: str, lookup: PositionLookup, types: frozenset[str] | None = None
    ) -> Subscription:
        msg = "these runners are fed with apply_records(); nothing subscribes"
        raise RuntimeError(msg)

    def head(self) -> int:
        return 0


NO_STREAM = _NoStream()
Batches = Sequence[Sequence[StreamRecord]]


@dataclass
class Run:
    """One benchmark run: the decoded history, cut into the runner's batches."""

    stream: EmbeddedStream
    records: list[StreamRecord]
    batch_size: int
    baseline_events: int
    work: Path
    store: Path  # the event store's SQLite file
    views: int = 0

    @property
    def events(self) -> int:
        return len(self.records)

    @property
    def batches(self) -> Batches:
        size = self.batch_size
        return [self.records[i : i + size] for i in range(0, len(self.records), size)]

    def runners(
        self, names: Sequence[str], stream: EmbeddedStream | None = None, bulk_lag: int = BULK_LAG
    ) -> list[ProjectionRunner]:
        """Fresh runners, each on a new view database (on ``stream``: a fresh one for
        each end-to-end figure, so none starts with envelopes decoded by another).
        ``bulk_lag=0``: the read indexes are created first, as a naive projection
        would (the baseline)."""
        self.views += 1
        return [
            ProjectionRunner(
                PROJECTIONS[name](),
                ViewStore(self.work / f"{self.views}-{name}.sqlite"),
                stream or self.stream,
                batch_size=self.batch_size,
                retry_backoff=0.0,
                bulk_lag=bulk_lag,
            )
            for name in names
        ]

    def fresh_stream(self) -> EmbeddedStream:
        return EmbeddedStream(self.stream.recorder)


def apply_batched(runner: ProjectionRunner, batches: Batches) -> None:
    for batch in batches:
        runner.apply_records(batch)
    runner.reached_head()  # the read indexes it deferred, if it did


def apply_each(runners: Sequence[ProjectionRunner], batches: Batches) -> None:
    for runner in runners:
        apply_batched(runner, batches)


def apply_one_by_one(runner: ProjectionRunner, records: Sequence[StreamRecord]) -> None:
    """The library's style: each event in its own transaction, with its position."""
    for record in records:
        runner.apply_records([record])


def in_threads(runners: Sequence[ProjectionRunner], batches: Batches) -> None:
    threads = [threading.Thread(target=apply_batched, args=(r, batches)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def in_processes(run: Run, names: Sequence[str]) -> Figure:
    """Each read model in its own (forked) process, fed the same decoded batches."""
    run.views += 1
    return _timed_children(
        f"batched, pre-decoded, {len(names)} processes",
        run.events,
        [
            (_project_in_child, (name, run.batches, run.work / f"{run.views}-{name}.sqlite"))
            for name in names
        ],
    )


def in_processes_end_to_end(
    run: Run, groups: Sequence[Sequence[str]], label: str | None = None
) -> Figure:
    """Each group of read models in its own (forked) process that opens the store and
    follows the log itself, selecting and decoding the event types its read models
    handle (as `civic project NAME...` does: one read model on its runner, several
    in a ``RunnerGroup``)."""
    run.views += 1
    return _timed_children(
        label or f"end-to-end: {len(groups)} processes, each on the log",
        run.events,
        [
            (_follow_in_child, (tuple(names), run.store, run.work / str(run.views), run.batch_size))
            for names in groups
        ],
    )


def _timed_children(
    label: str, events: int, children: Sequence[tuple[Callable[..., None], tuple[Any, ...]]]
) -> Figure:
    """Fork a process per (target, args), wait for all; their wall time and CPU."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=args) for target, args in children]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            msg = f"a projection process failed ({process.exitcode})"
            raise RuntimeError(msg)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Figure(label, events, wall, cpu)


def _follow_in_child(names: tuple[str, ...], store: Path, views: Path, batch_size: int) -> None:
    app = open_app(store)  # its own connections: none inherited from the parent is used
    try:
        # as `civic project NAME...`: nothing kept for sharing, only the types handled
        stream = EmbeddedStream(app.recorder, keep_decoded=0)
        runners = [
            ProjectionRunner(
                PROJECTIONS[name](),
                ViewStore(views / f"{name}.sqlite"),
                stream,
                batch_size=batch_size,
                retry_backoff=0.0,
            )
            for name in names
        ]
        if len(runners) == 1:
            runners[0].catch_up()
        else:
            RunnerGroup(runners, stream).catch_up()
        head = app.recorder.max_notification_id()
        assert all(runner.position == head for runner in runners)
    finally:
        app.close()


def _project_in_child(name: str, batches: Batches, path: Path) -> None:
    runner = ProjectionRunner(PROJECTIONS[name](), ViewStore(path), NO_STREAM, retry_backoff=0.0)
    apply_batched(runner, batches)
    assert runner.position == batches[-1][-1].position


def catch_up_concurrently(runners: Sequence[ProjectionRunner], head: int) -> None:
    for runner in runners:
        runner.start()
    try:
        for runner in runners:
            if not runner.wait_for(head, timeout=900):
                msg = f"{runner.name} did not catch up"
                raise RuntimeError(msg)
    finally:
        for runner in runners:
            runner.stop()
    for runner in runners:
        runner.reached_head()  # the read indexes its thread had not built yet, if any


def per_projection(run: Run, name: str) -> Figure:
    """Print one projection's figures; return its baseline."""
    (runner,) = run.runners([name])
    batched = measure(
        "batched, pre-decoded", run.events, partial(apply_batched, runner, run.batches)
    )
    (runner,) = run.runners([name], run.fresh_stream())
    e2e = measure("end-to-end catch_up (decode + apply)", run.events, runner.catch_up)
    assert runner.position == run.events
    (runner,) = run.runners([name], bulk_lag=0)
    baseline = measure(
        "baseline: 1 transaction per event",
        run.baseline_events,
        partial(apply_one_by_one, runner, run.records[: run.baseline_events]),
    )
    print(f"{name}:")
    print(batched.line(baseline))
    print(e2e.line(baseline))
    print(baseline.line())
    return baseline


def all_of_them(run: Run, names: Sequence[str], baselines: list[Figure]) -> None:
    # the baseline of all of them: each one's one-transaction-per-event time, added up
    combined = Figure(
        "baseline: 1 transaction per event",
        baselines[0].events,
        sum(b.wall for b in baselines),
        sum(b.cpu for b in baselines),
    )
    sequential = measure(
        "batched, pre-decoded, one after another",
        run.events,
        partial(apply_each, run.runners(names), run.batches),
    )
    threaded = measure(
        f"batched, pre-decoded, {len(names)} threads",
        run.events,
        partial(in_threads, run.runners(names), run.batches),
    )
    processes = in_processes(run, names)
    e2e = measure(
        f"end-to-end: {len(names)} runner threads on the log",
        run.events,
        partial(catch_up_concurrently, run.runners(names, run.fresh_stream()), run.events),
    )
    e2e_processes = in_processes_end_to_end(run, [[n] for n in names])
    figures = [sequential, threaded, processes, e2e, e2e_processes]
    split = split_for_two_cores(names)
    if len(split) < len(names):
        shown = " | ".join("+".join(group) for group in split)
        figures.append(in_processes_end_to_end(run, split, f"end-to-end: {shown}"))
    print(f"all {len(names)} ({', '.join(names)}):")
    for figure in figures:
        print(figure.line(combined))
    print(combined.line())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--batch", type=int, default=BATCH, help="events per transaction")
    parser.add_argument(
        "--baseline-events",
        type=int,
        default=0,
        help="apply only this many events one per transaction (0: all of them)",
    )
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help=f"read models, comma-separated (known: {', '.join(PROJECTIONS)})",
    )
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="leave the collector as Python sets it (`civic project` and the server freeze "
        "the start-up heap and collect young objects less often at start: infra/heap.py)",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown or not names:
        parser.error(f"unknown read models {unknown} (known: {', '.join(PROJECTIONS)})")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    store = history(args.data_dir, args.events, args.regenerate)
    app = open_app(store)
    if not args.no_gc_freeze:
        freeze_startup_heap()  # as our processes do at start
    stream = EmbeddedStream(app.recorder)
    records: list[StreamRecord] = []

    def read_all() -> None:
        while batch := stream.read(records[-1].offset if records else 0, READ):
            records.extend(batch)

    decode = measure("decode (read log + envelopes)", stream.head(), read_all)
    assert len(records) == stream.head()
    run = Run(
        stream,
        records,
        args.batch,
        min(args.baseline_events or len(records), len(records)),
        Path(tempfile.mkdtemp(prefix="bench-projections-")),
        store,
    )
    print(
        f"history: {run.events:,} events, 1 partition, batches of {run.batch_size}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; views in {run.work};"
        f" collector {'as Python sets it' if args.no_gc_freeze else 'tuned (infra/heap.py)'}"
    )
    print(decode.line())
    try:
        baselines = [per_projection(run, name) for name in names]
        all_of_them(run, names, baselines)
    finally:
        app.close()
        shutil.rmtree(run.work, ignore_errors=True)


if __name__ == "__main__":
    main()
