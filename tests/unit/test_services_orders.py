"""Service-layer scenarios for teams and the order loop (SQLite and PostgreSQL):
authorisation by subtree, completion awarding points atomically and once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.errors import ConflictError, RuleViolationError
from domain.passbook import Passbook
from services import commands as c
from services.application import BatchItem, CivicApplication
from services.principals import SYSTEM, ForbiddenError, Principal, Role
from tests.unit.test_services import NOW, _network, _volunteer, app  # noqa: F401 - fixture


def _loop_setup(app: CivicApplication) -> dict[str, UUID]:  # noqa: F811 - the fixture
    ids = _network(app)
    ids["leader"] = _volunteer(app, ids["s1"], 0)
    ids["member"] = _volunteer(app, ids["s1"], 1)
    ids["outsider"] = _volunteer(app, ids["s2"], 2)
    ids["team"] = UUID(
        app.execute(
            c.FormTeam(unit_id=ids["s1"], name="助老服务队", kind="team", leader_id=ids["leader"]),
            SYSTEM,
        ).result["team_id"]
    )
    app.execute(c.JoinTeam(team_id=ids["team"], volunteer_id=ids["member"]), SYSTEM)
    ids["item"] = UUID(
        app.execute(
            c.AddMenuItem(
                unit_id=ids["institute"],
                category="elderly_disabled",
                title="上门理发",
                points_per_hour=10,
            ),
            SYSTEM,
        ).result["item_id"]
    )
    ids["order"] = UUID(
        app.execute(
            c.PlaceOrder(
                menu_item_id=ids["item"],
                channel="resident",
                resident_ref="wx-1",
                resident_name="刘奶奶",
            ),
            SYSTEM,
        ).result["order_id"]
    )
    return ids


def _balance(app: CivicApplication, volunteer: UUID) -> int:  # noqa: F811
    passbook: Passbook = app.repository.get(Passbook.create_id(volunteer))
    assert isinstance(passbook, Passbook)
    return passbook.balance


def test_completion_awards_each_volunteer_once_in_the_same_transaction(
    app: CivicApplication,  # noqa: F811
) -> None:
    ids = _loop_setup(app)
    station_admin = Principal("k1", "station", Role.UNIT_ADMIN, ids["s1"])
    institute_admin = Principal("k2", "institute", Role.UNIT_ADMIN, ids["institute"])
    app.execute(c.ApproveOrder(order_id=ids["order"]), institute_admin)
    app.execute(c.PassOrderDown(order_id=ids["order"], unit_id=ids["s1"]), institute_admin)
    app.execute(c.DispatchOrder(order_id=ids["order"], team_id=ids["team"]), station_admin)
    app.execute(c.AcceptOrder(order_id=ids["order"], team_id=ids["team"]), station_admin)
    app.clock = lambda: NOW + timedelta(hours=3)
    complete = c.CompleteOrder(
        order_id=ids["order"],
        team_id=ids["team"],
        services=[
            c.ServiceLine(volunteer_id=ids["leader"], hours=Decimal(2)),
            c.ServiceLine(volunteer_id=ids["member"], hours=Decimal("1.5")),
        ],
        people_served=1,
    )
    head = app.head()
    done = app.execute(complete, station_admin, idempotency_key="complete-1")
    # organizer-entered hours: 2 h x 10 x 4/5 = 16, 1.5 h x 10 x 4/5 = 12
    assert [a["points"] for a in done.result["awards"]] == [16, 12]
    assert app.head() - head == 3  # the order's Completed and two PointsAwarded, one write
    assert (_balance(app, ids["leader"]), _balance(app, ids["member"])) == (16, 12)
    replay = app.execute(complete, station_admin, idempotency_key="complete-1")
    assert replay.replayed and replay.result == done.result
    with pytest.raises(ConflictError) as err:
        app.execute(complete, station_admin)
    assert err.value.code == "already-completed"
    assert (_balance(app, ids["leader"]), _balance(app, ids["member"])) == (16, 12)
    app.execute(
        c.RateOrder(order_id=ids["order"], stars=5, comment="好", resident_ref="wx-1"), SYSTEM
    )
    with pytest.raises(ForbiddenError):  # a service key does not showcase
        app.execute(
            c.ShowcaseOrder(order_id=ids["order"], story="故事"),
            Principal("k3", "app", Role.SERVICE, ids["institute"]),
        )
    app.execute(c.ShowcaseOrder(order_id=ids["order"], story="故事"), institute_admin)


def test_a_refused_completion_leaves_no_trace(app: CivicApplication) -> None:  # noqa: F811
    ids = _loop_setup(app)
    for cmd in (
        c.ApproveOrder(order_id=ids["order"]),
        c.PassOrderDown(order_id=ids["order"], unit_id=ids["s1"]),
        c.DispatchOrder(order_id=ids["order"], team_id=ids["team"]),
        c.AcceptOrder(order_id=ids["order"], team_id=ids["team"]),
    ):
        app.execute(cmd, SYSTEM)
    app.clock = lambda: NOW + timedelta(hours=3)
    head = app.head()
    bad = c.CompleteOrder(
        order_id=ids["order"],
        team_id=ids["team"],
        services=[
            c.ServiceLine(volunteer_id=ids["leader"], hours=Decimal(1)),
            c.ServiceLine(volunteer_id=ids["outsider"], hours=Decimal(1)),
        ],
    )
    with pytest.raises(ConflictError) as err:
        app.execute(bad, SYSTEM)
    assert err.value.code == "not-a-member"
    assert app.head() == head
    assert _balance(app, ids["leader"]) == 0
    good = c.CompleteOrder(
        order_id=ids["order"],
        team_id=ids["team"],
        services=[c.ServiceLine(volunteer_id=ids["leader"], hours=Decimal(1))],
    )
    outcomes = app.execute_batch([BatchItem(good), BatchItem(good)], SYSTEM)
    assert [o.ok for o in outcomes] == [True, False]
    assert _balance(app, ids["leader"]) == 8


def test_dispatching_outside_ones_subtree_is_forbidden(app: CivicApplication) -> None:  # noqa: F811
    ids = _loop_setup(app)
    station_admin = Principal("k1", "station", Role.UNIT_ADMIN, ids["s1"])
    other_station = Principal("k2", "other", Role.UNIT_ADMIN, ids["s2"])
    with pytest.raises(ForbiddenError):  # the institute handles it: above the station
        app.execute(c.ApproveOrder(order_id=ids["order"]), station_admin)
    app.execute(c.ApproveOrder(order_id=ids["order"]), SYSTEM)
    with pytest.raises(ForbiddenError):
        app.execute(c.DispatchOrder(order_id=ids["order"], team_id=ids["team"]), station_admin)
    app.execute(c.PassOrderDown(order_id=ids["order"], unit_id=ids["s1"]), SYSTEM)
    with pytest.raises(ForbiddenError):
        app.execute(c.DispatchOrder(order_id=ids["order"], team_id=ids["team"]), other_station)
    with pytest.raises(ForbiddenError):  # auditors never write
        app.execute(
            c.DispatchOrder(order_id=ids["order"], team_id=ids["team"]),
            Principal("k4", "audit", Role.AUDITOR),
        )
    with pytest.raises(RuleViolationError) as err:
        app.execute(c.PassOrderDown(order_id=ids["order"], unit_id=ids["s2"]), SYSTEM)
    assert err.value.code == "not-a-lower-unit"
    app.execute(c.DispatchOrder(order_id=ids["order"], team_id=ids["team"]), station_admin)
    with pytest.raises(ForbiddenError):  # another station's key cannot answer for the team
        app.execute(c.AcceptOrder(order_id=ids["order"], team_id=ids["team"]), other_station)


def test_staff_orders_and_first_come_takes(app: CivicApplication) -> None:  # noqa: F811
    ids = _loop_setup(app)
    staff = app.execute(c.PlaceOrder(menu_item_id=ids["item"], details="电话预约"), SYSTEM).result
    assert staff["status"] == "placed"
    order = UUID(staff["order_id"])
    app.execute(c.ApproveOrder(order_id=order, open_to_teams=True), SYSTEM)
    station_admin = Principal("k1", "station", Role.UNIT_ADMIN, ids["s1"])
    taken = app.execute(c.TakeOrder(order_id=order, team_id=ids["team"]), station_admin)
    assert taken.result["status"] == "in_progress"
    with pytest.raises(ConflictError) as err:  # the first order was never completed
        app.execute(c.RateOrder(order_id=ids["order"], stars=5, resident_ref="wx-1"), SYSTEM)
    assert err.value.code == "not-completed"


def test_an_activity_assigned_to_a_team(app: CivicApplication) -> None:  # noqa: F811
    ids = _loop_setup(app)
    activity = UUID(
        app.execute(
            c.PublishActivity(
                unit_id=ids["s1"],
                title="义诊",
                category="health",
                starts_at=NOW + timedelta(hours=2),
                ends_at=NOW + timedelta(hours=4),
                location="站",
                capacity=5,
                points_per_hour=10,
            ),
            SYSTEM,
        ).result["activity_id"]
    )
    done = app.execute(c.AssignActivityToTeam(activity_id=activity, team_id=ids["team"]), SYSTEM)
    assert done.result == {"activity_id": str(activity), "team_id": str(ids["team"])}
    app.execute(c.DisbandTeam(team_id=ids["team"], reason="x"), SYSTEM)
    with pytest.raises(ConflictError) as err:
        app.execute(c.JoinTeam(team_id=ids["team"], volunteer_id=ids["outsider"]), SYSTEM)
    assert err.value.code == "team-disbanded"
