"""Trace a point: a redemption back to the lots it spent and the service behind them."""

from __future__ import annotations

import pytest

from domain.errors import NotFoundError
from services.audit_replay.trace import trace_redemption
from tests.unit.audit_fixtures import audit_platform_fixture, district_fixture  # noqa: F401 - fixtures
from tests.unit.audit_scenario import MARCH, District


def test_a_redemption_traces_to_its_lots_and_the_service_behind(district: District) -> None:
    d = district
    t = trace_redemption(d.app, d.redemptions["wang"])
    assert (t.points, t.status, t.refunded) == (25, "requested", False)
    assert [(lot.kind, lot.points_spent, lot.points) for lot in t.lots] == [
        ("service", 20, 20),
        ("manual", 5, 10),
    ]
    service = t.lots[0].service
    assert service is not None
    assert service.activity_id == d.activities["march_s1"]
    assert (service.minutes, service.hours_source, service.points_per_hour) == (120, "checkin", 10)
    assert [s.event for s in service.steps] == [
        "Published",
        "SignedUp",
        "CheckedIn",
        "CheckedOut",
        "ServiceConfirmed",
    ]
    assert service.steps[2].detail["at"] == MARCH.isoformat()
    assert t.lots[1].service is None
    assert t.lots[1].reason == "文明户评比"


def test_a_cancelled_redemption_shows_its_refund(district: District) -> None:
    t = trace_redemption(district.app, district.redemptions["li"])
    assert (t.status, t.refunded) == ("cancelled", True)
    assert [s.event for s in t.steps] == ["Requested", "Cancelled"]
    assert [lot.service.minutes for lot in t.lots if lot.service] == [180]


def test_an_unknown_redemption(district: District) -> None:
    with pytest.raises(NotFoundError):
        trace_redemption(district.app, district.activities["march_s1"])
