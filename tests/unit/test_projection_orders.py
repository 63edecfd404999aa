"""Teams and orders in the read models: unit metrics (attributed to the handling
unit, rolled up, ratings and time to complete, open and overdue now), the order
board, team metrics and the audit trail (no personal data)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from domain.base import acting_as
from domain.categories import Category
from domain.orders import Channel, OrderDeadlines, ServiceOrder
from domain.service_menu import MenuItem
from domain.teams import Team, TeamKind
from projections import audit_trail, order_board, team_metrics, unit_metrics
from projections.audit_trail import AuditTrailProjection
from projections.order_board import OrderBoardProjection
from projections.team_metrics import TeamMetricsProjection
from projections.unit_metrics import UnitMetricsProjection
from tests.unit.projection_fixtures import ACTOR, T0, Scenario, uid

H = timedelta(hours=1)
DEADLINES = OrderDeadlines(review=60, dispatch=60, accept=60, complete=600)


@dataclass
class Loop:
    scenario: Scenario
    team: Team
    done: ServiceOrder  # placed at institute A, passed down to A1, completed, rated 4
    waiting: ServiceOrder  # placed at A1 at T0, never reviewed


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    s = Scenario(tmp_path)
    u = s.units
    p, q = s.volunteer(u.a1, "p"), s.volunteer(u.a1, "q")
    with acting_as(ACTOR):
        team = Team.form(unit=u.a1, name="服务队", kind=TeamKind.TEAM, leader=p, now=T0)
        team.join(q, now=T0)
        at_a = MenuItem.add(
            unit=u.a, category=Category.HEALTH, title="量血压", description="", points_per_hour=10
        )
        at_a1 = MenuItem.add(
            unit=u.a1,
            category=Category.CONVENIENCE,
            title="修伞",
            description="",
            points_per_hour=10,
        )
        done = ServiceOrder.place(
            item=at_a,
            channel=Channel.RESIDENT,
            now=T0,
            resident_ref="wx-1",
            resident_name="刘奶奶",
            resident_phone="13912345678",
            address="建新东路3号",
        )
        done.approve(now=T0 + H)
        done.pass_down(u.a1, reason="就近", now=T0 + 2 * H)
        done.dispatch(team, now=T0 + 3 * H)
        done.decline(team.id, reason="忙", now=T0 + 3 * H)
        done.dispatch(team, now=T0 + 4 * H)
        done.accept(team.id, now=T0 + 4 * H)
        done.complete(team, [(p.id, 90), (q.id, 30)], people_served=2, now=T0 + 6 * H)
        done.rate(stars=4, comment="好", resident_ref="wx-1", now=T0 + 7 * H)
        waiting = ServiceOrder.place(item=at_a1, channel=Channel.STAFF, now=T0)
    s.app.save(team, at_a, at_a1, done, waiting)
    yield Loop(s, team, done, waiting)
    s.close()


def test_unit_metrics_count_orders_where_they_are_handled(loop: Loop) -> None:
    u = loop.scenario.units
    conn = loop.scenario.project(UnitMetricsProjection()).store.reader()

    def figures(unit: object) -> unit_metrics.UnitMetrics:
        return unit_metrics.metrics(conn, uid(unit), "all", deadlines=DEADLINES, now=T0 + 8 * H)

    a, a1, center, b = figures(u.a), figures(u.a1), figures(u.center), figures(u.b)
    assert (a.orders_received, a1.orders_received, center.orders_received) == (2, 1, 2)
    for f in (a, a1, center):  # completed at A1, so counted up the line
        assert (f.orders_completed, f.orders_dispatched, f.orders_declined) == (1, 2, 1)
        assert (f.order_service_minutes, f.order_people_served) == (120, 2)
        assert (f.average_rating, f.average_complete_hours) == (4.0, 6.0)
        assert (f.orders_open, f.orders_overdue) == (1, 1)  # the order waiting for review
    assert (b.orders_received, b.orders_open, b.orders_overdue) == (0, 0, 0)
    assert a1.active_volunteers == 2
    month = unit_metrics.metrics(conn, uid(u.a), "month", "2026-03", deadlines=DEADLINES)
    assert month.orders_completed == 1
    earlier = unit_metrics.metrics(conn, uid(u.a), "month", "2026-02", deadlines=DEADLINES)
    assert (earlier.orders_completed, earlier.orders_open) == (0, None)  # not the current period


def test_an_older_metrics_view_gains_the_new_counters(loop: Loop, tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE um_counters (unit_id TEXT, period TEXT, signups INTEGER, "
            "PRIMARY KEY (unit_id, period)) WITHOUT ROWID"
        )
        UnitMetricsProjection().create_tables(conn)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(um_counters)")}
    assert {"orders_received", "order_rating_sum", "order_complete_minutes"} <= columns


def test_the_order_board_lists_by_subtree_status_and_overdue(loop: Loop) -> None:
    u = loop.scenario.units
    conn = loop.scenario.project(OrderBoardProjection()).store.reader()
    now = T0 + 8 * H
    at_a1 = order_board.orders(conn, uid(u.a1), DEADLINES, now=now)
    assert [o.order_id for o in at_a1] == sorted([str(loop.done.id), str(loop.waiting.id)])
    done = order_board.orders(conn, uid(u.a), DEADLINES, status=loop.done.status, now=now)[0]
    assert (done.handling_unit_id, done.declines, done.stars, done.team_id) == (
        uid(u.a1),
        1,
        4,
        str(loop.team.id),
    )
    overdue = order_board.orders(conn, uid(u.center), DEADLINES, overdue_only=True, now=now)
    assert [(o.order_id, o.step, o.due_at) for o in overdue] == [
        (str(loop.waiting.id), "review", T0 + H)
    ]
    assert order_board.orders(conn, uid(u.b), DEADLINES, now=now) == []
    assert [m.title for m in order_board.menu(conn, uid(u.a))] == ["量血压", "修伞"]


def test_team_metrics_and_the_team_board(loop: Loop) -> None:
    u = loop.scenario.units
    conn = loop.scenario.project(TeamMetricsProjection()).store.reader()
    figures = team_metrics.team(conn, str(loop.team.id))
    assert figures is not None
    assert (figures.members, figures.members_joined) == (2, 2)
    assert (figures.orders_dispatched, figures.orders_accepted, figures.orders_declined) == (
        2,
        1,
        1,
    )
    assert (figures.orders_completed, figures.service_minutes, figures.average_rating) == (
        1,
        120,
        4.0,
    )
    assert [t.team_id for t in team_metrics.board(conn, uid(u.a))] == [str(loop.team.id)]
    assert team_metrics.board(conn, uid(u.b)) == []


def test_the_audit_trail_covers_every_order_event_without_personal_data(loop: Loop) -> None:
    u = loop.scenario.units
    conn = loop.scenario.project(AuditTrailProjection()).store.reader()
    page = audit_trail.search(conn, unit_id=uid(u.a), limit=1000)
    mine = [e for e in page.items if e.aggregate_id == str(loop.done.id)]
    assert [e.event_type for e in mine] == [
        "Placed",
        "Approved",
        "PassedDown",
        "Dispatched",
        "DeclinedByTeam",
        "Dispatched",
        "AcceptedByTeam",
        "Completed",
        "Rated",
    ]
    placed = mine[0].summary
    assert placed["title"] == "量血压"
    assert not {"resident_ref", "resident_name", "resident_phone", "address"} & set(placed)
    joined = audit_trail.search(conn, type="Team.MemberJoined").items
    assert [e.volunteer_id for e in joined] == [joined[0].volunteer_id]
