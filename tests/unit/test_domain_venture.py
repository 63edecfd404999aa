"""Venture philanthropy calls: submissions before the deadline, one score per
reviewer, funding within the budget, milestones, acceptance, published results."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.errors import ConflictError, NotFoundError, RuleViolationError
from domain.venture import CallStatus, ProjectStatus, VentureCall
from tests.unit.domain_builders import T0, network

DEADLINE = T0 + timedelta(days=30)
AFTER = DEADLINE + timedelta(days=1)


def _call(budget: int = 100_000_00) -> VentureCall:
    _, institute, _ = network()
    return VentureCall.open_call(
        unit=institute,
        title="2026年社区公益创投",
        description="为老服务、青少年成长",
        budget_fen=budget,
        deadline=DEADLINE,
        now=T0,
    )


def _submit(call: VentureCall, requested: int, title: str = "长者助餐") -> UUID:
    return call.submit(
        title=title, organisation="阳光社工中心", requested_fen=requested, summary="", now=T0
    )


def _scored(call: VentureCall, requested: int, title: str = "长者助餐") -> UUID:
    project = _submit(call, requested, title)
    call.score(project, reviewer="专家A", score=88)
    return project


def test_the_whole_call() -> None:
    call = _call(budget=1_000_000)
    a = _scored(call, 600_000, "长者助餐")
    b = _scored(call, 500_000, "四点半课堂")
    c = _submit(call, 300_000, "邻里节")
    call.score(a, reviewer="专家B", score=91)
    call.fund(a, amount_fen=600_000, reason="高分")
    call.fund(b, amount_fen=400_000, reason="部分资助")
    assert (call.funded_total_fen, call.remaining_fen) == (1_000_000, 0)
    call.decline(c, "预算已用完")
    for project in (a, b):
        call.report_milestone(project, title="中期报告", note="服务120人次", now=T0)
        call.accept(project, final_score=90, evaluation="优秀")
    call.publish_results("资助2个项目", AFTER)
    assert call.status == CallStatus.PUBLISHED
    assert call.projects[a].average_score == 89.5
    assert [p.status for p in call.projects.values()] == [
        ProjectStatus.ACCEPTED,
        ProjectStatus.ACCEPTED,
        ProjectStatus.DECLINED,
    ]
    with pytest.raises(ConflictError) as err:
        _submit(call, 1)
    assert err.value.code == "call-closed"


def test_funding_beyond_the_budget_is_refused() -> None:
    call = _call(budget=1_000)
    a = _scored(call, 800, "a")
    b = _scored(call, 800, "b")
    call.fund(a, amount_fen=800, reason="x")
    with pytest.raises(ConflictError) as err:
        call.fund(b, amount_fen=201, reason="x")
    assert err.value.code == "budget-exceeded"
    assert call.funded_total_fen == 800
    call.fund(b, amount_fen=200, reason="the rest")
    assert call.remaining_fen == 0


def test_funding_rules() -> None:
    call = _call(budget=10_000)
    unscored = _submit(call, 5_000)
    with pytest.raises(ConflictError) as err:
        call.fund(unscored, amount_fen=5_000, reason="x")
    assert err.value.code == "not-reviewed"
    call.score(unscored, reviewer="专家A", score=70)
    with pytest.raises(RuleViolationError) as rule:
        call.fund(unscored, amount_fen=5_001, reason="x")
    assert rule.value.code == "exceeds-request"
    with pytest.raises(RuleViolationError) as rule:
        call.fund(unscored, amount_fen=0, reason="x")
    assert rule.value.code == "bad-amount"
    call.fund(unscored, amount_fen=5_000, reason="x")
    with pytest.raises(ConflictError) as err:
        call.fund(unscored, amount_fen=1, reason="again")
    assert err.value.code == "not-submitted"
    with pytest.raises(NotFoundError):
        call.fund(uuid4(), amount_fen=1, reason="x")


def test_each_reviewer_scores_a_project_once_from_0_to_100() -> None:
    call = _call()
    project = _scored(call, 1_000)
    with pytest.raises(ConflictError) as err:
        call.score(project, reviewer="专家A", score=90)
    assert err.value.code == "already-scored"
    for bad in (-1, 101):
        with pytest.raises(RuleViolationError) as rule:
            call.score(project, reviewer="专家B", score=bad)
        assert rule.value.code == "bad-score"
    with pytest.raises(RuleViolationError) as rule:
        call.score(project, reviewer=" ", score=50)
    assert rule.value.code == "reviewer-required"
    call.score(project, reviewer="专家B", score=0)
    call.score(project, reviewer="专家C", score=100)
    call.fund(project, amount_fen=1_000, reason="x")
    with pytest.raises(ConflictError) as err:
        call.score(project, reviewer="专家D", score=50)
    assert err.value.code == "review-closed"


def test_submissions_close_at_the_deadline_and_stay_within_the_budget() -> None:
    call = _call(budget=1_000)
    with pytest.raises(RuleViolationError) as rule:
        _submit(call, 1_001)
    assert rule.value.code == "exceeds-budget"
    with pytest.raises(ConflictError) as err:
        call.submit(title="x", organisation="y", requested_fen=10, summary="", now=DEADLINE)
    assert err.value.code == "deadline-passed"
    project = _submit(call, 10)
    with pytest.raises(ConflictError) as err:
        call.submit(
            title="x", organisation="y", requested_fen=10, summary="", now=T0, project_id=project
        )
    assert err.value.code == "project-exists"


def test_milestones_acceptance_and_results_follow_funding() -> None:
    call = _call()
    project = _scored(call, 1_000)
    with pytest.raises(ConflictError) as err:
        call.report_milestone(project, title="x", now=T0)
    assert err.value.code == "not-funded"
    with pytest.raises(ConflictError) as err:
        call.accept(project, final_score=80, evaluation="x")
    assert err.value.code == "not-funded"
    call.fund(project, amount_fen=1_000, reason="x")
    with pytest.raises(ConflictError) as err:
        call.accept(project, final_score=80, evaluation="x")
    assert err.value.code == "no-milestones"
    call.report_milestone(project, title="启动", now=T0)
    with pytest.raises(RuleViolationError) as rule:
        call.accept(project, final_score=120, evaluation="x")
    assert rule.value.code == "bad-score"
    with pytest.raises(ConflictError) as err:
        call.publish_results("x", AFTER)
    assert err.value.code == "projects-unfinished"
    call.accept(project, final_score=80, evaluation="良好")
    with pytest.raises(ConflictError) as err:
        call.publish_results("x", T0)
    assert err.value.code == "deadline-not-passed"
    call.publish_results("x", AFTER)
    with pytest.raises(ConflictError) as err:
        call.publish_results("x", AFTER)
    assert err.value.code == "call-closed"


def test_opening_rules() -> None:
    _, institute, _ = network()
    with pytest.raises(RuleViolationError) as rule:
        VentureCall.open_call(
            unit=institute, title="x", description="", budget_fen=0, deadline=DEADLINE, now=T0
        )
    assert rule.value.code == "bad-amount"
    with pytest.raises(RuleViolationError) as rule:
        VentureCall.open_call(
            unit=institute, title="x", description="", budget_fen=10, deadline=T0, now=T0
        )
    assert rule.value.code == "bad-deadline"
    institute.close("撤并")
    with pytest.raises(ConflictError) as err:
        VentureCall.open_call(
            unit=institute, title="x", description="", budget_fen=10, deadline=DEADLINE, now=T0
        )
    assert err.value.code == "unit-closed"


def test_a_cached_copy_does_not_share_projects_with_the_original() -> None:
    import copy  # noqa: PLC0415 - only this test needs it

    call = _call()
    project = _scored(call, 1_000)
    clone = copy.deepcopy(call)
    clone.score(project, reviewer="专家B", score=60)
    assert list(call.projects[project].scores) == ["专家A"]
