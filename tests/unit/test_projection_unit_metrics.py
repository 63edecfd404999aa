"""Unit metrics: roll-up through the hierarchy, distinct counts, points, redemptions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.activities import Activity
from domain.base import acting_as
from domain.volunteers import Volunteer
from projections import unit_metrics
from projections.runner import ProjectionRunner
from projections.stream import StreamRecord
from projections.unit_metrics import COUNTERS, UnitMetricsProjection
from tests.unit.projection_fixtures import ACTOR, Scenario, envelope, uid

ADDITIVE = (*COUNTERS, "active_volunteers", "service_minutes")


@dataclass
class Network:
    scenario: Scenario
    runner: ProjectionRunner
    p: Volunteer  # home A1, serves at A1, A2 and B1
    q: Volunteer  # home A2, serves at A1 and at institute A itself
    r: Volunteer  # home B1, serves at B1

    def metrics(self, unit: object, granularity: str = "all", key: str = "all") -> dict[str, Any]:
        report = unit_metrics.metrics(
            self.runner.store.reader(),
            uid(unit),
            granularity,  # type: ignore[arg-type]
            key,
        )
        return report.model_dump()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    s = Scenario(tmp_path)
    u = s.units
    p, q, r = s.volunteer(u.a1, "p"), s.volunteer(u.a2, "q"), s.volunteer(u.b1, "r")
    at_a1, at_a2, at_b1, at_a = (s.activity(unit) for unit in (u.a1, u.a2, u.b1, u.a))
    s.sign_up(at_a1, p, q)
    s.serve(at_a1, p, minutes=60, people=3)
    s.serve(at_a1, q, minutes=120, people=4)
    s.sign_up(at_a2, p)
    s.serve(at_a2, p, minutes=30, check_in=False)
    s.sign_up(at_b1, r, p)
    s.serve(at_b1, r, minutes=90, people=5)
    s.serve(at_b1, p, minutes=60)
    s.sign_up(at_a, q)
    s.serve(at_a, q, minutes=45)
    for activity in (at_a1, at_a2, at_b1, at_a):
        s.hold(activity)
    # a full activity: q waits, then takes p's place; another is cancelled
    full = s.activity(u.a1, capacity=1)
    s.sign_up(full, p, q)
    with acting_as(ACTOR):
        full.cancel_signup(p.id, "有事", full.starts_at - timedelta(days=1))
    s.app.save(full)
    cancelled = s.activity(u.b1)
    with acting_as(ACTOR):
        cancelled.cancel("下雨")
    s.app.save(cancelled)
    # the gift shop is the institute A's: p redeems and collects; r redeems and cancels
    reward = s.reward(u.a, cost=3)
    s.fulfil(s.redeem(p, reward))
    s.cancel_redemption(s.redeem(r, reward), r, reward)
    runner = s.project(UnitMetricsProjection())
    yield Network(s, runner, p, q, r)
    s.close()


def test_a_center_is_the_sum_of_its_institutes(network: Network) -> None:
    u = network.scenario.units
    center, a, b = (network.metrics(x) for x in (u.center, u.a, u.b))
    for figure in ADDITIVE:
        assert center[figure] == a[figure] + b[figure], figure
    a1, a2 = network.metrics(u.a1), network.metrics(u.a2)
    # the institute's own activity counts for it (and its center), not for its stations
    assert a["activities_published"] == a1["activities_published"] + a2["activities_published"] + 1
    assert center["activities_published"] == 6
    assert center["activities_held"] == 4
    assert center["activities_cancelled"] == 1


def test_activity_figures(network: Network) -> None:
    u = network.scenario.units
    a1 = network.metrics(u.a1)
    assert a1["activities_published"] == 2
    assert a1["activities_held"] == 1
    assert a1["signups"] == 2 + 1 + 1  # two sign-ups, p at the full one, q promoted
    assert a1["waitlisted"] == 1
    assert a1["signups_cancelled"] == 1
    assert (a1["services_confirmed"], a1["service_minutes"], a1["people_served"]) == (2, 180, 7)
    assert a1["service_hours"] == 3.0
    center = network.metrics(u.center)
    assert center["service_minutes"] == 60 + 120 + 30 + 90 + 60 + 45
    assert center["service_hours"] == round(405 / 60, 2)
    assert center["people_served"] == 12


def test_distinct_participants_and_active_volunteers(network: Network) -> None:
    u = network.scenario.units
    figures = {name: network.metrics(unit) for name, unit in vars(u).items()}
    # participants: distinct volunteers served at the unit's (subtree's) activities
    assert {k: f["participants"] for k, f in figures.items()} == {
        "center": 3,  # p served in both institutes: counted once
        "a": 2,
        "b": 2,
        "a1": 2,
        "a2": 1,
        "b1": 2,
    }
    # active volunteers: distinct volunteers living in the subtree who served anywhere
    assert {k: f["active_volunteers"] for k, f in figures.items()} == {
        "center": 3,
        "a": 2,
        "b": 1,
        "a1": 1,
        "a2": 1,
        "b1": 1,
    }
    assert {k: f["volunteers_registered"] for k, f in figures.items()} == {
        "center": 3,
        "a": 2,
        "b": 1,
        "a1": 1,
        "a2": 1,
        "b1": 1,
    }


def test_points_follow_the_home_and_redemptions_the_reward(network: Network) -> None:
    u = network.scenario.units
    a1, b1, a, b = (network.metrics(x) for x in (u.a1, u.b1, u.a, u.b))
    # p (home A1) earned 10 + 5 + 10 points at A1, A2 and B1: all counted at A1
    assert a1["points_awarded"] == 10 + 5 + 10
    assert b1["points_awarded"] == 15  # r's 90 minutes at 10 points an hour
    # both redeemed 3 points; r's was cancelled and refunded
    assert (a1["points_redeemed"], b1["points_redeemed"]) == (3, 0)
    assert a["redemptions_requested"] == 2
    assert (a["redemptions_fulfilled"], a["redemptions_cancelled"]) == (1, 1)
    assert b["redemptions_requested"] == 0
    assert network.metrics(u.center)["redemptions_requested"] == 2


def _record(runner: ProjectionRunner, event: object) -> int:
    position = runner.position + 1
    env = envelope(position=position, **event)  # type: ignore[arg-type]
    return runner.apply_records([StreamRecord.of(0, position, env)])


def test_periods_by_business_time_and_series(network: Network) -> None:
    s, runner, p = network.scenario, network.runner, network.p
    u = s.units
    march_31_late = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)  # April 1st in Shanghai
    s.award(p, 7, datetime(2026, 2, 10, 2, 0, tzinfo=UTC))
    s.award(p, 11, march_31_late)
    s.award(p, 13, datetime(2026, 3, 31, 15, 0, tzinfo=UTC))  # 23:00, still March
    runner.catch_up(timeout=0)
    months = unit_metrics.series(runner.store.reader(), uid(u.a1), "month", "2026-01", "2026-04")
    assert [(m.period_key, m.points_awarded) for m in months] == [
        ("2026-01", 0),
        ("2026-02", 7),
        ("2026-03", 25 + 13),  # the fixture's service awards are dated 2 March
        ("2026-04", 11),
    ]
    days = unit_metrics.series(
        runner.store.reader(), uid(u.center), "day", "2026-03-31", "2026-04-01"
    )
    assert [d.points_awarded for d in days] == [13, 11]
    quarter = network.metrics(u.a, "quarter", "2026-Q1")
    assert quarter["points_awarded"] == (25 + 7 + 13) + (20 + 7)  # p's and q's

    # service recorded on two days of one month: one participant that month
    at_b1 = s.activity(u.b1)
    runner.catch_up(timeout=0)
    for day in (3, 20):
        _record(
            runner,
            {
                "event_class": Activity.ServiceConfirmed,
                "aggregate_id": at_b1.id,
                "payload": {"volunteer_id": uid(p), "minutes": 30, "people_served": 1},
                "recorded_at": datetime(2026, 5, day, 4, 0, tzinfo=UTC),
            },
        )
    may = network.metrics(u.b1, "month", "2026-05")
    assert (may["participants"], may["services_confirmed"], may["service_minutes"]) == (1, 2, 60)
    assert network.metrics(u.b1, "day", "2026-05-20")["participants"] == 1
    assert network.metrics(u.a, "month", "2026-05")["active_volunteers"] == 1  # p lives in A
    assert network.metrics(u.b, "month", "2026-05")["active_volunteers"] == 0
    assert network.metrics(u.center, "year", "2026")["participants"] == 3


def test_unknown_units_and_bad_keys(network: Network) -> None:
    conn = network.runner.store.reader()
    empty = unit_metrics.metrics(conn, "00000000-0000-0000-0000-000000000000", "all", "all")
    assert empty.activities_published == 0
    assert empty.participants == 0
    with pytest.raises(ValueError, match="not a month key"):
        unit_metrics.metrics(conn, uid(network.scenario.units.a), "month", "2026-3")
    with pytest.raises(ValueError, match="kept per"):
        unit_metrics.metrics(conn, uid(network.scenario.units.a), "week", "2026-W01")
    now = datetime(2026, 5, 31, 17, 0, tzinfo=UTC)  # June 1st in Shanghai
    assert (
        unit_metrics.metrics(conn, uid(network.scenario.units.a), "month", now=now).period_key
        == "2026-06"
    )
