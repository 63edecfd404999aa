"""Forgetting used idempotency keys after a retention period.

An ``Idempotency-Key`` is remembered with the answer it got (in the event store,
committed with the events, ``infra.event_store``) so that a retry replays that
answer instead of acting twice. Kept for ever, those records would grow with
every keyed request (a legacy import keys each of its items); like Stripe's API
and the IETF draft on the ``Idempotency-Key`` header, the platform keeps them for
a stated period (``CIVIC_IDEMPOTENCY_RETENTION_DAYS``, 90 by default; 0: for
ever) and then forgets them: a key used again after that is a new request. The
events themselves are never touched.

The pruner is a thread of the API process: every ``interval`` seconds it deletes
records older than the period, a small chunk per transaction so that command
groups wait for it at most a few milliseconds.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

CHUNK = 2_000
PAUSE = 0.05  # seconds between chunks: commands go first


class PrunesIdempotency(Protocol):
    def prune_idempotency(self, before: datetime, limit: int) -> int: ...


def prune(
    recorder: PrunesIdempotency, before: datetime, stop: threading.Event | None = None
) -> int:
    """Delete every idempotency record older than ``before``, chunk by chunk;
    returns how many (fewer if ``stop`` was set meanwhile)."""
    total = 0
    while True:
        deleted = recorder.prune_idempotency(before, CHUNK)
        total += deleted
        if deleted < CHUNK or (stop is not None and stop.wait(PAUSE)):
            return total


class IdempotencyPruner:
    def __init__(
        self, recorder: PrunesIdempotency, retention: timedelta, interval: float = 3600.0
    ) -> None:
        self.recorder = recorder
        self.retention = retention
        self.interval = interval
        self.pruned = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="idempotency-pruner", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> int:
        before = datetime.now(UTC) - self.retention
        deleted = prune(self.recorder, before, self._stop)
        self.pruned += deleted
        if deleted:
            log.info("idempotency.pruned", records=deleted, before=before.isoformat())
        return deleted

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:  # a busy or failing store: next time
                log.warning("idempotency.prune_failed", error=repr(exc))
