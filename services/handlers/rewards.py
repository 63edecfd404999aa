"""Command handlers for rewards and redemptions."""

from __future__ import annotations

from uuid import UUID

from domain.passbook import Passbook
from domain.randomness import new_id
from domain.redemptions import Redemption, redeem
from domain.rewards import Reward
from domain.units import PracticeUnit
from domain.volunteers import (
    Volunteer,
)
from services import commands as c
from services.handlers.base import Context, Handler, Result, ensure_new_id, passbook_for_write
from services.unit_of_work import UnitOfWork


def list_reward(cmd: c.ListReward, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    ensure_new_id(uow, cmd.reward_id, "a reward", "reward-exists")
    reward = Reward.list_at(
        unit=unit,
        name=cmd.name,
        description=cmd.description,
        cost_points=cmd.cost_points,
        stock=cmd.stock,
        reward_id=cmd.reward_id,
    )
    uow.add(reward)
    return {"reward_id": str(reward.id), "stock": reward.stock}


def _reward_for_write(uow: UnitOfWork, ctx: Context, reward_id: UUID) -> Reward:
    reward = uow.get(Reward, reward_id)
    ctx.principal.ensure_can_write(reward.lineage)
    return reward


def restock_reward(cmd: c.RestockReward, uow: UnitOfWork, ctx: Context) -> Result:
    reward = _reward_for_write(uow, ctx, cmd.reward_id)
    reward.restock(cmd.quantity, cmd.reason)
    return {"reward_id": str(reward.id), "stock": reward.stock}


def delist_reward(cmd: c.DelistReward, uow: UnitOfWork, ctx: Context) -> Result:
    reward = _reward_for_write(uow, ctx, cmd.reward_id)
    reward.delist(cmd.reason)
    return {"reward_id": str(reward.id), "delisted": True}


def redeem_reward(cmd: c.Redeem, uow: UnitOfWork, ctx: Context) -> Result:
    """Debit, reserve and record in one transaction; racing for the last item,
    exactly one wins (the loser's save conflicts, retries and finds no stock).

    The caller must reach both the reward's unit and the volunteer's passbook:
    a key of one subtree may not debit the passbook of another's volunteer."""
    reward = _reward_for_write(uow, ctx, cmd.reward_id)
    volunteer = uow.get(Volunteer, cmd.volunteer_id)
    passbook = passbook_for_write(uow, ctx, volunteer.id)
    redemption_id = cmd.redemption_id or new_id()
    ensure_new_id(uow, redemption_id, "a redemption", "redemption-exists")
    redemption = redeem(
        redemption_id=redemption_id,
        volunteer=volunteer,
        passbook=passbook,
        reward=reward,
        quantity=cmd.quantity,
        now=ctx.now,
    )
    uow.add(redemption)
    return {
        "redemption_id": str(redemption.id),
        "volunteer_id": str(volunteer.id),
        "reward_id": str(reward.id),
        "points": redemption.points,
        "balance": passbook.balance,
        "stock_left": reward.stock,
        "spent_lots": [{"lot_id": str(lot), "points": p} for lot, p in redemption.spent],
    }


def _redemption_for_write(uow: UnitOfWork, ctx: Context, redemption_id: UUID) -> Redemption:
    redemption = uow.get(Redemption, redemption_id)
    ctx.principal.ensure_can_write(redemption.lineage)
    return redemption


def fulfil_redemption(cmd: c.FulfilRedemption, uow: UnitOfWork, ctx: Context) -> Result:
    redemption = _redemption_for_write(uow, ctx, cmd.redemption_id)
    redemption.fulfil(cmd.note)
    return {"redemption_id": str(redemption.id), "status": redemption.status.value}


def cancel_redemption(cmd: c.CancelRedemption, uow: UnitOfWork, ctx: Context) -> Result:
    redemption = _redemption_for_write(uow, ctx, cmd.redemption_id)
    passbook = uow.get(Passbook, redemption.passbook_id)
    reward = uow.get(Reward, redemption.reward_id)
    redemption.cancel(cmd.reason, passbook, reward)
    return {
        "redemption_id": str(redemption.id),
        "status": redemption.status.value,
        "balance": passbook.balance,
        "stock": reward.stock,
    }


HANDLERS: dict[type[c.Command], Handler] = {
    c.ListReward: list_reward,
    c.RestockReward: restock_reward,
    c.DelistReward: delist_reward,
    c.Redeem: redeem_reward,
    c.FulfilRedemption: fulfil_redemption,
    c.CancelRedemption: cancel_redemption,
}
