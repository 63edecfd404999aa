"""The stream abstraction projections consume.

Two implementations sit behind it: the embedded follower of the event store's
notification log (``infra.embedded_stream``) and Kafka consumer groups
(``infra.kafka_stream``). A stream is split into partitions; each record has an
offset that increases within its partition. A subscriber tells the stream where
it is (the last offset it applied per partition, read from its own database) and
the stream delivers what comes after.
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
    event: EventEnvelope


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
    def subscribe(self, group: str, lookup: PositionLookup) -> Subscription: ...

    def head(self) -> int:
        """The latest global position available on the stream (0 when empty)."""
        ...
