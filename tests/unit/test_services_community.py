"""Service-layer scenarios for charity funds, micro-wishes and venture calls, each
run on SQLite and on PostgreSQL (when the suite started it: ``CIVIC_PG_DSN``)."""

from __future__ import annotations

import threading
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.errors import ConflictError, NotFoundError, RuleViolationError
from domain.funds import Fund
from domain.passbook import Passbook
from domain.wishes import Wish
from services import commands as c
from services.application import BatchItem, CivicApplication
from services.principals import SYSTEM, ForbiddenError, Principal, Role
from tests.unit.test_services import NOW, _network, _volunteer, app

__all__ = ["app"]  # the parametrised fixture, shared with test_services


def _fund(app: CivicApplication, unit: UUID, *, balance: int = 0) -> UUID:
    fund = UUID(app.execute(c.OpenFund(unit_id=unit, title="慈善基金"), SYSTEM).result["fund_id"])
    if balance:
        app.execute(
            c.ReceiveMoney(
                fund_id=fund, amount_fen=balance, source_kind="donation", purpose="募捐"
            ),
            SYSTEM,
        )
    return fund


def _subsidy(fund: UUID, amount: int) -> c.DisburseMoney:
    return c.DisburseMoney(
        fund_id=fund,
        amount_fen=amount,
        purpose_kind="meal_subsidy",
        purpose="助餐补贴",
        approved_by="社区主任",
        beneficiaries=3,
    )


# -- funds -----------------------------------------------------------------------------


def test_a_fund_per_unit(app: CivicApplication) -> None:
    ids = _network(app)
    fund = _fund(app, ids["s1"])
    assert fund == Fund.create_id(ids["s1"])
    with pytest.raises(ConflictError) as err:
        _fund(app, ids["s1"])
    assert err.value.code == "fund-exists"


def test_overspending_a_fund_is_refused(app: CivicApplication) -> None:
    ids = _network(app)
    fund = _fund(app, ids["s1"], balance=10_000)
    head = app.head()
    with pytest.raises(ConflictError) as err:
        app.execute(_subsidy(fund, 10_001), SYSTEM)
    assert err.value.code == "insufficient-funds"
    assert app.head() == head
    result = app.execute(_subsidy(fund, 4_000), SYSTEM).result
    assert result["balance_fen"] == 6_000


def test_concurrent_payments_never_overdraw(app: CivicApplication) -> None:
    ids = _network(app)
    fund = _fund(app, ids["s1"], balance=10_000)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def pay() -> None:
        barrier.wait()
        try:
            app.execute(_subsidy(fund, 3_000), SYSTEM)
            outcomes.append("paid")
        except ConflictError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=pay) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["insufficient-funds"] * 3 + ["paid"] * 3
    assert app.repository.get(fund).balance_fen == 1_000


def test_funds_are_written_only_within_ones_subtree(app: CivicApplication) -> None:
    ids = _network(app)
    fund = _fund(app, ids["s1"], balance=500)
    other_station = Principal("k1", "s2 kiosk", Role.SERVICE, ids["s2"])
    institute_admin = Principal("k2", "i admin", Role.UNIT_ADMIN, ids["institute"])
    auditor = Principal("k3", "auditor", Role.AUDITOR)
    for principal in (other_station, auditor):
        with pytest.raises(ForbiddenError):
            app.execute(_subsidy(fund, 100), principal)
        with pytest.raises(ForbiddenError):
            app.execute(c.OpenFund(unit_id=ids["s2"], title="x"), auditor)
    assert app.execute(_subsidy(fund, 100), institute_admin).result["balance_fen"] == 400


def test_the_approver_cannot_be_the_recording_key(app: CivicApplication) -> None:
    ids = _network(app)
    fund = _fund(app, ids["s1"], balance=500)
    clerk = Principal("clerk1", "clerk", Role.UNIT_ADMIN, ids["s1"])
    cmd = _subsidy(fund, 100).model_copy(update={"approved_by": "key:clerk1"})
    with pytest.raises(RuleViolationError) as err:
        app.execute(cmd, clerk)
    assert err.value.code == "approver-is-recorder"


def test_a_batch_with_an_overdraft_keeps_its_good_items(app: CivicApplication) -> None:
    ids = _network(app)
    fund = _fund(app, ids["s1"], balance=1_000)
    outcomes = app.execute_batch(
        [BatchItem(_subsidy(fund, 600)), BatchItem(_subsidy(fund, 600))], SYSTEM
    )
    assert [o.ok for o in outcomes] == [True, False]
    assert app.repository.get(fund).balance_fen == 400


# -- wishes ----------------------------------------------------------------------------


def _wish(app: CivicApplication, unit: UUID, points: int = 6) -> UUID:
    cmd = c.PostWish(unit_id=unit, title="冬季棉衣", resident_ref="档案 17", points=points)
    return UUID(app.execute(cmd, SYSTEM).result["wish_id"])


def test_confirming_a_wish_awards_its_points_once_in_one_transaction(
    app: CivicApplication,
) -> None:
    ids = _network(app)
    v = _volunteer(app, ids["s1"])
    wish = _wish(app, ids["s1"])
    app.execute(c.ClaimWish(wish_id=wish, volunteer_id=v), SYSTEM)
    app.execute(c.FulfilWish(wish_id=wish, note="已送达"), SYSTEM)
    head = app.head()
    outcome = app.execute(c.ConfirmWish(wish_id=wish), SYSTEM)
    assert outcome.result["points"] == 6
    assert outcome.position == head + 2  # the wish's confirmation and the award, together
    with pytest.raises(ConflictError) as err:
        app.execute(c.ConfirmWish(wish_id=wish), SYSTEM)
    assert err.value.code == "already-confirmed"
    assert app.repository.get(Passbook.create_id(v)).balance == 6


def test_concurrent_confirmations_award_once(app: CivicApplication) -> None:
    ids = _network(app)
    v = _volunteer(app, ids["s1"])
    wish = _wish(app, ids["s1"])
    app.execute(c.ClaimWish(wish_id=wish, volunteer_id=v), SYSTEM)
    app.execute(c.FulfilWish(wish_id=wish), SYSTEM)
    outcomes: list[str] = []
    barrier = threading.Barrier(5)

    def go() -> None:
        barrier.wait()
        try:
            app.execute(c.ConfirmWish(wish_id=wish), SYSTEM)
            outcomes.append("confirmed")
        except ConflictError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=go) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already-confirmed"] * 4 + ["confirmed"]
    assert app.repository.get(Passbook.create_id(v)).balance == 6


def test_wishes_are_acted_on_only_within_ones_subtree(app: CivicApplication) -> None:
    ids = _network(app)
    wish = _wish(app, ids["s1"])
    other_station = Principal("k1", "s2 kiosk", Role.SERVICE, ids["s2"])
    with pytest.raises(ForbiddenError):
        app.execute(c.ClaimWish(wish_id=wish, claimant_ref="党支部"), other_station)
    with pytest.raises(ForbiddenError):
        app.execute(c.PostWish(unit_id=ids["s1"], title="x", resident_ref="r"), other_station)
    with pytest.raises(NotFoundError):
        app.execute(c.ClaimWish(wish_id=uuid4(), claimant_ref="党支部"), SYSTEM)
    own = Principal("k2", "s1 kiosk", Role.SERVICE, ids["s1"])
    assert (
        app.execute(c.ClaimWish(wish_id=wish, claimant_ref="党支部"), own).result["status"]
        == "claimed"
    )
    assert isinstance(app.repository.get(wish), Wish)


def test_a_claim_command_names_exactly_one_claimant() -> None:
    with pytest.raises(ValueError, match="either volunteer_id or claimant_ref"):
        c.ClaimWish(wish_id=uuid4())
    with pytest.raises(ValueError, match="either volunteer_id or claimant_ref"):
        c.ClaimWish(wish_id=uuid4(), volunteer_id=uuid4(), claimant_ref="x")


# -- venture calls ---------------------------------------------------------------------


def _call(app: CivicApplication, unit: UUID, budget: int) -> UUID:
    cmd = c.OpenVentureCall(
        unit_id=unit, title="公益创投", budget_fen=budget, deadline=NOW + timedelta(days=30)
    )
    return UUID(app.execute(cmd, SYSTEM).result["call_id"])


def _scored_project(app: CivicApplication, call: UUID, requested: int) -> UUID:
    cmd = c.SubmitProject(
        call_id=call, title="助老", organisation="社工站", requested_fen=requested
    )
    project = UUID(app.execute(cmd, SYSTEM).result["project_id"])
    app.execute(c.ScoreProject(call_id=call, project_id=project, reviewer="A", score=80), SYSTEM)
    return project


def test_concurrent_funding_never_exceeds_the_budget(app: CivicApplication) -> None:
    ids = _network(app)
    call = _call(app, ids["institute"], budget=10_000)
    projects = [_scored_project(app, call, 4_000) for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(projects))

    def fund(project: UUID) -> None:
        barrier.wait()
        try:
            app.execute(c.FundProject(call_id=call, project_id=project, amount_fen=4_000), SYSTEM)
            outcomes.append("funded")
        except ConflictError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=fund, args=(p,)) for p in projects]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["budget-exceeded"] * 2 + ["funded"] * 2
    assert app.repository.get(call).funded_total_fen == 8_000


def test_venture_calls_are_acted_on_only_within_ones_subtree(app: CivicApplication) -> None:
    ids = _network(app)
    call = _call(app, ids["s1"], budget=10_000)
    other_station = Principal("k1", "s2 kiosk", Role.SERVICE, ids["s2"])
    cmd = c.SubmitProject(call_id=call, title="x", organisation="y", requested_fen=1)
    with pytest.raises(ForbiddenError):
        app.execute(cmd, other_station)
    with pytest.raises(ForbiddenError):
        app.execute(
            c.OpenVentureCall(
                unit_id=ids["institute"],
                title="x",
                budget_fen=1,
                deadline=NOW + timedelta(days=1),
            ),
            other_station,
        )
    institute_admin = Principal("k2", "i admin", Role.UNIT_ADMIN, ids["institute"])
    assert app.execute(cmd, institute_admin).result["project_status"] == "submitted"
