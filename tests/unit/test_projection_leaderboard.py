"""The leaderboard: ranks, ties, scopes, periods, a volunteer's own rank."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.activities import Activity
from domain.base import acting_as
from domain.passbook import AwardKind
from projections import leaderboard
from projections.leaderboard import LeaderboardProjection
from projections.store import ViewStore
from projections.stream import StreamRecord
from tests.unit.projection_fixtures import ACTOR, T0, Scenario, envelope, uid

MARCH = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
APRIL = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    s = Scenario(tmp_path)
    yield s
    s.close()


def board(store: ViewStore, **kwargs: object) -> list[tuple[str, int, int, int]]:
    rows = leaderboard.top(store.reader(), **kwargs)  # type: ignore[arg-type]
    return [(r.name, r.rank, r.points, r.minutes) for r in rows]


def test_ranks_by_points_then_hours_with_deterministic_ties(scenario: Scenario) -> None:
    u = scenario.units
    li, wang, zhao, chen = (scenario.volunteer(u.a1, n) for n in ("李", "王", "赵", "陈"))
    activity = scenario.activity(u.a1)
    scenario.sign_up(activity, li, wang, zhao, chen)
    scenario.serve(activity, li, minutes=120, points=30)
    scenario.serve(activity, wang, minutes=180, points=30)  # same points, more minutes
    scenario.serve(activity, zhao, minutes=60, points=40)
    scenario.serve(activity, chen, minutes=180, points=30)  # ties wang on both
    runner = scenario.project(LeaderboardProjection())
    store = runner.store

    by_points = board(store, period="all")
    assert [r[0] for r in by_points][:1] == ["赵"]
    tied = sorted([(uid(wang), "王"), (uid(chen), "陈")])  # equal: volunteer id decides
    assert [r[0] for r in by_points[1:3]] == [name for _, name in tied]
    assert by_points[3][0] == "李"
    assert [r[1] for r in by_points] == [1, 2, 3, 4]

    by_hours = board(store, by="hours", period="all")
    assert [r[0] for r in by_hours] == [tied[0][1], tied[1][1], "李", "赵"]
    entry = leaderboard.top(store.reader(), by="hours", period="all", limit=1)[0]
    assert (entry.minutes, entry.hours, entry.volunteer_id) == (180, 3.0, tied[0][0])

    assert board(store, period="all", limit=2, offset=2) == by_points[2:]


def test_scopes_follow_the_home_lineage(scenario: Scenario) -> None:
    u = scenario.units
    a1 = scenario.volunteer(u.a1, "甲")
    a2 = scenario.volunteer(u.a2, "乙")
    b1 = scenario.volunteer(u.b1, "丙")
    for v, points in ((a1, 10), (a2, 20), (b1, 30)):
        scenario.award(v, points, MARCH)
    store = scenario.project(LeaderboardProjection()).store

    def names(unit_id: str | None) -> list[str]:
        return [r[0] for r in board(store, period="all", unit_id=unit_id)]

    assert names(None) == ["丙", "乙", "甲"]
    assert names(uid(u.center)) == ["丙", "乙", "甲"]
    assert names(uid(u.a)) == ["乙", "甲"]
    assert names(uid(u.a1)) == ["甲"]
    assert names(uid(u.b)) == ["丙"]
    assert names("00000000-0000-0000-0000-000000000000") == []

    conn = store.reader()
    rank, row = leaderboard.rank_of(conn, uid(a1), period="all", unit_id=uid(u.a)) or (0, None)
    assert (rank, row and row.points) == (2, 10)
    assert leaderboard.rank_of(conn, uid(a1), period="all")[0] == 3  # type: ignore[index]
    assert leaderboard.rank_of(conn, uid(a1), period="all", unit_id=uid(u.b)) is None


def test_periods_use_the_award_time_in_the_networks_timezone(scenario: Scenario) -> None:
    u = scenario.units
    early, late = scenario.volunteer(u.a1, "早"), scenario.volunteer(u.a1, "晚")
    scenario.award(early, 50, MARCH)
    scenario.award(late, 20, APRIL)
    # 2026-03-31 16:30 UTC is already April 1st in Shanghai
    scenario.award(late, 5, datetime(2026, 3, 31, 16, 30, tzinfo=UTC))
    scenario.award(early, 7, datetime(2025, 12, 31, 15, 0, tzinfo=UTC))  # 2025-12-31 23:00
    store = scenario.project(LeaderboardProjection()).store

    assert board(store, period="month", period_key="2026-03") == [("早", 1, 50, 0)]
    assert board(store, period="month", period_key="2026-04") == [("晚", 1, 25, 0)]
    assert board(store, period="quarter", period_key="2026-Q2") == [("晚", 1, 25, 0)]
    assert board(store, period="year", period_key="2026") == [("早", 1, 50, 0), ("晚", 2, 25, 0)]
    assert board(store, period="year", period_key="2025") == [("早", 1, 7, 0)]
    assert board(store, period="week", period_key="2026-W11") == [("早", 1, 50, 0)]  # 10 March
    assert board(store, period="all") == [("早", 1, 57, 0), ("晚", 2, 25, 0)]
    # the current period by default, in the view's timezone
    assert board(store, period="month", now=datetime(2026, 4, 30, 17, 0, tzinfo=UTC)) == []
    assert board(store, period="month", now=datetime(2026, 4, 30, 15, 0, tzinfo=UTC)) == [
        ("晚", 1, 25, 0)
    ]
    with pytest.raises(ValueError, match="not a month key"):
        board(store, period="month", period_key="2026-Q1")


def test_service_hours_count_when_confirmed(scenario: Scenario) -> None:
    u = scenario.units
    v = scenario.volunteer(u.a1, "志愿者")
    activity = scenario.activity(u.a1)
    scenario.sign_up(activity, v)
    runner = scenario.project(LeaderboardProjection())
    # confirmation is dated by its recording time: make one in late March
    confirmed = envelope(
        Activity.ServiceConfirmed,
        position=runner.position + 1,
        aggregate_id=activity.id,
        payload={"volunteer_id": uid(v), "minutes": 90, "people_served": 2},
        recorded_at=datetime(2026, 3, 20, 8, 0, tzinfo=UTC),
    )
    runner.apply_records([StreamRecord.of(0, confirmed.position, confirmed)])
    assert board(runner.store, by="hours", period="month", period_key="2026-03") == [
        ("志愿者", 1, 0, 90)
    ]
    assert board(runner.store, by="hours", period="month", period_key="2026-04") == []


def test_deductions_subtract_but_spending_and_expiry_do_not(scenario: Scenario) -> None:
    u = scenario.units
    v = scenario.volunteer(u.a1, "志愿者")
    scenario.award(v, 40, MARCH)
    scenario.award(v, 5, MARCH + timedelta(days=1), kind=AwardKind.ADJUSTMENT)
    scenario.deduct(v, 3, MARCH + timedelta(days=2))
    reward = scenario.reward(u.a, cost=10)
    redemption = scenario.redeem(v, reward, quantity=2)
    scenario.fulfil(redemption)
    store = scenario.project(LeaderboardProjection()).store
    assert board(store, period="all") == [("志愿者", 1, 42, 0)]
    assert scenario.passbooks[v.id].balance == 22


def test_names_follow_profile_updates(scenario: Scenario) -> None:
    v = scenario.volunteer(scenario.units.a1, "旧名")
    scenario.award(v, 10, MARCH)
    with acting_as(ACTOR):
        v.update_profile(name="新名", phone=None, reason="改名")
    scenario.app.save(v)
    store = scenario.project(LeaderboardProjection()).store
    assert board(store, period="all") == [("新名", 1, 10, 0)]


def test_volunteers_without_points_in_the_period_have_no_rank(scenario: Scenario) -> None:
    v = scenario.volunteer(scenario.units.a1, "志愿者")
    scenario.award(v, 10, MARCH)
    conn = scenario.project(LeaderboardProjection()).store.reader()
    assert leaderboard.rank_of(conn, uid(v), period="month", period_key="2026-04") is None
    found = leaderboard.rank_of(conn, uid(v), by="hours", period="month", period_key="2026-03")
    assert found is not None
    assert found[0] == 1
    assert found[1].points == 10


def test_a_view_refuses_a_second_timezone(scenario: Scenario) -> None:
    scenario.award(scenario.volunteer(scenario.units.a1, "志愿者"), 10, T0)
    runner = scenario.project(LeaderboardProjection())
    with pytest.raises(ValueError, match="Asia/Shanghai"):
        scenario.runner(LeaderboardProjection(timezone="UTC"), runner.store)
