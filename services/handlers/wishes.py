"""Command handlers for micro-wishes (微心愿): post, claim, release, fulfil,
confirm (with its points award, in the same transaction), cancel, and erase the
personal data on a wish (admins only).

The resident's reference and a member claimant's reference are sealed with the
wish's own key (``services/personal_data.py``) before the domain sees them."""

from __future__ import annotations

from uuid import UUID

from domain.passbook import Passbook
from domain.randomness import new_id
from domain.units import PracticeUnit
from domain.volunteers import Volunteer
from domain.wishes import Wish, confirm_wish
from services import commands as c
from services import personal_data as pd
from services.handlers.base import Context, Handler, Result, ensure_new_id
from services.unit_of_work import UnitOfWork


def post_wish(cmd: c.PostWish, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    ensure_new_id(uow, cmd.wish_id, "a wish", "wish-exists")
    wish_id = cmd.wish_id or new_id()  # the vault subject: chosen before sealing
    resident_ref = pd.seal(ctx.vault, wish_id, pd.RESIDENT_REF, cmd.resident_ref.strip())
    wish = Wish.post(
        unit=unit,
        title=cmd.title,
        description=cmd.description,
        resident_ref=resident_ref or "",
        points=cmd.points,
        wish_id=wish_id,
    )
    uow.add(wish)
    return _status(wish)


def _wish_for_write(uow: UnitOfWork, ctx: Context, wish_id: UUID) -> Wish:
    wish = uow.get(Wish, wish_id)
    ctx.principal.ensure_can_write(wish.lineage)
    return wish


def _status(wish: Wish) -> Result:
    return {
        "wish_id": str(wish.id),
        "status": wish.status.value,
        "volunteer_id": str(wish.volunteer_id) if wish.volunteer_id else None,
    }


def claim_wish(cmd: c.ClaimWish, uow: UnitOfWork, ctx: Context) -> Result:
    wish = _wish_for_write(uow, ctx, cmd.wish_id)
    if cmd.volunteer_id is not None:
        wish.claim_by_volunteer(uow.get(Volunteer, cmd.volunteer_id))
    else:
        wish.ensure_personal_data_kept()  # before sealing: an erased wish has no key
        ref = cmd.claimant_ref.strip()
        wish.claim_by_member(pd.seal(ctx.vault, wish.id, pd.CLAIMANT_REF, ref) or ref)
    return _status(wish)


def release_wish(cmd: c.ReleaseWish, uow: UnitOfWork, ctx: Context) -> Result:
    wish = _wish_for_write(uow, ctx, cmd.wish_id)
    wish.release(cmd.reason)
    return _status(wish)


def fulfil_wish(cmd: c.FulfilWish, uow: UnitOfWork, ctx: Context) -> Result:
    wish = _wish_for_write(uow, ctx, cmd.wish_id)
    wish.fulfil(cmd.note)
    return _status(wish)


def confirm(cmd: c.ConfirmWish, uow: UnitOfWork, ctx: Context) -> Result:
    """Confirm the fulfilment and award the wish's points to a volunteer claimant:
    one confirmation, one award, ever — both land in the same transaction."""
    wish = _wish_for_write(uow, ctx, cmd.wish_id)
    passbook = (
        uow.get(Passbook, Passbook.create_id(wish.volunteer_id))
        if wish.volunteer_id is not None and wish.points > 0
        else None
    )
    confirmation_id, points, lot_id = confirm_wish(
        wish=wish, passbook=passbook, now=ctx.now, policy=ctx.expiry_policy, note=cmd.note
    )
    return {
        **_status(wish),
        "confirmation_id": str(confirmation_id),
        "points": points,
        "lot_id": str(lot_id) if lot_id else None,
    }


def cancel_wish(cmd: c.CancelWish, uow: UnitOfWork, ctx: Context) -> Result:
    wish = _wish_for_write(uow, ctx, cmd.wish_id)
    wish.cancel(cmd.reason)
    return _status(wish)


def erase_wish_resident_data(cmd: c.EraseWishResidentData, uow: UnitOfWork, ctx: Context) -> Result:
    """Admins only; the key is deleted once the domain has accepted the erasure and
    before the fact is committed (as for a volunteer)."""
    ctx.principal.ensure_admin()
    wish = uow.get(Wish, cmd.wish_id)
    wish.erase_resident_data(cmd.reason)
    ctx.vault.shred(wish.id)
    return {**_status(wish), "resident_erased": True}


HANDLERS: dict[type[c.Command], Handler] = {
    c.PostWish: post_wish,
    c.ClaimWish: claim_wish,
    c.ReleaseWish: release_wish,
    c.FulfilWish: fulfil_wish,
    c.ConfirmWish: confirm,
    c.CancelWish: cancel_wish,
    c.EraseWishResidentData: erase_wish_resident_data,
}
