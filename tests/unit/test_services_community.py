"""Service-layer scenarios for charity funds, micro-wishes and venture calls, each
run on SQLite and on PostgreSQL (when the suite started it: ``CIVIC_PG_DSN``)."""

from __future__ import annotations

import threading
from uuid import UUID

import pytest

from domain.errors import ConflictError, RuleViolationError
from domain.funds import Fund
from services import commands as c
from services.application import BatchItem, CivicApplication
from services.principals import SYSTEM, ForbiddenError, Principal, Role
from tests.unit.test_services import _network, app

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
