"""The envelope's JSON bytes (a Kafka record's value), straight from the stored state.

``infra.envelopes.envelope_from_notification(n).model_dump_json()`` is the
definition of a record's value (``docs/envelope.schema.json``). Two faster ways to
the same bytes live here:

``encode_envelope``
    parses the stored state with pydantic-core, unwraps the library's typed JSON,
    upcasts old versions and writes the envelope with pydantic-core (no model is
    built). It takes any event.

``EnvelopeWriter.encode``
    does not parse the state at all. The library writes every state with
    ``json`` (compact separators, ``ensure_ascii=False``), and pydantic-core
    writes strings, integers and non-exponent floats the same way, so the
    stored bytes after the standard fields (``timestamp``, ``originator_topic``,
    ``actor``; ``class_version`` at the end) *are* the payload, once each typed
    value (``{"_type_":"uuid_hex","_data_":"<hex>"}`` and the like) is replaced by
    its plain string. The envelope around it is a template per event type. A
    ``{"_type_"`` with unescaped quotes cannot occur inside a JSON string, so the
    byte-level replacement only ever meets typed values. Whatever this cannot
    vouch for (an old version to upcast, an unknown typed value, a float in
    exponent form, a ``\\u`` escape ``json`` would not write, a state in another
    layout) goes through ``encode_envelope``.

The tests compare both with the pydantic model byte for byte.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import pydantic_core
from eventsourcing.persistence import Notification

from infra.envelopes import decode_stored, event_class

_to_json = pydantic_core.to_json
_sha1 = hashlib.sha1
_VARIANT: Final = "89ab89ab89ab89ab"  # the RFC 4122 variant nibble for each hex digit
_VARIANT_OF: Final = dict(zip("0123456789abcdef", _VARIANT, strict=True))


def event_id_text(aggregate_key: bytes, version: int) -> str:
    """``str(uuid5(aggregate_id, str(version)))``, given ``aggregate_id.bytes``."""
    h = _sha1(aggregate_key + b"%d" % version).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_OF[h[16]]}{h[17:20]}-{h[20:32]}"


def _utc_text(iso: str) -> str:
    """A stored ISO 8601 instant as pydantic writes it (``Z`` for UTC)."""
    if iso.endswith("+00:00"):
        return iso[:-6] + "Z"
    return _to_json(datetime.fromisoformat(iso)).decode()[1:-1]


def encode_envelope(n: Notification, state: bytes | None = None) -> bytes:
    """The JSON value of the record for notification ``n`` (``state``: plaintext
    state when the store encrypts or compresses)."""
    recorded_at, actor, current, payload = decode_stored(n, state)
    aggregate_id = n.originator_id if isinstance(n.originator_id, UUID) else UUID(n.originator_id)
    return _to_json(
        {
            "event_id": event_id_text(aggregate_id.bytes, n.originator_version),
            "position": n.id,
            "type": n.topic,
            "version": current,
            "aggregate_id": str(aggregate_id),
            "aggregate_version": n.originator_version,
            "recorded_at": _utc_text(recorded_at),
            "actor": actor,
            "payload": payload,
        }
    )


# -- splicing ---------------------------------------------------------------------------

# The standard fields the library and ``domain.base`` write first, in this order (no
# escapes admitted). Every civic event has an actor.
_HEAD: Final = re.compile(
    rb'\{"timestamp":\{"_type_":"datetime_iso","_data_":"([^"\\]*)"\}'  # 1: recorded at
    rb'(,"originator_topic":"[^"\\]*")?'  # 2: on a created event
    rb',"actor":("[^"\\]*")'  # 3: the actor's JSON string
    rb"[,}]"
)
# What pydantic-core writes differently from ``json``: floats in exponent form
# (``1e-05`` against ``1e-5``) and ``\u`` escapes of anything but control
# characters (``json`` with ``ensure_ascii=False`` writes no others; both write
# everything else in a string, ``NaN`` and ``Infinity`` alike). A match inside a
# string only costs the slower path. Two searches: a regex starting with a literal
# is several times faster than one with alternatives or a character class.
_EXPONENT: Final = re.compile(rb"e[-+]\d(?<=\de[-+]\d)")  # "e" first: a fast literal scan
_ESCAPE: Final = re.compile(rb"\\u(?!00[01])")
_TYPED: Final = b'{"_type_":"'
_UUID_HEX: Final = b'uuid_hex","_data_":"'
_DATETIME_ISO: Final = b'datetime_iso","_data_":"'
_DECIMAL_STR: Final = b'decimal_str","_data_":"'


def _exponent_outside_strings(state: bytes, start: int, end: int) -> bool:
    """Whether ``state[start:end]`` (which starts outside any string) holds a float in
    exponent form. A match inside a string (base64 ciphertext can read ``7e-3``) does
    not count: an even number of quotes before it puts it outside. With a backslash
    before it (an escaped quote?), it counts: the slower path is always right."""
    pos = start
    while (match := _EXPONENT.search(state, pos, end)) is not None:
        before = state[start : match.start()]
        if before.count(b'"') % 2 == 0 or b"\\" in before:
            return True
        pos = match.end()
    return False


@dataclass(frozen=True, slots=True)
class AggregateRef:
    """What every envelope of one aggregate repeats."""

    id: UUID
    key: bytes  # the id's 16 bytes (what the event id's uuid5 hashes)
    text: bytes  # the id's canonical text, as JSON writes it (no quotes)

    @classmethod
    def of(cls, originator_id: UUID | str) -> AggregateRef:
        uid = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        return cls(uid, uid.bytes, str(uid).encode())


@dataclass(frozen=True, slots=True)
class _TypeTemplate:
    middle: bytes  # from the type to the aggregate id's opening quote
    current: int  # the class's current version
    version_tail: bytes  # how the state ends when it was stored at that version


class EnvelopeWriter:
    """Writes envelopes by splicing (see the module doc); keeps a template per
    event type. Falls back to ``encode_envelope`` on its own."""

    def __init__(self) -> None:
        self._types: dict[str, _TypeTemplate] = {}
        self._uuids: dict[bytes, bytes] = {}  # a typed UUID's hex -> its JSON string
        self.spliced = 0
        self.parsed = 0

    def _template(self, topic: str) -> _TypeTemplate:
        template = self._types.get(topic)
        if template is None:
            _, current = event_class(topic)
            template = self._types[topic] = _TypeTemplate(
                b',"type":%b,"version":%d,"aggregate_id":"' % (_to_json(topic), current),
                current,
                b',"class_version":%d}' % current if current > 1 else b"",
            )
        return template

    def encode(
        self,
        position: int,
        position_text: bytes,
        aggregate: AggregateRef,
        version: int,
        topic: str,
        state: bytes,
    ) -> bytes:
        """The envelope of one stored event (``state`` in plaintext;
        ``position_text``: ``b"%d" % position``)."""
        head = _HEAD.match(state)
        if head is None:
            return self._parse(position, aggregate, version, topic, state)
        iso, created, actor = head.groups()
        template = self._types.get(topic) or self._template(topic)
        # the payload's fields: from after the "," that ends the head (if it is not
        # the state's "}") up to the state's closing "}" or its class version
        start = head.end()
        tail = template.version_tail
        if tail:  # a versioned class: only a state stored at its current version
            if not state.endswith(tail):
                return self._parse(position, aggregate, version, topic, state)
            end = len(state) - len(tail)
        elif state.find(b',"class_version":', len(state) - 32) >= 0:  # the library's last key
            return self._parse(position, aggregate, version, topic, state)
        else:
            end = len(state) - 1
        if (
            (created is None and state.find(b'"originator_topic":', start, end) >= 0)
            or _exponent_outside_strings(state, start, end)
            or (state.find(b"\\", start, end) >= 0 and _ESCAPE.search(state, start, end))
        ):
            return self._parse(position, aggregate, version, topic, state)
        fields = state[start:end] if start < end else b""
        if b'"_type_"' in fields:
            plain = self._plain_fields(fields)
            if plain is None:
                return self._parse(position, aggregate, version, topic, state)
            fields = plain
        recorded = iso[:-6] + b"Z" if iso.endswith(b"+00:00") else _utc_text(iso.decode()).encode()
        self.spliced += 1
        return b"".join(
            (
                b'{"event_id":"',
                event_id_text(aggregate.key, version).encode(),
                b'","position":',
                position_text,
                template.middle,
                aggregate.text,
                b'","aggregate_version":%d,"recorded_at":"' % version,
                recorded,
                b'","actor":',
                actor,
                b',"payload":{',
                fields,
                b"}}",
            )
        )

    def _parse(
        self, position: int, aggregate: AggregateRef, version: int, topic: str, state: bytes
    ) -> bytes:
        self.parsed += 1
        notification = Notification(
            id=position,
            originator_id=aggregate.id,
            originator_version=version,
            topic=topic,
            state=state,
        )
        return encode_envelope(notification)

    def _plain_fields(self, fields: bytes) -> bytes | None:
        """The payload's fields (between its braces) with every typed value plain;
        ``None`` for a typed value of a kind or form ``encode_envelope`` would
        write otherwise."""
        parts = fields.split(_TYPED)
        if fields.count(b'"_type_"') != len(parts) - 1:  # "_type_" not first in a dict
            return None
        out = [parts[0]]
        uuids = self._uuids
        for part in parts[1:]:
            if part.startswith(_UUID_HEX):
                if part[52:54] != b'"}':  # exactly 32 characters
                    return None
                data = part[20:52]
                text = uuids.get(data)
                if text is None:
                    if not data.isalnum():  # ASCII letters and digits: no escapes
                        return None
                    if len(uuids) > 100_000:
                        uuids.clear()
                    h = data.lower()  # as infra.envelopes._uuid_str writes it
                    text = uuids[data] = b'"%b-%b-%b-%b-%b"' % (
                        h[:8],
                        h[8:12],
                        h[12:16],
                        h[16:20],
                        h[20:],
                    )
                out.append(text)
                out.append(part[54:])
            else:
                if part.startswith(_DATETIME_ISO):
                    skip = len(_DATETIME_ISO) - 1
                elif part.startswith(_DECIMAL_STR):
                    skip = len(_DECIMAL_STR) - 1
                else:
                    return None
                close = part.find(b'"}', skip + 1)
                if close < 0 or part.find(b"\\", skip, close) >= 0:
                    return None
                out.append(part[skip : close + 1])
                out.append(part[close + 2 :])
        return b"".join(out)
