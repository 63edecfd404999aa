"""UUIDs built without ``uuid.UUID.__init__``'s argument checks.

The writer thread makes a few ids per command: a random one for a manual award,
a name-based (version 5) one for the lot it opens. ``uuid.uuid5`` and
``UUID(bytes=..., version=4)`` spend most of their ~2-3 µs checking and
converting arguments we already know to be right; here the 128-bit value is
computed directly and set the way ``UUID.__init__`` itself sets it. The results
are equal to the standard library's (``tests/unit/test_uuids.py`` compares them).
"""

from __future__ import annotations

from hashlib import sha1
from uuid import UUID, SafeUUID

_new = object.__new__
_set = object.__setattr__
_unknown = SafeUUID.unknown

# RFC 4122: clear the version nibble and the variant bits, then set them
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_VARIANT = 0x8000 << 48
_V4 = (4 << 76) | _VARIANT
_V5 = (5 << 76) | _VARIANT


def _uuid(value: int) -> UUID:
    uuid = _new(UUID)
    _set(uuid, "int", value)
    _set(uuid, "is_safe", _unknown)
    return uuid


def uuid4_from(random16: bytes) -> UUID:
    """``UUID(bytes=random16, version=4)``."""
    return _uuid((int.from_bytes(random16, "big") & _CLEAR) | _V4)


def uuid5_of(namespace: UUID, name: str) -> UUID:
    """``uuid.uuid5(namespace, name)``."""
    digest = sha1(namespace.bytes + name.encode(), usedforsecurity=False).digest()
    return _uuid((int.from_bytes(digest[:16], "big") & _CLEAR) | _V5)
