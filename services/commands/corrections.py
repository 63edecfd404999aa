"""Commands on corrections of service records: request, approve, reject."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from services.commands.base import Command, Hours, LongText, Reason


class RequestServiceCorrection(Command):
    type: Literal["request_service_correction"] = "request_service_correction"
    correction_id: UUID | None = Field(default=None, description="client-chosen id (optional)")
    activity_id: UUID
    volunteer_id: UUID
    hours: Hours = Field(description="the hours the service record should say")
    reason: Reason


class ApproveServiceCorrection(Command):
    type: Literal["approve_service_correction"] = "approve_service_correction"
    correction_id: UUID
    note: LongText = ""


class RejectServiceCorrection(Command):
    type: Literal["reject_service_correction"] = "reject_service_correction"
    correction_id: UUID
    reason: Reason
