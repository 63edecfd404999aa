"""Period keys in the network's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.periods import (
    PeriodClock,
    PeriodKeys,
    keys_between,
    period_key,
    period_start,
    validate_key,
)


def test_keys_of_a_day() -> None:
    keys = PeriodKeys.of(date(2026, 3, 31))
    assert (keys.day, keys.week, keys.month, keys.quarter, keys.year, keys.all) == (
        "2026-03-31",
        "2026-W14",
        "2026-03",
        "2026-Q1",
        "2026",
        "all",
    )


@pytest.mark.parametrize(
    ("day", "week"),
    [
        (date(2026, 1, 1), "2026-W01"),  # a Thursday: week 1 of 2026
        (date(2027, 1, 1), "2026-W53"),  # a Friday: still 2026's last ISO week
        (date(2024, 12, 30), "2025-W01"),  # a Monday: already 2025's first ISO week
    ],
)
def test_weeks_follow_the_iso_week_numbering_year(day: date, week: str) -> None:
    assert period_key("week", day) == week


def test_the_local_day_is_the_networks() -> None:
    clock = PeriodClock()  # Asia/Shanghai, UTC+8
    late_evening_utc = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)  # 00:30 on April 1st there
    assert clock.day_of(late_evening_utc) == "2026-04-01"
    assert clock.day_of_iso(late_evening_utc.isoformat()) == "2026-04-01"
    assert clock.keys_of_day("2026-04-01").quarter == "2026-Q2"
    assert PeriodClock("UTC").day_of(late_evening_utc) == "2026-03-31"


def test_iso_strings_in_any_form_give_the_same_day() -> None:
    clock = PeriodClock()
    forms = [
        "2026-03-31T16:30:00+00:00",
        "2026-03-31T16:30:59.999999+00:00",
        "2026-03-31T16:30:00Z",
        "2026-04-01T00:30:00+08:00",
        "2026-03-31T12:00:00-04:30",
    ]
    assert {clock.day_of_iso(s) for s in forms} == {"2026-04-01"}
    assert clock.day_of_iso("2026-03-31T15:59:59+00:00") == "2026-03-31"
    odd_offset = datetime(2026, 3, 31, 21, 0, tzinfo=timezone(timedelta(hours=5, minutes=45)))
    assert clock.day_of(odd_offset) == "2026-03-31"  # 23:15 in Shanghai


def test_naive_times_and_non_strings_are_refused() -> None:
    clock = PeriodClock()
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.day_of_iso("2026-03-31T16:30:00")
    with pytest.raises(TypeError):
        clock.day_of_iso(None)  # type: ignore[arg-type]


def test_current_period() -> None:
    now = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # New Year's Day in Shanghai
    clock = PeriodClock()
    assert clock.current("year", now) == "2027"
    assert clock.current("week", now) == "2026-W53"
    assert clock.current("all", now) == "all"


def test_keys_between() -> None:
    assert keys_between("month", "2025-11", "2026-02") == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert keys_between("quarter", "2025-Q4", "2026-Q2") == ["2025-Q4", "2026-Q1", "2026-Q2"]
    assert keys_between("week", "2026-W52", "2027-W01") == ["2026-W52", "2026-W53", "2027-W01"]
    assert keys_between("day", "2024-02-28", "2024-03-01") == [
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
    ]
    assert keys_between("year", "2025", "2026") == ["2025", "2026"]
    assert keys_between("all", "all", "all") == ["all"]
    assert keys_between("month", "2026-03", "2026-01") == []


@pytest.mark.parametrize(
    ("granularity", "key"),
    [
        ("day", "2026-3-31"),
        ("day", "2026-02-30"),
        ("week", "2026-W54"),
        ("week", "2026-14"),
        ("month", "2026-13"),
        ("month", "2026-Q1"),
        ("quarter", "2026-Q5"),
        ("year", "26"),
        ("all", "2026"),
    ],
)
def test_malformed_keys_are_refused(granularity: str, key: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        validate_key(granularity, key)  # type: ignore[arg-type]


def test_period_start() -> None:
    assert period_start("week", "2026-W14") == date(2026, 3, 30)
    assert period_start("quarter", "2026-Q3") == date(2026, 7, 1)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(
        ["Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
    ),
    seconds=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),  # 1970..2100
)
def test_the_memoised_day_is_the_zones_local_date(zone: str, seconds: float) -> None:
    clock = PeriodClock(zone)
    at = datetime.fromtimestamp(seconds, UTC)
    expected = at.astimezone(ZoneInfo(zone)).date().isoformat()
    assert clock.day_of(at) == expected
    assert clock.day_of(at) == expected  # from the memo this time
    assert clock.day_of_iso(at.isoformat()) == expected


def test_days_around_a_daylight_saving_change() -> None:
    clock = PeriodClock("America/New_York")
    # 2026-03-08 02:00 EST became 03:00 EDT (07:00 UTC); midnight is 04:00 UTC after it
    start = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
    days = {clock.day_of(start + timedelta(minutes=m)) for m in range(0, 48 * 60, 7)}
    assert days == {"2026-03-07", "2026-03-08", "2026-03-09"}
    assert clock.day_of(datetime(2026, 3, 9, 3, 59, tzinfo=UTC)) == "2026-03-08"
    assert clock.day_of(datetime(2026, 3, 9, 4, 0, tzinfo=UTC)) == "2026-03-09"
