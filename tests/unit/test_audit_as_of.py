"""As of a moment: a passbook's statement and balance, the leaderboard and unit
metrics, each replayed from the events recorded by then (never from the views)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from domain.passbook import Passbook
from projections import leaderboard, unit_metrics
from services.audit_replay import as_of, exports, statement
from services.bootstrap import Platform
from tests.unit.audit_fixtures import audit_platform_fixture, catch_up, district_fixture  # noqa: F401 - fixtures
from tests.unit.audit_scenario import APRIL, MARCH, District


def _events(d: District, who: str) -> list[object]:
    return list(d.app.events.get(Passbook.create_id(d.volunteers[who])))


def test_a_statement_for_april(district: District) -> None:
    april = statement.statement(
        _events(district, "li"), start=APRIL - timedelta(days=14), end=APRIL + timedelta(days=14)
    )
    assert (april.opening_balance, april.closing_balance) == (30, 30)
    assert [(e.type, e.points, e.balance_after) for e in april.entries] == [
        ("redemption", -25, 5),
        ("refund", 25, 30),
    ]
    assert april.totals.redeemed == 25 and april.totals.refunded == 25
    assert april.entries[1].reason == "不要了"
    assert all(e.actor == "key:system" for e in april.entries)


def test_a_statement_for_march_names_each_lot(district: District) -> None:
    march = statement.statement(
        _events(district, "wang"), start=MARCH - timedelta(days=9), end=APRIL - timedelta(days=1)
    )
    assert march.opening_balance == 0
    assert [(e.kind, e.points) for e in march.entries] == [("service", 20), ("manual", 10)]
    assert march.closing_balance == 30
    assert march.entries[0].activity_id == district.activities["march_s1"]


def test_balance_as_of(district: District) -> None:
    events = _events(district, "wang")
    assert statement.balance_as_of(events, MARCH).balance == 0
    assert statement.balance_as_of(events, MARCH + timedelta(days=5)).balance == 30
    after = statement.balance_as_of(events, APRIL + timedelta(seconds=1))
    assert (after.balance, after.last_change_at) == (5, APRIL)
    with pytest.raises(LookupError):
        statement.balance_as_of(events, MARCH - timedelta(days=30))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_exports_carry_the_same_figures(district: District, fmt: exports.ExportFormat) -> None:
    events = _events(district, "li")
    text = "".join(exports.export(statement.rows(iter(events), start=APRIL), fmt))
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert [r["line"] for r in rows] == ["opening", "entry", "entry", "closing"]
    assert [str(r["balance"]) for r in (rows[0], rows[-1])] == ["30", "30"]
    assert [int(r["points"]) for r in rows[1:3]] == [-25, 25]


def test_leaderboard_as_of_replays_what_was_recorded_by_then(
    audit_platform: Platform, district: District
) -> None:
    d = district
    before_april, key, _ = as_of.leaderboard_as_of(d.app.recorder, APRIL - timedelta(days=2))
    assert key == "all"
    assert [(e.volunteer_id, e.points) for e in before_april] == [
        (str(d.volunteers["li"]), 30),
        (str(d.volunteers["wang"]), 30),
        (str(d.volunteers["zhao"]), 16),
    ]
    early, _, replayed = as_of.leaderboard_as_of(
        d.app.recorder, MARCH + timedelta(hours=5, seconds=1)
    )
    assert [(e.volunteer_id, e.points) for e in early] == [
        (str(d.volunteers["li"]), 30),
        (str(d.volunteers["wang"]), 20),
    ]
    assert 0 < replayed < d.app.head()
    # now: the same rows the live read model serves
    catch_up(audit_platform)
    served = leaderboard.top(audit_platform.runners["leaderboard"].store.reader(), limit=20)
    now, _, _ = as_of.leaderboard_as_of(d.app.recorder, APRIL + timedelta(days=300))
    assert now == served


def test_unit_metrics_as_of(audit_platform: Platform, district: District) -> None:
    d = district
    center = str(d.units["center"])
    march, _ = as_of.metrics_as_of(
        d.app.recorder, center, MARCH + timedelta(days=5), granularity="month"
    )
    assert march.period_key == "2026-03"
    assert (march.service_minutes, march.points_awarded, march.participants) == (420, 76, 3)
    assert march.points_redeemed == 0
    later, _ = as_of.metrics_as_of(d.app.recorder, center, APRIL + timedelta(days=1))
    catch_up(audit_platform)
    served = unit_metrics.metrics(
        audit_platform.runners["unit_metrics"].store.reader(), center, "all", "all"
    )
    assert later == served
    assert later.redemptions_requested == 2 and later.redemptions_cancelled == 1


@pytest.mark.parametrize("days", [0, 5, 36, 300])
def test_the_stored_record_fast_path_agrees(district: District, days: int) -> None:
    pid = Passbook.create_id(district.volunteers["li"])
    at = MARCH + timedelta(days=days)
    slow = statement.balance_as_of(district.app.events.get(pid), at)
    fast = statement.balance_of_stored(district.app.recorder.select_events(pid), at)
    assert fast == slow
