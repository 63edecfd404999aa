"""Micro-wishes, venture calls and charity funds in the read models: unit metrics
(rolled up, by period), the audit trail (personal data removed) and the wish board."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from domain.base import acting_as
from domain.funds import Fund, PurposeKind, SourceKind
from domain.units import PracticeUnit
from domain.venture import VentureCall
from domain.wishes import Wish, WishStatus, confirm_wish
from projections import audit_trail, unit_metrics, wish_board
from projections.audit_trail import AuditTrailProjection
from projections.stream import StreamRecord
from projections.unit_metrics import UnitMetricsProjection
from projections.wish_board import WishBoardProjection
from tests.unit.projection_fixtures import ACTOR, NEVER, T0, Scenario, envelope, uid

MARCH, APRIL = T0, T0 + timedelta(days=31)  # 2026-03-02 and 2026-04-02 in Shanghai


def _wish(s: Scenario, unit: PracticeUnit, at: datetime, points: int = 5) -> Wish:
    with acting_as(ACTOR, at):
        wish = Wish.post(
            unit=unit, title="书包", description="", resident_ref="档案-秘密-7", points=points
        )
    s.app.save(wish)
    return wish


def _fulfil_and_confirm(s: Scenario, wish: Wish, volunteer: Any, at: datetime) -> None:
    passbook = s.passbooks[volunteer.id]
    with acting_as(ACTOR, at):
        wish.claim_by_volunteer(volunteer)
        wish.fulfil("送到")
        confirm_wish(wish=wish, passbook=passbook, now=at, policy=NEVER)
    s.app.save(wish, passbook)


def _fund(s: Scenario, unit: PracticeUnit) -> Fund:
    with acting_as(ACTOR, MARCH):
        fund = Fund.open_at(unit=unit, title="慈善基金")
    s.app.save(fund)
    return fund


def _move(s: Scenario, fund: Fund, at: datetime, *, into: int = 0, out: int = 0) -> None:
    with acting_as(ACTOR, at):
        if into:
            fund.receive(
                movement_id=uuid4(),
                amount_fen=into,
                source_kind=SourceKind.CHARITY_SALE,
                purpose="手工义卖",
                donor="李阿姨",
            )
        if out:
            fund.disburse(
                movement_id=uuid4(),
                amount_fen=out,
                purpose_kind=PurposeKind.MEAL_SUBSIDY,
                purpose="助餐",
                approved_by="主任",
            )
    s.app.save(fund)


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    s = Scenario(tmp_path)
    u = s.units
    p, r = s.volunteer(u.a1, "p"), s.volunteer(u.b1, "r")
    w1, w2, w3 = _wish(s, u.a1, MARCH), _wish(s, u.a2, MARCH), _wish(s, u.b1, APRIL)
    _fulfil_and_confirm(s, w1, p, MARCH)
    _fulfil_and_confirm(s, w3, r, APRIL)
    with acting_as(ACTOR, MARCH):
        w2.cancel("已解决")
    s.app.save(w2)
    with acting_as(ACTOR, MARCH):
        call = VentureCall.open_call(
            unit=u.a,
            title="创投",
            description="",
            budget_fen=1_000,
            deadline=MARCH + timedelta(days=60),
            now=MARCH,
        )
        x = call.submit(title="x", organisation="o", requested_fen=600, summary="", now=MARCH)
        y = call.submit(title="y", organisation="o", requested_fen=600, summary="", now=MARCH)
        call.score(x, reviewer="A", score=90)
        call.score(y, reviewer="A", score=70)
    s.app.save(call)
    with acting_as(ACTOR, APRIL):
        call.fund(x, amount_fen=600, reason="")
        call.fund(y, amount_fen=400, reason="")
    s.app.save(call)
    fund_a1, fund_b = _fund(s, u.a1), _fund(s, u.b)
    _move(s, fund_a1, MARCH, into=10_000, out=3_000)
    _move(s, fund_a1, APRIL, out=2_000)
    _move(s, fund_b, APRIL, into=500)
    with acting_as(ACTOR, APRIL):  # the figures stay (the metrics below)
        fund_b.erase_donor(fund_b.movements[-1].movement_id, "捐赠人申请")
    s.app.save(fund_b)
    yield s
    s.close()


def _figures(conn: sqlite3.Connection, unit: Any, g: str = "all", key: str = "all") -> Any:
    return unit_metrics.metrics(conn, uid(unit), g, key)  # type: ignore[arg-type]


def test_metrics_roll_up_and_split_by_period(scenario: Scenario) -> None:
    conn = scenario.project(UnitMetricsProjection()).store.reader()
    u = scenario.units
    center = _figures(conn, u.center)
    assert (center.wishes_posted, center.wishes_fulfilled, center.wishes_cancelled) == (3, 2, 1)
    assert (center.venture_projects_submitted, center.venture_projects_funded) == (2, 2)
    assert center.venture_funded_fen == 1_000
    assert (center.fund_in_fen, center.fund_out_fen, center.fund_net_fen) == (10_500, 5_000, 5_500)
    institute_a = _figures(conn, u.a)
    assert (institute_a.wishes_posted, institute_a.wishes_fulfilled) == (2, 1)
    assert (institute_a.fund_net_fen, institute_a.venture_funded_fen) == (5_000, 1_000)
    assert (_figures(conn, u.b).fund_net_fen, _figures(conn, u.b1).fund_in_fen) == (500, 0)
    assert _figures(conn, u.a2).wishes_cancelled == 1
    march, april = (_figures(conn, u.center, "month", k) for k in ("2026-03", "2026-04"))
    assert (march.wishes_posted, april.wishes_posted) == (2, 1)
    assert (march.venture_projects_funded, april.venture_projects_funded) == (0, 2)
    assert (march.fund_in_fen, march.fund_out_fen, april.fund_net_fen) == (10_000, 3_000, -1_500)
    assert (march.points_awarded, april.points_awarded) == (5, 5)  # the wishes' points


def test_a_view_built_before_these_counters_gains_their_columns(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.sqlite")
    old = [c for c in unit_metrics.COUNTERS if not c.startswith(("wish", "venture", "fund"))]
    conn.execute(
        f"CREATE TABLE um_counters (unit_id TEXT, period TEXT, {', '.join(old)}, "
        "PRIMARY KEY (unit_id, period)) WITHOUT ROWID"
    )
    UnitMetricsProjection().create_tables(conn)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(um_counters)")]
    assert sorted(columns[2:]) == sorted(unit_metrics.COUNTERS)


def test_every_new_event_is_audited_without_personal_data(scenario: Scenario) -> None:
    conn = scenario.project(AuditTrailProjection()).store.reader()
    page = audit_trail.search(conn, unit_id=uid(scenario.units.center), limit=1000)
    seen = {(i.aggregate_type, i.event_type) for i in page.items}
    for cls in (Wish, VentureCall, Fund):
        declared = {
            (cls.__name__, e.__name__)
            for e in audit_trail.domain_event_classes()
            if e.__qualname__.startswith(f"{cls.__name__}.")
        }
        exercised = {
            ("Wish", "ClaimReleased"),
            ("Wish", "ResidentDataErased"),  # tests/e2e/test_resident_erasure.py
            ("VentureCall", "ProjectDeclined"),
            ("VentureCall", "MilestoneReported"),
            ("VentureCall", "ProjectAccepted"),
            ("VentureCall", "ResultsPublished"),
        }
        assert declared - exercised <= seen
    text = str([i.summary for i in page.items])
    assert "档案-秘密-7" not in text and "李阿姨" not in text
    wish_rows = [i for i in page.items if i.aggregate_type == "Wish"]
    assert all(i.unit_id is not None for i in wish_rows)
    claimed = next(i for i in wish_rows if i.event_type == "Claimed")
    assert claimed.volunteer_id is not None  # tagged with the claimant
    a1 = audit_trail.search(conn, unit_id=uid(scenario.units.a1), type="Fund.MoneyDisbursed")
    assert [i.summary["amount_fen"] for i in a1.items] == [3_000, 2_000]


def test_the_wish_board_lists_a_subtree_by_status(scenario: Scenario) -> None:
    conn = scenario.project(WishBoardProjection()).store.reader()
    u = scenario.units
    assert len(wish_board.wishes(conn, uid(u.center))) == 3
    assert len(wish_board.wishes(conn, None)) == 3
    confirmed = wish_board.wishes(conn, uid(u.a), status=WishStatus.CONFIRMED)
    assert [w.unit_id for w in confirmed] == [uid(u.a1)]
    assert confirmed[0].volunteer_id is not None
    assert [w.status for w in wish_board.wishes(conn, uid(u.a2))] == [WishStatus.CANCELLED]
    assert wish_board.wishes(conn, uid(u.b), status=WishStatus.OPEN) == []
    assert "档案" not in str(wish_board.wishes(conn, None))


def test_a_released_claim_reopens_the_wish_on_the_board(scenario: Scenario) -> None:
    s = scenario
    wish = _wish(s, s.units.b1, APRIL)
    with acting_as(ACTOR, APRIL):
        wish.claim_by_member("党支部")
    s.app.save(wish)
    runner = s.project(WishBoardProjection())
    conn = runner.store.reader()
    assert [w.wish_id for w in wish_board.wishes(conn, None, status=WishStatus.CLAIMED)] == [
        uid(wish)
    ]
    with acting_as(ACTOR, APRIL):
        wish.release("不便")
    s.app.save(wish)
    runner.catch_up(timeout=0)
    assert uid(wish) in [w.wish_id for w in wish_board.wishes(conn, None, status=WishStatus.OPEN)]


def test_a_malformed_wish_is_parked_by_the_board(scenario: Scenario) -> None:
    runner = scenario.runner(WishBoardProjection())
    poison = envelope(
        Wish.Posted, position=1, aggregate_version=1, payload={"unit_id": "u", "unit_path": 42}
    )
    runner.apply_records([StreamRecord.of(0, 1, poison)])
    assert [d["position"] for d in runner.dead_letters()] == [1]
