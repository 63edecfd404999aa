"""The base class of every projection: tables, and how a batch of events applies."""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from eventsourcing.utils import get_topic

from projections.envelope import EventEnvelope
from projections.periods import DEFAULT_TIMEZONE

Handler = Callable[[Any, Any, Any, EventEnvelope], None]  # (self, conn, batch, envelope)
H = TypeVar("H", bound=Handler)


def handles(*event_classes: type) -> Callable[[H], H]:
    """Mark a method as the handler of the given domain event classes."""

    def decorate(method: H) -> H:
        method.__handles__ = [get_topic(c) for c in event_classes]  # type: ignore[attr-defined]
        return method

    return decorate


class Projection(ABC):
    """A read model. Subclasses declare ``name``, their DDL, a per-batch state and
    handlers marked with :func:`handles`; :meth:`apply` runs a batch of events
    through them inside the runner's transaction and then flushes the batch."""

    name: ClassVar[str]
    handlers: ClassVar[dict[str, str]]
    # True for a read model that records every event, also of types it has no
    # handler for (the audit trail): a stream must then deliver it every event
    takes_every_event: ClassVar[bool] = False
    # CREATE INDEX statements that serve reads only (no handler's statement needs
    # them). A runner that starts far behind the stream creates them once it has
    # caught up: one sorted build each instead of an entry updated per row.
    read_indexes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for topic in getattr(value, "__handles__", ()):
                    table[topic] = attr
        cls.handlers = table

    @property
    def topics(self) -> frozenset[str]:
        """The event types this read model has handlers for."""
        return frozenset(self.handlers)

    @property
    def subscribed(self) -> frozenset[str] | None:
        """The event types a stream must deliver with their event (None: all); the
        others only move the read model's position."""
        if self.takes_every_event:
            return None
        if not self.handlers:  # it would be fed nothing: surely a mistake
            msg = (
                f"{type(self).__name__} has no handlers: mark methods with @handles, or set "
                "takes_every_event = True if its apply() takes every event"
            )
            raise TypeError(msg)
        return self.topics

    @abstractmethod
    def create_tables(self, conn: sqlite3.Connection) -> None: ...

    @abstractmethod
    def begin_batch(self, conn: sqlite3.Connection) -> Any:
        """State that handlers accumulate into for one batch (e.g. counters)."""

    @abstractmethod
    def flush_batch(self, conn: sqlite3.Connection, batch: Any) -> None:
        """Write the accumulated batch state in the current transaction."""

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        batch = self.begin_batch(conn)
        handler_of = self._bound_handlers().get
        for envelope in events:
            handler = handler_of(envelope.type)
            if handler is not None:
                handler(conn, batch, envelope)
        self.flush_batch(conn, batch)

    def _bound_handlers(self) -> dict[str, Callable[[Any, Any, EventEnvelope], None]]:
        """Each topic's handler, bound to this projection once (not once per event)."""
        bound: dict[str, Callable[[Any, Any, EventEnvelope], None]] | None = self.__dict__.get(
            "_bound"
        )
        if bound is None:
            bound = self.__dict__["_bound"] = {
                topic: getattr(self, attr) for topic, attr in self.handlers.items()
            }
        return bound


class RowProjection(Projection):
    """A read model whose handlers write their rows directly, with no state kept
    over a batch (boards of few, rarely changing rows): the tables are ``ddl``'s
    statements. It takes the network's timezone like every read model; its
    times are kept as recorded."""

    ddl: ClassVar[tuple[str, ...]]

    def __init__(self, *, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.timezone = timezone

    def create_tables(self, conn: sqlite3.Connection) -> None:
        for statement in self.ddl:
            conn.execute(statement)

    def begin_batch(self, conn: sqlite3.Connection) -> None:
        return None

    def flush_batch(self, conn: sqlite3.Connection, batch: None) -> None:
        return None
