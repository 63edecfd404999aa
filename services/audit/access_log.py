"""The personal-data access log: every read of a person's data through the audit
interface is itself recorded, as a ``PersonalDataViewed`` event in the store
(immutable and chained like any other), before the data is handed out.

One ``AccessLog`` aggregate per local day; reading the log walks the days asked for.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, Field

from domain.audit import AccessLog
from domain.errors import RuleViolationError
from services.application import CivicApplication
from services.audit.history import aggregate_entries
from services.commands.audit import RecordPersonalDataView
from services.principals import Principal

log = structlog.get_logger(__name__)

MAX_DAYS = 366


def local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


def record_view(
    app: CivicApplication,
    principal: Principal,
    *,
    timezone: str,
    subject_id: UUID,
    subject_type: str,
    view: str,
    purpose: str | None,
) -> int | None:
    """Record that ``principal`` is reading ``subject_id``'s data; returns the position."""
    outcome = app.execute(
        RecordPersonalDataView(
            day=local_day(app.clock(), timezone),
            subject_id=subject_id,
            subject_type=subject_type,
            view=view,
            purpose=purpose or "",
        ),
        principal,
    )
    log.info(
        "audit.personal_data_viewed",
        subject_id=str(subject_id),
        view=view,
        position=outcome.position,
    )
    return outcome.position


class AccessLogEntry(BaseModel):
    position: int
    at: datetime
    actor: str = Field(description="who looked")
    subject_id: UUID = Field(description="whose data")
    subject_type: str
    view: str = Field(description="what was read: history, certificate, ...")
    purpose: str


def read_access_log(
    app: CivicApplication,
    *,
    since: date,
    until: date,
    subject_id: UUID | None = None,
    actor: str | None = None,
) -> list[AccessLogEntry]:
    """Views recorded on the local days ``since`` to ``until`` (inclusive)."""
    days = (until - since).days + 1
    if days < 1 or days > MAX_DAYS:
        raise RuleViolationError(
            f"give from <= to, at most {MAX_DAYS} days apart", code="invalid-period"
        )
    entries = []
    for offset in range(days):
        for e in aggregate_entries(app, AccessLog.create_id(since + timedelta(days=offset))):
            if e.type != "PersonalDataViewed":
                continue
            entry = AccessLogEntry(
                position=e.position,
                at=e.recorded_at,
                actor=e.actor,
                subject_id=UUID(str(e.payload["subject_id"])),
                subject_type=str(e.payload["subject_type"]),
                view=str(e.payload["view"]),
                purpose=str(e.payload["purpose"]),
            )
            if (subject_id is None or entry.subject_id == subject_id) and (
                actor is None or entry.actor == actor
            ):
                entries.append(entry)
    return entries
