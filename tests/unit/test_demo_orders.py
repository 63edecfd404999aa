"""The demo's teams, menus and orders: the district's corps structure, every step of
the order loop, and a year that loads without a single refusal."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from domain.teams import TeamKind
from infra.settings import Settings
from services import commands as c
from services.bootstrap import build_application
from services.demo import DemoConfig, DemoPlan, generate, load

SECRET = b"demo-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def year() -> DemoPlan:
    return generate(DemoConfig(seed=3, volunteers=400, months=12), document_secret=SECRET)


def test_the_district_has_one_corps_eight_detachments_and_22_specialised_teams(
    year: DemoPlan,
) -> None:
    formed = [s.command for s in year.steps if isinstance(s.command, c.FormTeam)]
    kinds = Counter(t.kind for t in formed)
    assert (kinds[TeamKind.CORPS], kinds[TeamKind.DETACHMENT], kinds[TeamKind.SPECIALISED]) == (
        1,
        8,
        22,
    )
    corps = next(t for t in formed if t.kind == TeamKind.CORPS)
    assert {t.parent_team_id for t in formed if t.kind == TeamKind.DETACHMENT} == {corps.team_id}


def test_a_year_of_orders_uses_every_step_of_the_loop(year: DemoPlan) -> None:
    kinds = Counter(type(s.command) for s in year.steps)
    assert 250 <= kinds[c.PlaceOrder] <= 350
    for step in (
        c.RejectOrder,
        c.PassOrderDown,
        c.DispatchOrder,
        c.DeclineOrder,
        c.TakeOrder,
        c.AcceptOrder,
        c.CompleteOrder,
        c.RateOrder,
        c.ShowcaseOrder,
        c.LeaveTeam,
    ):
        assert kinds[step] > 0, step
    assert kinds[c.CompleteOrder] < kinds[c.PlaceOrder]  # some stay open or are rejected


@pytest.mark.slow
def test_a_year_of_orders_loads_without_refusals(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, document_secret=SECRET.decode())
    app = build_application(settings)
    try:
        plan = generate(
            DemoConfig(seed=5, volunteers=300, months=12),
            document_secret=SECRET,
            points_rule=app.points_rule,
        )
        report = load(app, plan)
        assert report.failed == Counter(), report.failures[:5]
    finally:
        app.close()
