"""Commands the audit interface records for itself (not accepted in batches)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from services.commands.base import Command

Purpose = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class RecordPersonalDataView(Command):
    type: Literal["record_personal_data_view"] = "record_personal_data_view"
    day: date  # the local day the view happened on
    subject_id: UUID
    subject_type: str = Field(min_length=1, max_length=64)
    view: str = Field(min_length=1, max_length=64)
    purpose: Purpose = ""


class RecordChainCheckpoint(Command):
    type: Literal["record_chain_checkpoint"] = "record_chain_checkpoint"
    unit_id: UUID
    quarter: str = Field(pattern=r"^\d{4}-Q[1-4]$")
    position: int = Field(ge=0)
    chain_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    subtree_events: int = Field(ge=0)
    signature: str = Field(pattern=r"^[0-9a-f]{64}$")
