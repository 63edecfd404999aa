"""What-if: the history replayed under a proposed rule; nothing is written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.categories import Category
from services.audit_replay import history, what_if
from services.audit_replay.what_if import ExpiryRule, ProposedRule, WhatIfReport
from tests.unit.audit_fixtures import audit_platform_fixture, district_fixture  # noqa: F401 - fixtures
from tests.unit.audit_scenario import District


def _run(d: District, rule: ProposedRule) -> WhatIfReport:
    return what_if.what_if(
        history.pages(d.app.recorder),
        rule,
        current_rule=d.app.points_rule,
        current_expiry=d.app.expiry_policy,
        now=d.now,
        everyone=True,
    )


def _by_name(d: District, report: WhatIfReport) -> dict[str, what_if.Outcome]:
    names = {str(v): k for k, v in d.volunteers.items()}
    assert report.volunteers is not None
    return {names[o.volunteer_id]: o for o in report.volunteers}


def test_the_current_rule_changes_nothing(district: District) -> None:
    report = _run(district, ProposedRule())
    assert report.totals.points_now == report.totals.points_proposed == 76
    assert report.totals.balance_now == report.totals.balance_proposed == 5 + 30 + 16
    assert not report.top_gainers and not report.top_losers and not report.biggest_rank_moves


def test_a_higher_rate_for_a_category(district: District) -> None:
    rule = ProposedRule(category_points_per_hour={Category.ENVIRONMENT: 20})
    people = _by_name(district, _run(district, rule))
    assert {k: (o.points_now, o.points_proposed) for k, o in people.items()} == {
        "wang": (30, 50),
        "li": (30, 60),
        "zhao": (16, 32),
    }


def test_an_hour_cap_moves_ranks_and_leaves_redemptions_short(district: District) -> None:
    before = district.app.head()
    report = _run(district, ProposedRule(max_hours_per_service=Decimal(1)))
    people = _by_name(district, report)
    assert {k: o.points_proposed for k, o in people.items()} == {"wang": 20, "li": 10, "zhao": 8}
    assert (people["wang"].rank_now, people["wang"].rank_proposed) == (2, 1)
    assert people["li"].rank_change == -1
    # wang's 25-point redemption: 20 in lots under the cap, 5 short; li's was refunded
    assert (people["wang"].shortfall, people["wang"].balance_proposed) == (5, 0)
    assert (people["li"].shortfall, people["li"].balance_proposed) == (15, 10)
    assert [o.volunteer_id for o in report.top_losers][:1] == [str(district.volunteers["li"])]
    assert district.app.head() == before  # nothing written


def test_an_expiry_policy(district: District) -> None:
    rule = ProposedRule(expiry=ExpiryRule(kind="days", days=30))
    report = _run(district, rule)
    people = _by_name(district, report)
    # by mid-April every March lot is 30 days old: wang's redemption finds nothing
    assert people["wang"].shortfall == 25
    assert report.totals.balance_proposed == 0
    assert report.totals.expired_proposed == 30 + 30 + 16
    assert report.totals.points_proposed == report.totals.points_now


def test_a_bad_rule_is_refused() -> None:
    with pytest.raises(ValidationError):
        ProposedRule.model_validate({"expiry": {"kind": "days"}})
    with pytest.raises(ValidationError):
        ProposedRule.model_validate({"category_points_per_hour": {"astrology": 5}})
