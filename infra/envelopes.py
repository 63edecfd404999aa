"""Turning stored events into stream envelopes.

The library stores each event as JSON with typed wrappers (``{"_type_": "uuid_hex",
"_data_": ...}``); an envelope carries plain JSON (ids as canonical strings, times
as ISO 8601). Old event versions are upcast with the event class's own
``upcast_vN_vN+1`` methods, exactly as the library's mapper does, so every reader
of the stream sees the current version of each event.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import pydantic_core
from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from domain.uuids import uuid5_of
from projections.envelope import EventEnvelope

_STANDARD_FIELDS = ("timestamp", "originator_topic", "actor")
_CACHE_LIMIT: Final = 200_000

_HEX = re.compile(r"[0-9a-f]{32}")
_from_json = pydantic_core.from_json
_fromisoformat = datetime.fromisoformat
_trusted = EventEnvelope.trusted

# ids repeat (a volunteer's, a unit's, an activity's appear in thousands of events):
# each stored form is turned into its canonical text once
_uuid_texts: dict[str, str] = {}


def _uuid_str(data: str) -> str:
    """The canonical form of a UUID the library stored as ``UUID.hex`` (32 lowercase
    hex digits): the dashes added by slicing, ~10x cheaper than ``str(UUID(data))``."""
    text = _uuid_texts.get(data)
    if text is None:
        if len(data) == 32 and data.islower() and _HEX.fullmatch(data):
            text = f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"
        else:
            text = str(UUID(data))
        if len(_uuid_texts) >= _CACHE_LIMIT:
            _uuid_texts.clear()
        _uuid_texts[data] = text
    return text


def _plain(value: Any) -> Any:
    """Unwrap the library's typed JSON (``{"_type_": ..., "_data_": ...}``) at any depth."""
    kind = type(value)
    if kind is dict:
        tag = value.get("_type_")
        if tag is None:
            return {k: _plain(v) for k, v in value.items()}
        data = value["_data_"]
        return _uuid_str(data) if tag == "uuid_hex" else data  # times, decimals: strings
    if kind is list:
        return [_plain(v) for v in value]
    return value


_CLASSES: dict[str, tuple[Any, int]] = {}


def event_class(topic: str) -> tuple[Any, int]:
    """The event class of a stored topic and its current ``class_version``."""
    found = _CLASSES.get(topic)
    if found is None:
        cls = resolve_topic(topic)
        found = _CLASSES[topic] = (cls, getattr(cls, "class_version", 1))
    return found


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """``uuid5(aggregate_id, str(version))``, without its argument checks."""
    return uuid5_of(aggregate_id, str(version))


def decode_stored(n: Notification, state: bytes | None = None) -> tuple[str, Any, int, Any]:
    """A stored event's recorded time (ISO 8601 text), actor, current version and plain
    payload, upcast to that version. ``state`` is the plaintext state when the store
    encrypts or compresses."""
    return decode_state(n.topic, state if state is not None else n.state)


def decode_state(topic: str, state: bytes) -> tuple[str, Any, int, Any]:
    """:func:`decode_stored` of an event of ``topic`` whose plaintext state is ``state``."""
    stored: dict[str, Any] = _from_json(state)
    recorded_at = _plain(stored.pop("timestamp"))
    stored.pop("originator_topic", None)
    actor = _plain(stored.pop("actor", "system"))
    version = stored.pop("class_version", 1)
    payload = {k: _plain(v) if type(v) is dict or type(v) is list else v for k, v in stored.items()}
    cls, current = event_class(topic)
    while version < current:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(payload)
        version += 1
    return recorded_at, actor, current, payload


def envelope_from_notification(n: Notification, state: bytes | None = None) -> EventEnvelope:
    """``state`` is the plaintext state when the store encrypts or compresses."""
    return envelope_from_row(
        n.id,
        n.originator_id,
        n.originator_version,
        n.topic,
        state if state is not None else n.state,
    )


# aggregate ids as the SQLite store gives them (text), each parsed once
_aggregate_ids: dict[str, UUID] = {}


def envelope_from_row(
    position: int, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> EventEnvelope:
    """The envelope of a stored event given as a row (see ``infra.stored_rows``);
    ``state`` is its plaintext state."""
    recorded_at, actor, current, payload = decode_state(topic, state)
    if isinstance(originator_id, UUID):
        aggregate_id = originator_id
    else:
        found = _aggregate_ids.get(originator_id)
        if found is None:
            if len(_aggregate_ids) >= _CACHE_LIMIT:
                _aggregate_ids.clear()
            found = _aggregate_ids[originator_id] = UUID(originator_id)
        aggregate_id = found
    return _trusted(
        event_id(aggregate_id, version),
        position,
        topic,
        current,
        aggregate_id,
        version,
        _fromisoformat(recorded_at),
        actor,
        payload,
    )
