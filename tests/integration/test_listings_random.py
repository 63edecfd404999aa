"""The listings read model against the aggregates, after random sign-ups and
cancellations (with the waitlist promoting), redemptions and their cancellations,
restocks and fulfilments: every activity's enrolled and waitlisted counts, every
volunteer's sign-ups, every gift's stock and every redemption's status equal what
the event store's aggregates hold."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.activities import Activity
from domain.errors import DomainError
from domain.redemptions import Redemption
from domain.rewards import Reward
from projections import listings
from services import commands as c
from services.application import CivicApplication
from services.bootstrap import Platform
from services.principals import SYSTEM
from services.queries import load
from tests.conftest import open_network, register_volunteer

STEPS = 400


@dataclass
class Walk:
    app: CivicApplication
    rng: random.Random
    volunteers: list[UUID]
    activities: list[UUID] = field(default_factory=list)
    rewards: list[UUID] = field(default_factory=list)
    redemptions: list[UUID] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # waitlisted, promoted, refused

    def next_command(self) -> c.Command:
        rng, choice = self.rng, self.rng.random()
        if choice < 0.55:
            activity, volunteer = rng.choice(self.activities), rng.choice(self.volunteers)
            signed = volunteer in load(self.app, Activity, activity).attendance
            kind = c.CancelSignup if signed and rng.random() < 0.7 else c.SignUp
            return kind(activity_id=activity, volunteer_id=volunteer)
        if choice < 0.75 or not self.redemptions:
            return c.Redeem(
                volunteer_id=rng.choice(self.volunteers), reward_id=rng.choice(self.rewards)
            )
        if choice < 0.85:
            return c.CancelRedemption(redemption_id=rng.choice(self.redemptions), reason="x")
        if choice < 0.92:
            return c.FulfilRedemption(redemption_id=rng.choice(self.redemptions))
        return c.RestockReward(reward_id=rng.choice(self.rewards), quantity=rng.randint(1, 2))

    def step(self) -> None:
        command = self.next_command()
        try:
            result = self.app.execute(command, SYSTEM).result
        except DomainError:
            self.seen.add("refused")
            return
        if isinstance(command, c.Redeem):
            self.redemptions.append(UUID(result["redemption_id"]))
        if result.get("status") == "waitlisted":
            self.seen.add("waitlisted")
        if result.get("promoted_volunteer_id"):
            self.seen.add("promoted")


def set_up(app: CivicApplication, rng: random.Random) -> Walk:
    _, institute, station = open_network(app)
    walk = Walk(app, rng, [register_volunteer(app, station) for _ in range(10)])
    for volunteer in walk.volunteers:
        app.execute(c.AwardPoints(volunteer_id=volunteer, points=500, reason="seed"), SYSTEM)
    start = datetime.now(UTC) + timedelta(days=7)
    for i, unit in enumerate([station, station, institute]):
        publish = c.PublishActivity(
            unit_id=unit,
            title=f"活动 {i}",
            category="health",
            starts_at=start + timedelta(hours=i),
            ends_at=start + timedelta(hours=i + 2),
            location="社区",
            capacity=rng.randint(1, 4),
            points_per_hour=10,
        )
        walk.activities.append(UUID(app.execute(publish, SYSTEM).result["activity_id"]))
    for name in ("大米", "食用油"):
        listing = c.ListReward(unit_id=station, name=name, cost_points=5, stock=2)
        walk.rewards.append(UUID(app.execute(listing, SYSTEM).result["reward_id"]))
    return walk


def test_listings_equal_the_aggregates_after_random_commands(platform: Platform) -> None:
    app = platform.app
    walk = set_up(app, random.Random(2026))
    for _ in range(STEPS):
        walk.step()
    # end on cancellations that promote nobody: the last of a waitlist, or a place
    # with no waitlist behind it (nothing after them corrects a wrong count)
    for activity_id in walk.activities:
        activity = load(app, Activity, activity_id)
        leaving = activity.waitlist[-1:] or activity.enrolled[:1]
        for volunteer in leaving:
            app.execute(c.CancelSignup(activity_id=activity_id, volunteer_id=volunteer), SYSTEM)
    runner = platform.runners[listings.ListingsProjection.name]
    runner.catch_up()
    conn = runner.store.reader()

    listed = {UUID(a.activity_id): a for a in listings.activities(conn, None)}
    assert set(listed) == set(walk.activities)
    for activity_id, row in listed.items():
        activity = load(app, Activity, activity_id)
        expected = (len(activity.enrolled), len(activity.waitlist), activity.places_left)
        assert (row.enrolled, row.waitlisted, row.places_left) == expected, activity_id
    for volunteer in walk.volunteers:
        signed = {
            (UUID(s.activity.activity_id), s.status)
            for s in listings.signups_of(conn, str(volunteer))
        }
        held = {
            (a, attendance.status.value)
            for a in walk.activities
            if (attendance := load(app, Activity, a).attendance.get(volunteer)) is not None
        }
        assert signed == held, volunteer
    stock = {UUID(r.reward_id): r.stock for r in listings.rewards(conn, None)}
    assert stock == {r: load(app, Reward, r).stock for r in walk.rewards}
    statuses = {
        UUID(r.redemption_id): r.status for r in listings.redemptions(conn, None, limit=500)
    }
    assert statuses == {r: load(app, Redemption, r).status for r in walk.redemptions}
    # the walk went through the waitlist, promotions, refusals and every redemption status
    assert walk.seen == {"waitlisted", "promoted", "refused"}
    assert {s.value for s in statuses.values()} == {"requested", "fulfilled", "cancelled"}
