"""The community charity fund: money in and out in fen, never below zero."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.base import acting_as
from domain.errors import ConflictError, NotFoundError, RuleViolationError
from domain.funds import Fund, PurposeKind, SourceKind
from tests.unit.domain_builders import network


def _fund() -> Fund:
    _, _, station = network()
    return Fund.open_at(unit=station, title="观音桥社区慈善基金")


def _donate(fund: Fund, amount: int) -> None:
    fund.receive(
        movement_id=uuid4(),
        amount_fen=amount,
        source_kind=SourceKind.DONATION,
        purpose="重阳节募捐",
        donor="爱心企业",
    )


def _subsidy(fund: Fund, amount: int, approver: str = "社区主任") -> None:
    fund.disburse(
        movement_id=uuid4(),
        amount_fen=amount,
        purpose_kind=PurposeKind.MEAL_SUBSIDY,
        purpose="低保老人助餐补贴",
        approved_by=approver,
        beneficiaries=12,
    )


def test_one_fund_per_unit_by_its_id() -> None:
    _, _, station = network()
    assert Fund.open_at(unit=station, title="a").id == Fund.create_id(station.id)


def test_money_in_and_out_keeps_the_balance_and_every_movement() -> None:
    fund = _fund()
    _donate(fund, 50_000)
    fund.receive(
        movement_id=uuid4(),
        amount_fen=12_345,
        source_kind=SourceKind.CHARITY_SALE,
        purpose="手工艺品义卖",
    )
    _subsidy(fund, 30_000)
    assert fund.balance_fen == 50_000 + 12_345 - 30_000
    assert (fund.total_in_fen, fund.total_out_fen) == (62_345, 30_000)
    assert [m.balance_after_fen for m in fund.movements] == [50_000, 62_345, 32_345]
    assert [m.kind for m in fund.movements] == ["donation", "charity_sale", "meal_subsidy"]


def test_overspending_is_refused_and_changes_nothing() -> None:
    fund = _fund()
    _donate(fund, 10_000)
    with pytest.raises(ConflictError) as err:
        _subsidy(fund, 10_001)
    assert err.value.code == "insufficient-funds"
    assert fund.balance_fen == 10_000
    assert len(fund.collect_events()) == 2  # opened and the donation only
    _subsidy(fund, 10_000)  # the exact balance may be spent
    assert fund.balance_fen == 0


def test_an_empty_fund_pays_nothing() -> None:
    with pytest.raises(ConflictError) as err:
        _subsidy(_fund(), 1)
    assert err.value.code == "insufficient-funds"


@pytest.mark.parametrize("amount", [0, -5, 10_000_000_001, 1.5, True])
def test_amounts_are_positive_whole_fen(amount: object) -> None:
    fund = _fund()
    with pytest.raises(RuleViolationError) as err:
        _donate(fund, amount)  # type: ignore[arg-type]
    assert err.value.code == "bad-amount"


def test_a_disbursement_names_an_approver_who_is_not_the_recorder() -> None:
    fund = _fund()
    _donate(fund, 1_000)
    with pytest.raises(RuleViolationError) as err:
        _subsidy(fund, 100, approver="  ")
    assert err.value.code == "approver-required"
    with acting_as("key:abc"), pytest.raises(RuleViolationError) as err:
        _subsidy(fund, 100, approver="key:abc")
    assert err.value.code == "approver-is-recorder"
    with acting_as("key:abc"):
        _subsidy(fund, 100, approver="王主任")
    assert fund.movements[-1].approved_by == "王主任"


def test_a_movement_is_recorded_once() -> None:
    fund = _fund()
    movement = uuid4()
    fund.receive(movement_id=movement, amount_fen=1, source_kind=SourceKind.GRANT, purpose="拨款")
    with pytest.raises(ConflictError) as err:
        fund.receive(
            movement_id=movement, amount_fen=1, source_kind=SourceKind.GRANT, purpose="拨款"
        )
    assert err.value.code == "movement-exists"


def test_a_closed_unit_opens_no_fund() -> None:
    _, _, station = network()
    station.close("合并")
    with pytest.raises(ConflictError) as err:
        Fund.open_at(unit=station, title="x")
    assert err.value.code == "unit-closed"


def test_negative_beneficiaries_are_refused() -> None:
    fund = _fund()
    _donate(fund, 100)
    with pytest.raises(RuleViolationError) as err:
        fund.disburse(
            movement_id=uuid4(),
            amount_fen=1,
            purpose_kind=PurposeKind.OTHER,
            purpose="x",
            approved_by="y",
            beneficiaries=-1,
        )
    assert err.value.code == "bad-count"


def test_a_donors_name_is_erased_once_and_the_money_stays() -> None:
    fund = _fund()
    _donate(fund, 50_000)
    anonymous = uuid4()
    fund.receive(
        movement_id=anonymous, amount_fen=100, source_kind=SourceKind.DONATION, purpose="匿名"
    )
    _subsidy(fund, 20_000)
    donated, paid = fund.movements[0].movement_id, fund.movements[2].movement_id
    before = (fund.balance_fen, fund.total_in_fen, fund.total_out_fen, list(fund.movements))

    fund.erase_donor(donated, "捐赠人申请删除")
    erased = fund.collect_events()[-1]
    assert isinstance(erased, Fund.DonorDataErased)
    assert (erased.movement_id, erased.reason) == (donated, "捐赠人申请删除")
    assert fund.donor_erased == {donated}
    assert (fund.balance_fen, fund.total_in_fen, fund.total_out_fen, fund.movements) == before

    refusals = [
        (donated, ConflictError, "donor-erased"),  # done once, for good
        (anonymous, ConflictError, "no-donor"),  # nothing to erase
        (paid, ConflictError, "no-donor"),  # money out names no donor
        (uuid4(), NotFoundError, "movement-not-found"),
    ]
    for movement_id, error, code in refusals:
        with pytest.raises(error) as err:
            fund.erase_donor(movement_id, "x")
        assert err.value.code == code
    assert fund.collect_events() == []  # refusals record nothing
