"""On a real broker: teams and an order round the whole loop reach the unit
metrics, the team metrics, the order board and the audit trail through Kafka."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from infra.kafka_stream import KafkaStream
from infra.settings import Settings
from projections import audit_trail, order_board, team_metrics, unit_metrics
from services import commands as c
from services.application import CivicApplication
from services.bootstrap import Platform
from services.principals import SYSTEM
from tests.conftest import resident_id

pytestmark = pytest.mark.kafka


def _run(app: CivicApplication, command: c.Command) -> dict[str, Any]:
    return app.execute(command, SYSTEM).result


def _loop(app: CivicApplication, now: list[datetime]) -> dict[str, str]:
    center = _run(app, c.OpenUnit(code="k", name="中心", tier="center"))["unit_id"]
    institute = _run(app, c.OpenUnit(code="k-1", name="所", tier="institute", parent_id=center))[
        "unit_id"
    ]
    station = _run(app, c.OpenUnit(code="k-1-1", name="站", tier="station", parent_id=institute))[
        "unit_id"
    ]
    leader = _run(
        app,
        c.RegisterVolunteer(
            home_station_id=station, name="王", phone="13800000000", id_number=resident_id()
        ),
    )["volunteer_id"]
    team = _run(app, c.FormTeam(unit_id=station, name="服务队", kind="team", leader_id=leader))[
        "team_id"
    ]
    item = _run(app, c.AddMenuItem(unit_id=institute, category="health", title="上门量血压"))[
        "item_id"
    ]
    order = _run(
        app,
        c.PlaceOrder(
            menu_item_id=item, channel="resident", resident_ref="wx-9", resident_name="刘奶奶"
        ),
    )["order_id"]
    for command in (
        c.ApproveOrder(order_id=order),
        c.PassOrderDown(order_id=order, unit_id=station),
        c.DispatchOrder(order_id=order, team_id=team),
        c.AcceptOrder(order_id=order, team_id=team),
    ):
        _run(app, command)
    now[0] += timedelta(hours=2)
    _run(
        app,
        c.CompleteOrder(
            order_id=order,
            team_id=team,
            services=[c.ServiceLine(volunteer_id=leader, hours=Decimal(1))],
        ),
    )
    _run(app, c.RateOrder(order_id=order, stars=5, resident_ref="wx-9"))
    _run(app, c.ShowcaseOrder(order_id=order, story="服务故事"))
    return {"center": center, "station": station, "team": team, "order": order}


def test_order_events_reach_the_read_models_through_kafka(
    kafka_config: Settings, group_prefix: str
) -> None:
    platform = Platform.build(kafka_config)
    assert isinstance(platform.stream, KafkaStream)
    platform.stream.group_prefix = group_prefix
    now = [datetime.now(UTC)]
    platform.app.clock = lambda: now[0]
    platform.start()
    try:
        ids = _loop(platform.app, now)
        head = platform.app.head()
        for runner in platform.runners.values():
            assert runner.wait_for(head, 30), runner.name
            assert runner.healthy, runner.dead_letters()[:3]

        with sqlite3.connect(platform.runners["unit_metrics"].store.path) as conn:
            figures = unit_metrics.metrics(
                conn, ids["center"], "all", deadlines=kafka_config.order_deadlines, now=now[0]
            )
        assert (figures.orders_received, figures.orders_dispatched) == (1, 1)
        assert (figures.orders_completed, figures.order_service_minutes) == (1, 60)
        assert (figures.average_rating, figures.orders_open, figures.orders_overdue) == (
            5.0,
            0,
            0,
        )

        with sqlite3.connect(platform.runners["team_metrics"].store.path) as conn:
            team = team_metrics.team(conn, ids["team"])
        assert team is not None
        assert (team.orders_completed, team.service_minutes, team.rating_count) == (1, 60, 1)

        reader = platform.runners["order_board"].store.reader()
        listed = order_board.orders(reader, ids["station"], kafka_config.order_deadlines)
        assert [(o.order_id, o.status.value, o.stars) for o in listed] == [
            (ids["order"], "completed", 5)
        ]

        with sqlite3.connect(platform.runners["audit_trail"].store.path) as conn:
            page = audit_trail.search(conn, type="ServiceOrder.Completed")
        assert [e.aggregate_id for e in page.items] == [ids["order"]]
        with sqlite3.connect(platform.runners["audit_trail"].store.path) as conn:
            placed = audit_trail.search(conn, type="Placed").items[0]
        assert "resident_name" not in placed.summary
        assert "resident_ref" not in placed.summary
        assert UUID(placed.summary["menu_item_id"])
    finally:
        platform.close()
