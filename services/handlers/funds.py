"""Command handlers for the community charity funds (社区慈善基金).

A donor's name is personal data: it is sealed with the movement's own key
(``services/personal_data.py``) before the domain sees it, and shown only in the
store's own history (admins, auditors); an admin erases it (the key is deleted)."""

from __future__ import annotations

from uuid import UUID

from domain.errors import ConflictError
from domain.funds import Fund
from domain.randomness import new_id
from domain.units import PracticeUnit
from services import commands as c
from services import personal_data as pd
from services.handlers.base import Context, Handler, Result
from services.unit_of_work import UnitOfWork


def open_fund(cmd: c.OpenFund, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    if uow.find(Fund, Fund.create_id(unit.id)) is not None:
        raise ConflictError("this unit already has a charity fund", code="fund-exists")
    fund = Fund.open_at(unit=unit, title=cmd.title)
    uow.add(fund)
    return {"fund_id": str(fund.id), "unit_id": str(unit.id), "balance_fen": fund.balance_fen}


def _fund_for_write(uow: UnitOfWork, ctx: Context, fund_id: UUID) -> Fund:
    fund = uow.get(Fund, fund_id)
    ctx.principal.ensure_can_write(fund.lineage)
    return fund


def _movement(fund: Fund, movement_id: UUID, direction: str, amount_fen: int) -> Result:
    return {
        "fund_id": str(fund.id),
        "movement_id": str(movement_id),
        "direction": direction,
        "amount_fen": amount_fen,
        "balance_fen": fund.balance_fen,
    }


def receive_money(cmd: c.ReceiveMoney, uow: UnitOfWork, ctx: Context) -> Result:
    fund = _fund_for_write(uow, ctx, cmd.fund_id)
    movement_id = cmd.movement_id or new_id()
    fund.receive(
        movement_id=movement_id,
        amount_fen=cmd.amount_fen,
        source_kind=cmd.source_kind,
        purpose=cmd.purpose,
        donor=pd.seal(ctx.vault, movement_id, pd.DONOR, cmd.donor) or "",
        approved_by=cmd.approved_by,
    )
    return _movement(fund, movement_id, "in", cmd.amount_fen)


def disburse_money(cmd: c.DisburseMoney, uow: UnitOfWork, ctx: Context) -> Result:
    fund = _fund_for_write(uow, ctx, cmd.fund_id)
    movement_id = cmd.movement_id or new_id()
    fund.disburse(
        movement_id=movement_id,
        amount_fen=cmd.amount_fen,
        purpose_kind=cmd.purpose_kind,
        purpose=cmd.purpose,
        approved_by=cmd.approved_by,
        beneficiaries=cmd.beneficiaries,
    )
    return _movement(fund, movement_id, "out", cmd.amount_fen)


def erase_donor_data(cmd: c.EraseDonorData, uow: UnitOfWork, ctx: Context) -> Result:
    """Admins only. As for a volunteer: the key is deleted once the domain has
    accepted the erasure and before the fact is committed (a failed commit leaves
    the name unreadable, the safe side; a retry records the fact)."""
    ctx.principal.ensure_admin()
    fund = uow.get(Fund, cmd.fund_id)
    fund.erase_donor(cmd.movement_id, cmd.reason)
    ctx.vault.shred(cmd.movement_id)
    return {
        "fund_id": str(fund.id),
        "movement_id": str(cmd.movement_id),
        "donor_erased": True,
        "balance_fen": fund.balance_fen,
    }


HANDLERS: dict[type[c.Command], Handler] = {
    c.OpenFund: open_fund,
    c.ReceiveMoney: receive_money,
    c.DisburseMoney: disburse_money,
    c.EraseDonorData: erase_donor_data,
}
