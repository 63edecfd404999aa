"""The base aggregate and event classes shared by every aggregate.

Every event records *who* did it (``actor``) from a context variable that the
service layer sets for the duration of a command, so domain methods need not
thread the actor through every signature (the pattern of the eventsourcing
library's content-management example).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import field
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, datetime_now_with_tzinfo

from domain.uuids import uuid5_of

SYSTEM_ACTOR = "system"

actor_cvar: ContextVar[str] = ContextVar("actor", default=SYSTEM_ACTOR)
now_cvar: ContextVar[datetime | None] = ContextVar("now", default=None)

# Namespace for every name-based (uuid5) id in the platform.
CIVIC_NAMESPACE = UUID("6f3c1d2e-8b4a-5c7d-9e0f-1a2b3c4d5e6f")


def current_actor() -> str:
    return actor_cvar.get()


@contextmanager
def acting_as(actor: str, now: datetime | None = None) -> Iterator[None]:
    """Record ``actor`` on every event triggered inside the block, and ``now`` (the
    command's time, decided by the service) as the events' timestamp."""
    actor_token = actor_cvar.set(actor)
    now_token = now_cvar.set(now)
    try:
        yield
    finally:
        now_cvar.reset(now_token)
        actor_cvar.reset(actor_token)


def unique_name_id(*parts: object) -> UUID:
    """The deterministic id of ``parts`` (``uuid5`` of them joined with ``/`` in the
    platform's namespace), for a key that comes up once (a lot opened for one
    award): not remembered, so it does not push the recurring ones out of
    :func:`name_id`'s memory."""
    return uuid5_of(CIVIC_NAMESPACE, "/".join([str(p) for p in parts]))


@lru_cache(maxsize=65_536, typed=True)
def name_id(*parts: object) -> UUID:
    """A deterministic id for something found by a natural key (the same keys come
    back on every command for an aggregate, e.g. a volunteer's passbook: remembered)."""
    return unique_name_id(*parts)


_IMMUTABLE = (str, int, float, bool, UUID, datetime, Enum, type(None), frozenset)


def _clone(value: Any) -> Any:
    if isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return type(value)(_clone(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        clone = object.__new__(type(value))  # state records hold immutable fields only
        clone.__dict__.update(value.__dict__)
        return clone
    return copy.deepcopy(value)


class CivicAggregate(Aggregate):
    """Base aggregate: its events carry the acting principal.

    Aggregate state is made of immutable values, containers of them, and flat
    dataclasses of immutable fields (``Lot``, ``Attendance``), which lets the
    repository's cache hand out copies cheaply (``__deepcopy__`` below) instead of
    walking every object generically.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> CivicAggregate:
        clone = object.__new__(type(self))
        clone.__dict__.update({k: _clone(v) for k, v in self.__dict__.items()})
        return clone

    class Event(Aggregate.Event):
        actor: str = field(default_factory=current_actor, init=False)

        @staticmethod
        def create_timestamp() -> datetime:
            return now_cvar.get() or datetime_now_with_tzinfo()

    class Created(Aggregate.Created, Event):
        pass


def as_aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        msg = "timestamps must be timezone-aware"
        raise ValueError(msg)
    return at
