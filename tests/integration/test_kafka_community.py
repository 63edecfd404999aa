"""Micro-wishes, venture calls and charity funds through the real broker: commands →
event store → relay → Kafka → unit metrics, audit trail and wish board."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from uuid import UUID

import pytest

from infra.kafka_stream import KafkaStream
from infra.settings import Settings
from projections import audit_trail, unit_metrics, wish_board
from services import commands as c
from services.application import CivicApplication
from services.bootstrap import Platform
from services.principals import SYSTEM

pytestmark = pytest.mark.kafka


def _id(app: CivicApplication, command: c.Command, field: str) -> UUID:
    return UUID(app.execute(command, SYSTEM).result[field])


def _run_the_three_workflows(app: CivicApplication) -> dict[str, UUID]:
    center = _id(app, c.OpenUnit(code="k-c", name="中心", tier="center"), "unit_id")
    institute = _id(
        app, c.OpenUnit(code="k-i", name="所", tier="institute", parent_id=center), "unit_id"
    )
    station = _id(
        app, c.OpenUnit(code="k-s", name="站", tier="station", parent_id=institute), "unit_id"
    )
    volunteer = _id(
        app,
        c.RegisterVolunteer(
            home_station_id=station, name="王", phone="13800000000", id_number="11010519491231002X"
        ),
        "volunteer_id",
    )
    wish = _id(
        app, c.PostWish(unit_id=station, title="书包", resident_ref="档案-K1", points=9), "wish_id"
    )
    app.execute(c.ClaimWish(wish_id=wish, volunteer_id=volunteer), SYSTEM)
    app.execute(c.FulfilWish(wish_id=wish), SYSTEM)
    app.execute(c.ConfirmWish(wish_id=wish), SYSTEM)

    call = _id(
        app,
        c.OpenVentureCall(
            unit_id=institute,
            title="创投",
            budget_fen=50_000,
            deadline=app.clock() + timedelta(days=10),
        ),
        "call_id",
    )
    project = _id(
        app,
        c.SubmitProject(call_id=call, title="助餐", organisation="社工", requested_fen=30_000),
        "project_id",
    )
    app.execute(c.ScoreProject(call_id=call, project_id=project, reviewer="A", score=90), SYSTEM)
    app.execute(c.FundProject(call_id=call, project_id=project, amount_fen=30_000), SYSTEM)

    fund = _id(app, c.OpenFund(unit_id=station, title="基金"), "fund_id")
    app.execute(
        c.ReceiveMoney(
            fund_id=fund, amount_fen=8_000, source_kind="donation", purpose="捐", donor="赵先生"
        ),
        SYSTEM,
    )
    app.execute(
        c.DisburseMoney(
            fund_id=fund,
            amount_fen=2_500,
            purpose_kind="meal_subsidy",
            purpose="助餐",
            approved_by="主任",
        ),
        SYSTEM,
    )
    return {"center": center, "institute": institute, "station": station, "wish": wish}


def test_the_new_events_reach_the_read_models_through_kafka(
    kafka_config: Settings, group_prefix: str
) -> None:
    platform = Platform.build(kafka_config)
    assert isinstance(platform.stream, KafkaStream)
    platform.stream.group_prefix = group_prefix
    platform.start()
    try:
        app = platform.app
        ids = _run_the_three_workflows(app)
        head = app.head()
        for runner in platform.runners.values():
            assert runner.wait_for(head, 30), runner.name
            assert runner.healthy, runner.dead_letters()[:3]

        with sqlite3.connect(platform.runners["unit_metrics"].store.path) as conn:
            center = unit_metrics.metrics(conn, str(ids["center"]))
        assert (center.wishes_posted, center.wishes_fulfilled, center.points_awarded) == (1, 1, 9)
        assert (center.venture_projects_funded, center.venture_funded_fen) == (1, 30_000)
        assert (center.fund_in_fen, center.fund_out_fen, center.fund_net_fen) == (
            8_000,
            2_500,
            5_500,
        )

        with sqlite3.connect(platform.runners["audit_trail"].store.path) as conn:
            page = audit_trail.search(conn, unit_id=str(ids["center"]), limit=1000)
        kinds = {(i.aggregate_type, i.event_type) for i in page.items}
        assert {
            ("Wish", "Confirmed"),
            ("VentureCall", "ProjectFunded"),
            ("Fund", "MoneyReceived"),
            ("Fund", "MoneyDisbursed"),
        } <= kinds
        assert "档案-K1" not in str(page.items) and "赵先生" not in str(page.items)

        with sqlite3.connect(platform.runners["wish_board"].store.path) as conn:
            board = wish_board.wishes(conn, str(ids["institute"]))
        assert [(w.wish_id, w.status.value) for w in board] == [(str(ids["wish"]), "confirmed")]
    finally:
        platform.close()
