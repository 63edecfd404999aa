"""Commands on the community charity funds (社区慈善基金). Amounts are integer fen:
JSON numbers with a fraction, and strings, are refused (``strict``)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from domain.funds import MAX_MOVEMENT_FEN, PurposeKind, SourceKind
from services.commands.base import Command, Reason, Text

Fen = Annotated[
    int,
    Field(strict=True, ge=1, le=MAX_MOVEMENT_FEN, description="an amount in fen (1 yuan = 100)"),
]


class OpenFund(Command):
    type: Literal["open_fund"] = "open_fund"
    unit_id: UUID
    title: Text


class ReceiveMoney(Command):
    """Money into the fund: a donation, a charity sale's takings, a grant."""

    type: Literal["receive_money"] = "receive_money"
    fund_id: UUID
    amount_fen: Fen
    source_kind: SourceKind
    purpose: Text = Field(description="what the money is for or came from, e.g. 重阳节义卖")
    donor: Annotated[str, Field(max_length=200)] = Field(
        default="", description="who gave it (kept out of the audit summary)"
    )
    approved_by: Annotated[str, Field(max_length=200)] = ""
    movement_id: UUID | None = Field(default=None, description="makes the receipt idempotent")


class DisburseMoney(Command):
    """Money out of the fund, e.g. meal subsidies for low-income elderly. Refused
    with ``insufficient-funds`` beyond the balance."""

    type: Literal["disburse_money"] = "disburse_money"
    fund_id: UUID
    amount_fen: Fen
    purpose_kind: PurposeKind
    purpose: Text
    approved_by: Text = Field(description="who approved the payment (not the recording key)")
    beneficiaries: int = Field(default=0, ge=0, le=1_000_000, description="people it served")
    movement_id: UUID | None = Field(default=None, description="makes the payment idempotent")


class EraseDonorData(Command):
    """Right to erasure for the donor named on one receipt: the sealed name becomes
    unreadable everywhere; the amount and the fund's balances stay. Not a batch
    item: erasure is one deliberate act."""

    type: Literal["erase_donor_data"] = "erase_donor_data"
    fund_id: UUID
    movement_id: UUID
    reason: Reason
