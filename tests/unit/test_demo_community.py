"""The demo's micro-wishes, venture calls and charity funds: deterministic, every
workflow exercised, and a plan the platform accepts in full."""

from __future__ import annotations

from collections import Counter
from typing import TypeVar

from infra.settings import Settings
from projections import unit_metrics
from services import commands as c
from services.bootstrap import build_application, build_runners, build_stream
from services.demo import DemoConfig, DemoPlan, generate, load

C = TypeVar("C", bound=c.Command)
SECRET = b"demo-test-secret-0123456789abcdef"
HALF_YEAR = DemoConfig(seed=5, volunteers=150, months=6)


def _of(plan: DemoPlan, kind: type[C]) -> list[C]:
    return [s.command for s in plan.steps if isinstance(s.command, kind)]


def test_the_community_plan_is_deterministic_and_uses_every_workflow() -> None:
    plan = generate(HALF_YEAR, document_secret=SECRET)
    again = generate(HALF_YEAR, document_secret=SECRET)
    assert [s.command for s in plan.steps] == [s.command for s in again.steps]
    kinds = {s.command.__class__ for s in plan.steps}
    for kind in (
        c.OpenFund,
        c.ReceiveMoney,
        c.DisburseMoney,
        c.PostWish,
        c.ClaimWish,
        c.FulfilWish,
        c.ConfirmWish,
        c.OpenVentureCall,
        c.SubmitProject,
        c.ScoreProject,
        c.FundProject,
        c.ReportMilestone,
        c.AcceptProject,
        c.PublishVentureResults,
    ):
        assert kind in kinds, kind
    assert len(_of(plan, c.OpenFund)) == 9  # one per institute
    amounts = [m.amount_fen for m in _of(plan, c.ReceiveMoney)]
    assert all(isinstance(a, int) and a > 0 for a in amounts)


def test_half_a_year_loads_without_refusals_and_shows_in_the_metrics(settings: Settings) -> None:
    app = build_application(settings)
    try:
        plan = generate(
            HALF_YEAR, document_secret=settings.document_secret_bytes(), points_rule=app.points_rule
        )
        report = load(app, plan, batch_size=500)
        assert report.failed == Counter(), report.failures
        runners = build_runners(settings, build_stream(settings, app))
        try:
            for runner in runners.values():
                runner.catch_up()
                assert runner.healthy, runner.dead_letters()[:3]
            center = _of(plan, c.OpenUnit)[0]
            assert center.parent_id is None
            conn = runners["unit_metrics"].store.reader()
            center_id = str(_center_id(plan))
            figures = unit_metrics.metrics(conn, center_id)
            received = sum(m.amount_fen for m in _of(plan, c.ReceiveMoney))
            paid = sum(m.amount_fen for m in _of(plan, c.DisburseMoney))
            assert (figures.fund_in_fen, figures.fund_out_fen) == (received, paid)
            assert figures.fund_net_fen > 0
            assert figures.wishes_posted == len(_of(plan, c.PostWish))
            assert figures.wishes_fulfilled == len(_of(plan, c.ConfirmWish))
            funded = sum(f.amount_fen for f in _of(plan, c.FundProject))
            assert figures.venture_funded_fen == funded > 0
        finally:
            for runner in runners.values():
                runner.stop()
                runner.store.close()
    finally:
        app.close()


def _center_id(plan: DemoPlan) -> object:
    from domain.units import PracticeUnit  # noqa: PLC0415

    return PracticeUnit.create_id(_of(plan, c.OpenUnit)[0].code)
