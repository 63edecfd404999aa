"""The replay check: every read model rebuilt from the history and compared with
what is served; invariants reconciled; any difference is reported."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from projections.catalog import PROJECTIONS
from projections.envelope import EventEnvelope
from projections.view_files import live_path
from services import commands as c
from services.audit_replay.check import CheckReport, run_check
from services.audit_replay.ledger import Ledger
from services.bootstrap import Platform
from tests.unit.audit_fixtures import audit_platform_fixture, catch_up, district_fixture  # noqa: F401 - fixtures
from tests.unit.audit_scenario import NOVEMBER, District


def _check(platform: Platform) -> CheckReport:
    settings = platform.settings
    return run_check(platform.app.recorder, settings.views_dir, timezone=settings.timezone)


def _tamper(platform: Platform, view: str, sql: str, *args: object) -> None:
    path = live_path(platform.settings.views_dir, view)
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute(sql, args).rowcount >= 1


def test_served_views_match_the_history(audit_platform: Platform, district: District) -> None:
    d = district
    d.at(NOVEMBER)
    correction = d.run(
        c.RequestServiceCorrection(
            activity_id=d.activities["march_s1"],
            volunteer_id=d.volunteers["li"],
            hours=Decimal(2),
            reason="签退漏记",
        )
    )["correction_id"]
    d.run(c.ApproveServiceCorrection(correction_id=correction))
    catch_up(audit_platform)
    report = _check(audit_platform)
    assert report.ok, report.model_dump_json(indent=2)
    assert {v.name for v in report.views} == set(PROJECTIONS)
    assert all(v.lag == 0 for v in report.views)
    compared = {v.name: v.rows_compared for v in report.views}
    assert all(compared[name] > 0 for name in ("leaderboard", "unit_metrics", "audit_trail"))
    assert report.events_read == audit_platform.app.head()
    assert {i.name: i.ok for i in report.invariants} == dict.fromkeys(
        (i.name for i in report.invariants), True
    )


def test_an_edited_row_is_reported(audit_platform: Platform, district: District) -> None:
    catch_up(audit_platform)
    wang = str(district.volunteers["wang"])
    _tamper(
        audit_platform,
        "leaderboard",
        "UPDATE lb_scores SET points = points + 100 WHERE volunteer_id = ? AND period = 'all'",
        wang,
    )
    report = _check(audit_platform)
    assert not report.ok
    board = next(v for v in report.views if v.name == "leaderboard")
    assert board.differences == 1
    [diff] = board.samples
    assert diff.table == "lb_scores"
    assert diff.key == {"period": "all", "volunteer_id": wang}
    assert diff.served is not None and diff.recomputed is not None
    assert diff.served["points"] - diff.recomputed["points"] == 100


def test_a_broken_invariant_is_reported(audit_platform: Platform, district: District) -> None:
    catch_up(audit_platform)
    s1 = str(district.units["S1"])
    _tamper(
        audit_platform,
        "unit_metrics",
        "UPDATE um_counters SET points_awarded = points_awarded + 7 "
        "WHERE unit_id = ? AND period = 'all'",
        s1,
    )
    report = _check(audit_platform)
    failed = {i.name: i for i in report.invariants if not i.ok}
    points = next(i for name, i in failed.items() if "per unit" in name)
    assert {"unit_id": s1, "net_issued": 7 + 35, "outstanding": 35} in points.violations
    hierarchy = next(i for name, i in failed.items() if "parent" in name)
    assert any(v["figure"] == "points_awarded" for v in hierarchy.violations)
    metrics = next(v for v in report.views if v.name == "unit_metrics")
    assert metrics.differences == 1


def test_a_deleted_row_and_a_missing_view_are_reported(
    audit_platform: Platform, district: District
) -> None:
    catch_up(audit_platform)
    _tamper(audit_platform, "audit_trail", "DELETE FROM audit_events WHERE position = 3")
    audit_platform.runners["leaderboard"].store.close()
    (audit_platform.settings.views_dir / "leaderboard.sqlite").unlink()
    report = _check(audit_platform)
    trail = next(v for v in report.views if v.name == "audit_trail")
    assert trail.differences == 1
    assert trail.samples[0].served is None
    assert trail.samples[0].key == {"position": 3}
    board = next(v for v in report.views if v.name == "leaderboard")
    assert not board.served and board.differences == 1


def _envelope(
    position: int, type_: str, aggregate: str, payload: dict[str, object]
) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid4(),
        position=position,
        type=type_,
        version=1,
        aggregate_id=aggregate,
        aggregate_version=position,
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="test",
        payload=payload,
    )


def test_the_ledger_catches_stock_below_zero() -> None:
    reward = str(uuid4())
    ledger = Ledger()
    ledger.fold(
        [
            _envelope(1, "domain.rewards:Reward.Listed", reward, {"stock": 1}),
            _envelope(2, "domain.rewards:Reward.StockReserved", reward, {"quantity": 1}),
            _envelope(3, "domain.rewards:Reward.StockReserved", reward, {"quantity": 1}),
        ]
    )
    assert [(d.position, d.stock) for d in ledger.stock_dips] == [(3, -1)]


@pytest.mark.parametrize("names", [["leaderboard"], ["unit_metrics", "audit_trail"]])
def test_a_view_behind_the_head_is_compared_at_its_own_position(
    audit_platform: Platform, district: District, names: list[str]
) -> None:
    catch_up(audit_platform)
    district.run(c.AwardPoints(volunteer_id=district.volunteers["zhao"], points=3, reason="补录"))
    report = run_check(audit_platform.app.recorder, audit_platform.settings.views_dir, names=names)
    assert report.ok, report.model_dump_json(indent=2)
    assert all(v.lag == 1 for v in report.views)
