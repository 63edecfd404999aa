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

_new = object.__new__
_set = object.__setattr__


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

    @classmethod
    def trusted(
        cls,
        event_id: UUID,
        position: int,
        type: str,
        version: int,
        aggregate_id: UUID,
        aggregate_version: int,
        recorded_at: datetime,
        actor: str,
        payload: dict[str, Any],
    ) -> EventEnvelope:
        """An envelope of values already of the fields' types (decoded from the event
        store, or checked by the caller): what ``model_construct`` builds with every
        field given, in a fraction of its time (it is paid once per event of every
        stream). The tests hold the two equal."""
        envelope = _new(cls)
        _set(
            envelope,
            "__dict__",
            {
                "event_id": event_id,
                "position": position,
                "type": type,
                "version": version,
                "aggregate_id": aggregate_id,
                "aggregate_version": aggregate_version,
                "recorded_at": recorded_at,
                "actor": actor,
                "payload": payload,
            },
        )
        _set(envelope, "__pydantic_fields_set__", set(_FIELDS))
        _set(envelope, "__pydantic_extra__", None)
        _set(envelope, "__pydantic_private__", None)
        return envelope

    @property
    def name(self) -> str:
        """The event class name, e.g. ``SignedUp``."""
        return self.type.rsplit(".", 1)[-1]

    @property
    def aggregate_type(self) -> str:
        """The aggregate class name, e.g. ``Activity``."""
        return self.type.rsplit(":", 1)[-1].split(".")[0]


_FIELDS = frozenset(EventEnvelope.model_fields)
