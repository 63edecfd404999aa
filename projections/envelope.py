"""The event envelope: how a recorded event travels on a stream.

The same envelope is produced by the embedded stream (following the event store's
notification log) and carried as the JSON value of each Kafka message, so a
projection cannot tell which stream fed it. ``EventEnvelope.model_json_schema()``
documents the wire format for other services and tools.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class EventEnvelope(BaseModel):
    """One recorded domain event, in plain JSON types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(description="uuid5 of the aggregate id and version: stable")
    position: int = Field(ge=1, description="global position in the event store")
    type: str = Field(description="event class topic, e.g. 'domain.activities:Activity.SignedUp'")
    version: int = Field(ge=1, description="event class version, after upcasting")
    aggregate_id: UUID
    aggregate_version: int = Field(ge=1)
    recorded_at: datetime = Field(description="when the event was recorded (UTC)")
    actor: str = Field(description="the principal that caused the event")
    payload: dict[str, Any] = Field(
        description="the event's own fields; ids as strings, times as ISO 8601"
    )

    @property
    def name(self) -> str:
        """The event class name, e.g. ``SignedUp``."""
        return self.type.rsplit(".", 1)[-1]

    @property
    def aggregate_type(self) -> str:
        """The aggregate class name, e.g. ``Activity``."""
        return self.type.rsplit(":", 1)[-1].split(".")[0]
