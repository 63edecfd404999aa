"""Community charity funds (社区慈善基金): one per unit; money in and out in fen."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from pydantic import Field

from domain.funds import PurposeKind, SourceKind
from services import commands as c
from services import community_queries as q
from services.api.deps import PlatformDep, PrincipalDep, WriteDep
from services.api.execute import run
from services.api.problems import problems
from services.api.schemas import Body, ReasonBody, WriteResponse
from services.commands.base import Text
from services.commands.funds import Fen

router = APIRouter(prefix="/v1/funds", tags=["funds"])


class FundOpened(WriteResponse):
    fund_id: UUID
    unit_id: UUID
    balance_fen: int


class MovementRecorded(WriteResponse):
    fund_id: UUID
    movement_id: UUID
    direction: str
    amount_fen: int
    balance_fen: int = Field(description="the fund's balance after the movement")


class DonorErased(WriteResponse):
    fund_id: UUID
    movement_id: UUID
    donor_erased: bool
    balance_fen: int


class ReceiptBody(Body):
    amount_fen: Fen
    source_kind: SourceKind
    purpose: Text
    donor: Annotated[str, Field(max_length=200)] = ""
    approved_by: Annotated[str, Field(max_length=200)] = ""
    movement_id: UUID | None = None


class DisbursementBody(Body):
    amount_fen: Fen
    purpose_kind: PurposeKind
    purpose: Text
    approved_by: Text
    beneficiaries: int = Field(default=0, ge=0, le=1_000_000)
    movement_id: UUID | None = None


@router.post(
    "",
    status_code=201,
    summary="Open a unit's charity fund (one per unit)",
    responses=problems(403, 404, 409),
)
async def open_fund(command: c.OpenFund, write: WriteDep) -> FundOpened:
    return await run(write, command, FundOpened, location=lambda r: f"/v1/funds/{r.fund_id}")


@router.get(
    "/{fund_id}",
    summary="A fund's balance, totals in and out, and every movement",
    responses=problems(403, 404),
)
def get_fund(fund_id: UUID, platform: PlatformDep, principal: PrincipalDep) -> q.FundView:
    return q.get_fund(platform.app, principal, fund_id)


@router.post(
    "/{fund_id}/receipts",
    status_code=201,
    summary="Money in: a donation, a charity sale's takings, a grant (amounts in fen)",
    responses=problems(403, 404, 409),
)
async def receive(fund_id: UUID, body: ReceiptBody, write: WriteDep) -> MovementRecorded:
    command = c.ReceiveMoney(fund_id=fund_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, MovementRecorded)


@router.post(
    "/{fund_id}/disbursements",
    status_code=201,
    summary="Money out, with its purpose and named approver; never beyond the balance",
    description="A payment larger than the balance is refused with 409 `insufficient-funds`; "
    "the approver is required and cannot be the recording key.",
    responses=problems(403, 404, 409),
)
async def disburse(fund_id: UUID, body: DisbursementBody, write: WriteDep) -> MovementRecorded:
    command = c.DisburseMoney(fund_id=fund_id, **body.model_dump(exclude_unset=True))
    return await run(write, command, MovementRecorded)


@router.post(
    "/{fund_id}/movements/{movement_id}/erasure",
    summary="Erase the donor's name on a receipt (right to erasure; admins only)",
    description=(
        "Records a `Fund.DonorDataErased` fact (no personal data in it) and deletes the "
        "movement's personal-data key: the donor's name becomes unreadable everywhere "
        '(the fund\'s history shows "[erased]"), while the amount, the balances, the '
        "metrics and the audit trail stay. 404 `movement-not-found` for a movement not in "
        "the fund; 409 `no-donor` for one that names no donor, `donor-erased` when done "
        "already. Final."
    ),
    responses=problems(403, 404, 409),
)
async def erase_donor(
    fund_id: UUID, movement_id: UUID, body: ReasonBody, write: WriteDep
) -> DonorErased:
    command = c.EraseDonorData(fund_id=fund_id, movement_id=movement_id, reason=body.reason)
    return await run(write, command, DonorErased)
