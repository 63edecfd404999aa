"""The full history of any aggregate, read from the event store itself (not a
read model) and decoded by the application's mapper, so old event versions are
upcast exactly as the aggregates see them.

``volunteer_history`` gathers everything about one person: their volunteer and
passbook aggregates, every aggregate created about them (redemptions), and the
events of other aggregates that name them (sign-ups, check-ins, confirmations in
activities). Which aggregates to look at comes from the audit trail; what they
say comes from the store.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from domain.errors import NotFoundError
from domain.passbook import Passbook
from infra.hash_chain import RecordedEvent
from infra.vault import is_token
from projections.audit_related import related_aggregates
from services.application import CivicApplication
from services.audit.chain import chain_table
from services.personal_data import vault_subject

_STANDARD = frozenset({"originator_id", "originator_version", "timestamp", "actor"})


class HistoryEntry(BaseModel):
    position: int = Field(description="global position in the event store")
    aggregate_id: UUID
    aggregate_type: str
    version: int = Field(description="the aggregate's version after this event")
    type: str = Field(description="the event's class, e.g. PointsAwarded")
    topic: str
    recorded_at: datetime
    actor: str
    reason: str | None
    payload: dict[str, Any] = Field(description="the event's own fields (upcast)")
    chain_hash: str | None = Field(description="the event's link in the hash chain (hex)")


class History(BaseModel):
    subject_id: UUID
    subject_type: str
    aggregates: list[UUID] = Field(description="the aggregates the history was read from")
    entries: list[HistoryEntry]


def _entry(app: CivicApplication, recorded: RecordedEvent) -> HistoryEntry:
    event: Any = app.mapper.to_domain_event(recorded.stored)
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    payload = {
        k: to_jsonable_python(v) for k, v in fields.items() if k not in _STANDARD and k[0] != "_"
    }
    payload.pop("originator_topic", None)
    subject = vault_subject(event)  # personal data is sealed per record
    for field, value in payload.items():
        if isinstance(value, str) and is_token(value):
            payload[field] = app.vault.reveal(subject, field, value)
    qualname = recorded.stored.topic.rpartition(":")[2]
    aggregate_type, _, event_type = qualname.rpartition(".")
    reason = payload.get("reason")
    return HistoryEntry(
        position=recorded.position,
        aggregate_id=UUID(str(recorded.stored.originator_id)),
        aggregate_type=aggregate_type,
        version=recorded.stored.originator_version,
        type=event_type,
        topic=recorded.stored.topic,
        recorded_at=event.timestamp,
        actor=str(getattr(event, "actor", "system")),
        reason=reason if isinstance(reason, str) else None,
        payload=payload,
        chain_hash=recorded.hash.hex() if recorded.hash is not None else None,
    )


def aggregate_entries(app: CivicApplication, aggregate_id: UUID) -> list[HistoryEntry]:
    return [_entry(app, r) for r in chain_table(app).recorded(aggregate_id)]


def aggregate_history(app: CivicApplication, aggregate_id: UUID) -> History:
    entries = aggregate_entries(app, aggregate_id)
    if not entries:
        raise NotFoundError(f"nothing was ever recorded about {aggregate_id}")
    return History(
        subject_id=aggregate_id,
        subject_type=entries[0].aggregate_type,
        aggregates=[aggregate_id],
        entries=entries,
    )


def concerned_volunteer(history: History) -> UUID | None:
    """Whose personal data a history shows (None when it is not about one person)."""
    first = history.entries[0]
    if first.aggregate_type == "Volunteer":
        return first.aggregate_id
    volunteer = first.payload.get("volunteer_id") if first.version == 1 else None
    return UUID(str(volunteer)) if volunteer else None


def volunteer_history(
    app: CivicApplication, volunteer_id: UUID, audit_trail: sqlite3.Connection | None
) -> History:
    """Everything recorded about one volunteer, in store order."""
    own = aggregate_entries(app, volunteer_id)
    if not own or own[0].aggregate_type != "Volunteer":
        raise NotFoundError(f"volunteer {volunteer_id} not found")
    ids: list[UUID] = [volunteer_id, Passbook.create_id(volunteer_id)]
    if audit_trail is not None:
        ids += [UUID(a) for a in related_aggregates(audit_trail, str(volunteer_id))]
    entries = list(own)
    seen = {volunteer_id}
    for aggregate_id in ids:
        if aggregate_id in seen:
            continue
        seen.add(aggregate_id)
        entries += _about(aggregate_entries(app, aggregate_id), str(volunteer_id))
    entries.sort(key=lambda e: e.position)
    return History(
        subject_id=volunteer_id,
        subject_type="Volunteer",
        aggregates=_distinct(e.aggregate_id for e in entries),
        entries=entries,
    )


def _about(entries: list[HistoryEntry], volunteer_id: str) -> list[HistoryEntry]:
    """All of an aggregate created about the volunteer; else the events naming them."""
    if not entries:
        return []
    if entries[0].payload.get("volunteer_id") == volunteer_id:
        return entries
    return [e for e in entries if e.payload.get("volunteer_id") == volunteer_id]


def _distinct(ids: Iterable[UUID]) -> list[UUID]:
    return list(dict.fromkeys(ids))
