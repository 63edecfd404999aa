"""The stream abstraction projections consume.

Two implementations sit behind it: the embedded follower of the event store's
notification log (``infra.embedded_stream``) and Kafka consumer groups
(``infra.kafka_stream``). A stream is split into partitions; each record has an
offset that increases within its partition. A subscriber tells the stream where
it is (the last offset it applied per partition, read from its own database) and
the stream delivers what comes after.

A subscriber may name the event types it handles. A stream may then leave out the
events of other types: it still delivers a record for them (or one for a run of
them, at the last one's offset) so the subscriber's position moves past them,
but without its event (``event`` is None), so nobody pays for decoding an event
that no handler reads. A stream may also ignore the types and deliver every event
(the embedded stream does while it shares decoded events among subscribers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from projections.envelope import EventEnvelope

# Given the partitions just assigned, return the last offset applied in each
# (-1 where nothing was applied yet). Called on start and on every rebalance.
PositionLookup = Callable[[Sequence[int]], Mapping[int, int]]


@dataclass(frozen=True, slots=True)
class StreamRecord:
    partition: int
    offset: int
    position: int  # the event's global position in the store
    event: EventEnvelope | None  # None: of a type the subscriber does not handle

    @classmethod
    def of(cls, partition: int, offset: int, event: EventEnvelope) -> StreamRecord:
        return cls(partition, offset, event.position, event)


class Subscription(Protocol):
    def poll(self, max_records: int, timeout: float) -> list[StreamRecord]:
        """Next records after what was delivered (or after the looked-up positions)."""
        ...

    def committed(self, offsets: Mapping[int, int]) -> None:
        """Tell the stream these offsets are durably applied (advisory only: the
        subscriber's own database is the source of its position)."""
        ...

    def lag(self) -> int | None:
        """Records not yet delivered, if the stream knows."""
        ...

    def close(self) -> None: ...


class EventStream(Protocol):
    def subscribe(
        self, group: str, lookup: PositionLookup, types: frozenset[str] | None = None
    ) -> Subscription:
        """``types``: the event types the subscriber handles (None: all of them)."""
        ...

    def head(self) -> int:
        """The latest global position available on the stream (0 when empty)."""
        ...
