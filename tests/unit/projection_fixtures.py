"""A small practice network recorded by the library's SQLite application, and helpers
to feed its events through a projection runner (real components, no mocks).

The network::

    center C
    ├── institute A ── stations A1, A2
    └── institute B ── station B1
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from domain.activities import Activity
from domain.base import acting_as
from domain.categories import Category
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryPolicy
from domain.redemptions import Redemption, redeem
from domain.rewards import Reward
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import Volunteer
from infra.embedded_stream import EmbeddedStream
from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import StreamRecord

ACTOR = "key:test"
# 2026-03-02 09:00 in Shanghai (a Monday of ISO week 10)
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
NEVER = ExpiryPolicy()


class EventsApp(Application[UUID]):
    """The library's application: records the scenario's events."""


@dataclass
class Units:
    center: PracticeUnit
    a: PracticeUnit
    b: PracticeUnit
    a1: PracticeUnit
    a2: PracticeUnit
    b1: PracticeUnit


def uid(aggregate: Any) -> str:
    return str(aggregate.id)


class Scenario:
    """Commands on real aggregates, saved by the library; every event acted by ACTOR."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.app = EventsApp(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(tmp_path / "events.db"),
            }
        )
        self.stream = EmbeddedStream(self.app.recorder)
        self.passbooks: dict[UUID, Passbook] = {}
        self._views = 0
        with acting_as(ACTOR):
            center = PracticeUnit.open(code="C", name="区中心", tier=UnitTier.CENTER, parent=None)
            a = PracticeUnit.open(code="A", name="街道所A", tier=UnitTier.INSTITUTE, parent=center)
            b = PracticeUnit.open(code="B", name="街道所B", tier=UnitTier.INSTITUTE, parent=center)
            a1 = PracticeUnit.open(code="A1", name="站A1", tier=UnitTier.STATION, parent=a)
            a2 = PracticeUnit.open(code="A2", name="站A2", tier=UnitTier.STATION, parent=a)
            b1 = PracticeUnit.open(code="B1", name="站B1", tier=UnitTier.STATION, parent=b)
        self.units = Units(center, a, b, a1, a2, b1)
        self.app.save(center, a, b, a1, a2, b1)

    def close(self) -> None:
        self.app.close()

    # -- commands ------------------------------------------------------------------

    def volunteer(self, station: PracticeUnit, name: str, phone: str = "13800138000") -> Volunteer:
        with acting_as(ACTOR):
            v = Volunteer.register(
                document_digest=f"digest-{name}",
                document_masked="110***********002X",
                home_station=station,
                name=name,
                phone=phone,
            )
            passbook = Passbook.open_for(v.id, v.home_path)
        self.passbooks[v.id] = passbook
        self.app.save(v, passbook)
        return v

    def activity(
        self,
        unit: PracticeUnit,
        *,
        starts_at: datetime = T0,
        capacity: int = 10,
        points_per_hour: int = 10,
    ) -> Activity:
        with acting_as(ACTOR):
            activity = Activity.publish(
                unit=unit,
                title="关爱空巢老人",
                category=Category.ELDERLY_DISABLED,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(hours=4),
                location="社区服务中心",
                capacity=capacity,
                points_per_hour=points_per_hour,
            )
        self.app.save(activity)
        return activity

    def sign_up(self, activity: Activity, *volunteers: Volunteer) -> None:
        with acting_as(ACTOR):
            for v in volunteers:
                activity.sign_up(v, activity.starts_at - timedelta(days=1))
        self.app.save(activity)

    def serve(
        self,
        activity: Activity,
        volunteer: Volunteer,
        *,
        minutes: int,
        people: int = 0,
        points: int | None = None,
        awarded_at: datetime | None = None,
        check_in: bool = True,
    ) -> None:
        """Check in and out (or have the organizer enter hours), confirm, award."""
        with acting_as(ACTOR):
            if check_in:
                activity.check_in(volunteer.id, activity.starts_at)
                activity.check_out(volunteer.id, activity.starts_at + timedelta(minutes=minutes))
            record = activity.confirm_service(
                volunteer.id,
                minutes=None if check_in else minutes,
                people_served=people,
                now=activity.ends_at,
            )
            passbook = self.passbooks[volunteer.id]
            passbook.award(
                points=points if points is not None else minutes * activity.points_per_hour // 60,
                kind=AwardKind.SERVICE,
                source_id=record.confirmation_id,
                reason="服务积分",
                now=awarded_at or activity.ends_at,
                policy=NEVER,
                activity_id=activity.id,
                minutes=minutes,
            )
        self.app.save(activity, passbook)

    def award(
        self, volunteer: Volunteer, points: int, at: datetime, kind: str = AwardKind.MANUAL
    ) -> None:
        passbook = self.passbooks[volunteer.id]
        with acting_as(ACTOR):
            passbook.award(
                points=points, kind=kind, source_id=uuid4(), reason="文明户", now=at, policy=NEVER
            )
        self.app.save(passbook)

    def deduct(self, volunteer: Volunteer, points: int, at: datetime) -> None:
        passbook = self.passbooks[volunteer.id]
        with acting_as(ACTOR):
            passbook.deduct(points=points, reason="更正", adjustment_id=uuid4(), now=at)
        self.app.save(passbook)

    def hold(self, activity: Activity) -> None:
        """Close the activity after it took place (it counts as held)."""
        with acting_as(ACTOR):
            activity.close(activity.ends_at)
        self.app.save(activity)

    def reward(self, unit: PracticeUnit, cost: int = 10) -> Reward:
        with acting_as(ACTOR):
            reward = Reward.list_at(
                unit=unit, name="环保袋", description="", cost_points=cost, stock=100
            )
        self.app.save(reward)
        return reward

    def redeem(
        self, volunteer: Volunteer, reward: Reward, quantity: int = 1, actor: str = ACTOR
    ) -> Redemption:
        passbook = self.passbooks[volunteer.id]
        with acting_as(actor):
            redemption = redeem(
                redemption_id=uuid4(),
                volunteer=volunteer,
                passbook=passbook,
                reward=reward,
                quantity=quantity,
                now=T0 + timedelta(days=30),
            )
        self.app.save(passbook, reward, redemption)
        return redemption

    def cancel_redemption(
        self, redemption: Redemption, volunteer: Volunteer, reward: Reward
    ) -> None:
        passbook = self.passbooks[volunteer.id]
        with acting_as(ACTOR):
            redemption.cancel("不要了", passbook, reward)
        self.app.save(passbook, reward, redemption)

    def fulfil(self, redemption: Redemption) -> None:
        with acting_as(ACTOR):
            redemption.fulfil("已领取")
        self.app.save(redemption)

    # -- projecting ----------------------------------------------------------------

    def runner(self, projection: Projection, store: ViewStore | None = None) -> ProjectionRunner:
        if store is None:
            self._views += 1
            store = ViewStore(self.tmp_path / f"{projection.name}-{self._views}.sqlite")
        return ProjectionRunner(projection, store, self.stream, retry_backoff=0.0)

    def project(self, projection: Projection) -> ProjectionRunner:
        runner = self.runner(projection)
        runner.catch_up(timeout=0)
        return runner

    def records(self, after: int = 0) -> list[StreamRecord]:
        return self.stream.read(after, 1_000_000)


def envelope(
    event_class: type,
    *,
    position: int,
    aggregate_id: UUID | None = None,
    payload: dict[str, Any],
    recorded_at: datetime = T0,
    actor: str = ACTOR,
    aggregate_version: int = 2,
    topic: str | None = None,
) -> EventEnvelope:
    """A hand-made envelope (e.g. with a chosen recording time, or a malformed payload)."""
    return EventEnvelope(
        event_id=uuid4(),
        position=position,
        type=topic or get_topic(event_class),
        version=1,
        aggregate_id=aggregate_id or uuid4(),
        aggregate_version=aggregate_version,
        recorded_at=recorded_at,
        actor=actor,
        payload=payload,
    )


def renumbered(records: list[StreamRecord], start: int = 1) -> Iterator[StreamRecord]:
    """The records at consecutive offsets and positions from ``start``."""
    for n, r in enumerate(records, start):
        assert r.event is not None
        yield StreamRecord.of(r.partition, n, r.event.model_copy(update={"position": n}))


def dump(store: ViewStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a view (for before/after comparisons)."""
    conn = sqlite3.connect(store.path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        rows = {}
        for t in tables:
            query = f'SELECT * FROM "{t}"'  # noqa: S608 - table names from the schema
            rows[t] = sorted(conn.execute(query).fetchall(), key=repr)
        return rows
    finally:
        conn.close()


def a_little_of_everything(tmp_path: Path) -> Scenario:
    """Volunteers, service, awards, redemptions (fulfilled and cancelled), a deduction."""
    s = Scenario(tmp_path)
    u = s.units
    p, q = s.volunteer(u.a1, "p"), s.volunteer(u.b1, "q")
    activity = s.activity(u.a1)
    s.sign_up(activity, p, q)
    s.serve(activity, p, minutes=60, people=2)
    s.serve(activity, q, minutes=120, people=1)
    s.hold(activity)
    reward = s.reward(u.a, cost=5)
    s.fulfil(s.redeem(p, reward))
    s.cancel_redemption(s.redeem(q, reward), q, reward)
    s.deduct(q, 2, T0 + timedelta(days=40))
    return s
