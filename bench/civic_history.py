"""A large, plausible history recorded through the real application, fast.

Every event comes from a command (``services/commands``) run by
``CivicApplication.execute_batch``: handlers load aggregates, the domain decides,
and the events go to the group-commit recorder with the hash chain, exactly as in
production. What makes it fast is only the batching: the simulation advances a
clock in steps of twelve hours and sends everything that happens in one step
(publications, sign-ups, check-ins and outs, confirmations with their awards,
closings, manual awards, deductions, redemptions and their fulfilment or
cancellation, expiry) as one batch, one transaction.

Each activity goes through the steps: published (step p, starting at step p+3),
sign-ups at p+1 (capacity 8-16 for 8-20 sign-ups: waitlists), cancellations at p+2
(some sign-ups; 4% of activities), check-ins at p+3, check-outs, confirmations
(organizer-entered hours for those who did not check in) and closing at p+4, then
points actions for a few volunteers. The generator decides from the state the
application serves (a read-only look at the cached aggregates: who is enrolled,
whether a balance covers a redemption, whether points are due to expire), like an
organizer looking at the screen, so almost no command is refused.

The store is a whole data directory (``events.sqlite``, ``vault.sqlite``,
secrets), kept under ``var/bench/civic-{events}-seed{seed}`` and reused.
Generation runs in a worker process that reports its progress.

Run alone: ``.venv/bin/python -m bench.civic_history [--events 1000000] [--seed 7]``
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import random
import shutil
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.sqlite import SQLiteDatastore

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fixtures import resident_id  # noqa: E402 - after the path set-up
from domain.activities import Activity  # noqa: E402
from domain.categories import Category  # noqa: E402
from domain.errors import DomainError  # noqa: E402
from domain.passbook import Passbook  # noqa: E402
from domain.points import ExpiryKind  # noqa: E402
from infra.event_store import GroupCommitSQLiteRecorder  # noqa: E402
from infra.settings import Settings  # noqa: E402
from services import commands as c  # noqa: E402
from services.application import BatchItem, CivicApplication, ItemOutcome  # noqa: E402
from services.bootstrap import build_application  # noqa: E402
from services.principals import SYSTEM  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
STEP = timedelta(hours=12)
EVENTS_PER_ACTIVITY = 75  # about: sign-ups, attendance, confirmations + awards, points
STEPS = 700  # about eleven months of twelve-hour steps, whatever the size
SECRETS = {  # fixed, so a cached store is usable by every run (a bench, not production)
    "document_secret": "bench-document-secret-0123456789abcdef",
    "audit_secret": "bench-audit-secret-0123456789abcdefgh",
    "vault_master_key": "bench-vault-master-key-0123456789abcd",
}


def settings_for(data_dir: Path) -> Settings:
    """The settings of a generated store (expiry after 180 days, a cache that holds
    every volunteer and passbook)."""
    return Settings(
        data_dir=data_dir,
        expiry=ExpiryKind.DAYS,
        expiry_days=180,
        aggregate_cache_size=200_000,
        **SECRETS,  # type: ignore[arg-type] # pydantic turns str into SecretStr
    )


def store_dir(data_dir: Path, events: int, seed: int) -> Path:
    return data_dir / f"civic-{events}-seed{seed}"


def open_recorder(store: Path) -> GroupCommitSQLiteRecorder:
    """The application's recorder (with its hash chain) on a generated store."""
    return GroupCommitSQLiteRecorder(
        SQLiteDatastore(str(settings_for(store).events_db), lock_timeout=30)
    )


class SimClock:
    """The application's clock during generation: the simulation's time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Planned:
    activity_id: UUID
    publish_step: int


@dataclass
class Counters:
    commands: int = 0
    refused: int = 0
    by_code: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Simulation:
    def __init__(self, app: CivicApplication, clock: SimClock, target: int, seed: int) -> None:
        self.app = app
        self.clock = clock
        self.target = target
        self.rng = random.Random(seed)
        self.per_step = max(1, round(target / (EVENTS_PER_ACTIVITY * STEPS)))
        self.volunteer_count = min(20_000, max(100, target // 100))
        self.stations: list[UUID] = []
        self.institutes: list[UUID] = []
        self.volunteers: list[UUID] = []
        self.rewards: list[tuple[UUID, int]] = []  # id, cost
        self.activities: dict[int, list[Planned]] = defaultdict(list)  # by publish step
        self.redemptions: list[UUID] = []  # to fulfil or cancel at the next step
        self.counters = Counters()

    # -- running batches ---------------------------------------------------------

    def uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def run(self, commands: Sequence[c.Command]) -> list[ItemOutcome]:
        if not commands:
            return []
        outcomes = self.app.execute_batch([BatchItem(cmd) for cmd in commands], SYSTEM)
        self.counters.commands += len(commands)
        for outcome in outcomes:
            if not outcome.ok:
                self.counters.refused += 1
                self.counters.by_code[getattr(outcome.error, "code", "?")] += 1
        return outcomes

    def look(self, aggregate_id: UUID) -> Any:
        """The current state, read-only, from the application's cache (or store)."""
        return self.app.repository.get(aggregate_id, deepcopy_from_cache=False)

    # -- set-up ------------------------------------------------------------------

    def network(self) -> None:
        centers = self.run(
            [c.OpenUnit(code=f"C{k}", name=f"中心{k}", tier="center") for k in range(2)]
        )
        institutes: list[c.Command] = []
        for k, outcome in enumerate(centers):
            center = UUID(_result(outcome)["unit_id"])
            institutes += [
                c.OpenUnit(code=f"C{k}I{i}", name=f"所{k}{i}", tier="institute", parent_id=center)
                for i in range(4)
            ]
        self.institutes = [UUID(_result(o)["unit_id"]) for o in self.run(institutes)]
        stations: list[c.Command] = [
            c.OpenUnit(code=f"I{i}S{s}", name=f"站{i}{s}", tier="station", parent_id=institute)
            for i, institute in enumerate(self.institutes)
            for s in range(5)
        ]
        self.stations = [UUID(_result(o)["unit_id"]) for o in self.run(stations)]

    def people(self) -> None:
        for start in range(0, self.volunteer_count, 1000):
            self.clock.now = START + timedelta(minutes=start // 1000)
            batch: list[c.Command] = [
                c.RegisterVolunteer(
                    home_station_id=self.rng.choice(self.stations),
                    name=f"志愿者{n}",
                    phone=f"138{n:08d}",
                    id_number=resident_id(n),
                )
                for n in range(start, min(start + 1000, self.volunteer_count))
            ]
            self.volunteers += [UUID(_result(o)["volunteer_id"]) for o in self.run(batch)]
        listings: list[c.ListReward] = [
            c.ListReward(
                reward_id=self.uuid(),
                unit_id=unit,
                name=f"礼品{k}",
                cost_points=self.rng.choice([5, 10, 20]),
                stock=1_000_000,
            )
            for k, unit in enumerate(self.institutes + self.stations[:10])
        ]
        for listing, outcome in zip(listings, self.run(listings), strict=True):
            if outcome.ok:
                assert listing.reward_id is not None
                self.rewards.append((listing.reward_id, listing.cost_points))

    # -- one step ----------------------------------------------------------------

    def step(self, k: int) -> None:
        now = START + timedelta(days=1) + k * STEP
        self.clock.now = now
        commands: list[c.Command] = []
        commands += self.settle_redemptions()
        served = self.activities.pop(k - 4, [])
        for planned in served:
            commands += self.serve(planned, now)
        for planned in self.activities.get(k - 3, []):
            commands += self.check_in(planned, now)
        for planned in self.activities.get(k - 2, []):
            commands += self.cancellations(planned)
        for planned in self.activities.get(k - 1, []):
            commands += self.sign_ups(planned)
        commands += self.publish(k, now)
        commands += self.points(now, 6 * len(served))
        self.remember_redemptions(commands, self.run(commands))

    def publish(self, k: int, now: datetime) -> list[c.Command]:
        rng = self.rng
        starts = now + 3 * STEP
        commands: list[c.Command] = []
        for _ in range(self.per_step):
            activity_id = self.uuid()
            station = rng.random() < 0.85
            commands.append(
                c.PublishActivity(
                    activity_id=activity_id,
                    unit_id=rng.choice(self.stations if station else self.institutes),
                    title="服务活动",
                    category=rng.choice(list(Category)),
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=3),
                    location="社区",
                    capacity=rng.randint(8, 16),
                    points_per_hour=rng.choice([5, 10, 15]),
                )
            )
            self.activities[k].append(Planned(activity_id, k))
        return commands

    def sign_ups(self, planned: Planned) -> list[c.Command]:
        chosen = self.rng.sample(
            self.volunteers, min(len(self.volunteers), self.rng.randint(8, 20))
        )
        return [c.SignUp(activity_id=planned.activity_id, volunteer_id=v) for v in chosen]

    def cancellations(self, planned: Planned) -> list[c.Command]:
        rng = self.rng
        if rng.random() < 0.04:
            return [c.CancelActivity(activity_id=planned.activity_id, reason="天气原因")]
        activity: Activity = self.look(planned.activity_id)
        return [
            c.CancelSignup(activity_id=planned.activity_id, volunteer_id=v, reason="临时有事")
            for v in activity.enrolled[:2]
            if rng.random() < 0.3
        ]

    def check_in(self, planned: Planned, now: datetime) -> list[c.Command]:
        activity: Activity = self.look(planned.activity_id)
        if activity.status.value == "cancelled":
            return []
        return [
            c.CheckIn(
                activity_id=planned.activity_id,
                volunteer_id=v,
                at=now - timedelta(minutes=self.rng.randint(0, 30)),
            )
            for v in activity.enrolled
            if self.rng.random() < 0.8
        ]

    def serve(self, planned: Planned, now: datetime) -> list[c.Command]:
        rng = self.rng
        activity: Activity = self.look(planned.activity_id)
        if activity.status.value == "cancelled":
            return []
        starts = activity.starts_at
        commands: list[c.Command] = []
        for v in activity.enrolled:
            checked_in = activity.attendance[v].checked_in_at
            hours: Decimal | None = None
            if checked_in is not None:
                commands.append(
                    c.CheckOut(
                        activity_id=activity.id,
                        volunteer_id=v,
                        at=starts + timedelta(minutes=rng.randint(60, 180)),
                    )
                )
            else:
                hours = Decimal(rng.randint(4, 12)) / 4
            commands.append(
                c.ConfirmService(
                    activity_id=activity.id,
                    volunteer_id=v,
                    hours=hours,
                    people_served=rng.randint(0, 12),
                )
            )
        commands.append(c.CloseActivity(activity_id=activity.id))
        return commands

    def points(self, now: datetime, count: int) -> list[c.Command]:
        """A manual award, a deduction, a redemption or an expiry for ``count``
        different volunteers, each only if their passbook allows it now."""
        rng = self.rng
        commands: list[c.Command] = []
        for volunteer in rng.sample(self.volunteers, min(count, len(self.volunteers))):
            passbook: Passbook = self.look(Passbook.create_id(volunteer))
            roll = rng.random()
            if roll < 0.25:
                commands.append(
                    c.AwardPoints(
                        volunteer_id=volunteer,
                        points=rng.randint(5, 30),
                        reason="文明户",
                        award_id=self.uuid(),
                    )
                )
            elif roll < 0.85:
                reward, cost = rng.choice(self.rewards)
                if _covers(passbook, cost, now):
                    commands.append(
                        c.Redeem(
                            redemption_id=self.uuid(), volunteer_id=volunteer, reward_id=reward
                        )
                    )
            elif roll < 0.90:
                points = rng.randint(1, 5)
                if _covers(passbook, points, now):
                    commands.append(
                        c.AdjustPoints(
                            volunteer_id=volunteer,
                            delta=-points,
                            reason="更正",
                            adjustment_id=self.uuid(),
                        )
                    )
            elif passbook.due_for_expiry(now):
                commands.append(c.ExpirePoints(volunteer_id=volunteer))
        return commands

    def remember_redemptions(
        self, commands: Sequence[c.Command], outcomes: Sequence[ItemOutcome]
    ) -> None:
        for command, outcome in zip(commands, outcomes, strict=True):
            if isinstance(command, c.Redeem) and outcome.ok and command.redemption_id:
                self.redemptions.append(command.redemption_id)

    def settle_redemptions(self) -> list[c.Command]:
        """Last step's redemptions: one in five cancelled (refunded), the rest handed over."""
        commands: list[c.Command] = [
            c.CancelRedemption(redemption_id=r, reason="不要了")
            if self.rng.random() < 0.2
            else c.FulfilRedemption(redemption_id=r, note="已领取")
            for r in self.redemptions
        ]
        self.redemptions = []
        return commands


def _covers(passbook: Passbook, points: int, now: datetime) -> bool:
    try:
        passbook.plan_redemption(points, now)
    except DomainError:
        return False
    return True


def _result(outcome: ItemOutcome) -> dict[str, Any]:
    if not outcome.ok or outcome.result is None:
        msg = f"bench set-up command refused: {outcome.error!r}"
        raise RuntimeError(msg)
    return outcome.result


Progress = Callable[[dict[str, Any]], None]


def generate(data_dir: Path, target: int, seed: int, progress: Progress | None = None) -> int:
    """Record at least ``target`` events into a new store in ``data_dir``; returns
    the number recorded."""
    settings = settings_for(data_dir)
    app = build_application(settings)
    clock = SimClock(START)
    app.clock = clock
    sim = Simulation(app, clock, target, seed)
    started, cpu = time.perf_counter(), time.process_time()
    last = started
    try:
        sim.network()
        sim.people()
        k = 0
        while (head := app.head()) < target:
            sim.step(k)
            k += 1
            if progress is not None and time.perf_counter() - last >= 5:
                last = time.perf_counter()
                progress({"events": head, "seconds": last - started, "simulated": str(clock.now)})
        head = app.head()
        if progress is not None:
            progress(
                {
                    "events": head,
                    "seconds": time.perf_counter() - started,
                    "cpu": time.process_time() - cpu,
                    "simulated": str(clock.now),
                    "commands": sim.counters.commands,
                    "refused": sim.counters.refused,
                    "refusals": dict(sim.counters.by_code),
                    "volunteers": len(sim.volunteers),
                    "steps": k,
                }
            )
        return head
    finally:
        app.close()


def _worker(data_dir: Path, target: int, seed: int, out: Any) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        generate(data_dir, target, seed, progress=lambda p: out.put(("progress", p)))
        out.put(("done", None))
    except BaseException:  # report any failure to the parent, which raises it
        out.put(("error", traceback.format_exc()))


def ensure_history(data_dir: Path, events: int, seed: int = 7, *, regenerate: bool = False) -> Path:
    """The data directory of a generated store of ``events`` events (seed ``seed``),
    generated in a worker process unless it is already cached."""
    path = store_dir(data_dir, events, seed)
    if regenerate and path.exists():
        shutil.rmtree(path)
    if path.exists():
        return path
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_worker, args=(partial, events, seed, queue), daemon=True)
    worker.start()
    print(f"generating {events:,} events (seed {seed}) through execute_batch -> {path}")
    final: dict[str, Any] = {}
    while True:
        kind, payload = queue.get()
        if kind == "error":
            worker.join()
            msg = f"history generation failed:\n{payload}"
            raise RuntimeError(msg)
        if kind == "done":
            break
        final = payload
        rate = payload["events"] / payload["seconds"]
        left = (events - payload["events"]) / rate if rate else 0.0
        print(
            f"  {payload['events']:>10,} events  {rate:>7,.0f} events/s"
            f"  simulated {payload['simulated'][:10]}  ~{left:,.0f} s left",
            flush=True,
        )
    worker.join()
    partial.rename(path)
    print(
        f"generated {final['events']:,} events in {final['seconds']:.1f} s"
        f" ({final['events'] / final['seconds']:,.0f} events/s; CPU {final['cpu']:.1f} s,"
        f" {final['events'] / final['cpu']:,.0f} events/s): {final['volunteers']:,}"
        f" volunteers, {final['steps']:,} steps, {final['commands']:,} commands"
        f" ({final['refused']} refused: {final['refusals']})",
        flush=True,
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    print(ensure_history(args.data_dir, args.events, args.seed, regenerate=args.regenerate))


if __name__ == "__main__":
    main()
