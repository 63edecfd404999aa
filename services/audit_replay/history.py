"""Reading the event history: every event as an envelope, in store order, a page at
a time (a history of millions of events never sits in memory whole)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from infra.envelopes import envelope_from_notification
from projections.envelope import EventEnvelope

PAGE = 5000


def pages(
    recorder: ApplicationRecorder,
    *,
    upto: int | None = None,
    as_of: datetime | None = None,
    page: int = PAGE,
) -> Iterator[list[EventEnvelope]]:
    """Envelopes from position 1 (up to ``upto`` included), ``page`` at a time.

    With ``as_of``, only events recorded at or before it (see the package notes).
    """
    after = 0
    while True:
        notifications = recorder.select_notifications(
            start=after, limit=page, stop=upto, inclusive_of_start=False
        )
        if not notifications:
            return
        after = notifications[-1].id
        envelopes = [envelope_from_notification(n) for n in notifications]
        if as_of is not None:
            envelopes = [e for e in envelopes if e.recorded_at <= as_of]
        if envelopes:
            yield envelopes
        if len(notifications) < page or (upto is not None and after >= upto):
            return


def head(recorder: ApplicationRecorder) -> int:
    return int(recorder.max_notification_id() or 0)


def aggregate_events(app: Any, aggregate_id: UUID) -> list[Any]:
    """An aggregate's domain events, oldest first (upcast by the library's mapper)."""
    return list(app.events.get(aggregate_id))


def aggregate_event_stream(app: Any, aggregate_id: UUID, page: int = 1000) -> Iterator[Any]:
    """An aggregate's domain events, read ``page`` at a time (for exports)."""
    after: int | None = None
    while True:
        events = list(app.events.get(aggregate_id, gt=after, limit=page))
        yield from events
        if len(events) < page:
            return
        after = events[-1].originator_version
