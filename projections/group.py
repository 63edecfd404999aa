"""Several read models fed by one thread from one subscription.

Runners of their own each poll the stream on a thread of their own: in one
process they either select and decode their events each (a stream that keeps
nothing) or share decoded events through the stream's cache, and either way
hand the interpreter to each other under the GIL. A :class:`RunnerGroup` reads
each record once (the union of its members' event types), and one thread applies
every batch to each member in turn, each in its own transaction with its own
position, exactly as the member would (``ProjectionRunner.apply_records``: a
member skips what it already applied, and parks a poison event without holding
up the others). Leaderboard and unit metrics from history, in one process:
1.73-1.86 s of CPU per 100,000 events this way, 2.30-2.39 s as two runner
threads on a shared stream.

``civic project NAME NAME...`` runs its read models as a group: on Kafka one
consumer (group ``civic.NAME+NAME...``) fetches and parses each record once for
all of them, where each read model's consumer did it again. ``civic serve
--kafka`` groups its runners too (``Platform.start_runners``). On the embedded
stream the runners inside ``civic serve`` keep their threads: grouped, the POSTs'
rate did not move.

The group subscribes from its members' lowest positions, per partition; a member
further ahead drops the records it has (inside its write transaction, as it does
for a redelivery). A member that stops (``ProjectionRunner.stop``: the view
swapper retiring a version) leaves the group; its replacement runs a thread of
its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import structlog

from projections.runner import POLL_SIZE, ProjectionRunner, close_quietly, gather_more
from projections.stream import EventStream, Subscription

log = structlog.get_logger(__name__)


class RunnerGroup:
    def __init__(
        self,
        runners: Sequence[ProjectionRunner],
        stream: EventStream,
        *,
        poll_timeout: float | None = None,
        retry_after: float = 1.0,
    ) -> None:
        if not runners:
            msg = "a group needs at least one runner"
            raise ValueError(msg)
        self.stream = stream
        # the name it subscribes by (on Kafka its consumer group): fixed, whoever leaves
        self.name = "+".join(r.name for r in runners)
        self.poll_timeout = (
            min(r.poll_timeout for r in runners) if poll_timeout is None else poll_timeout
        )
        self.retry_after = retry_after
        self._members = list(runners)
        self._lock = threading.Lock()
        self.batch_size = max(r.batch_size for r in runners)
        self.poll_size = min(POLL_SIZE, self.batch_size)
        self.gather_seconds = max(r.gather_seconds for r in runners)
        self.failures = 0
        self.last_error: str | None = None
        self._subscription: Subscription | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for runner in runners:
            runner.driven_by(self)

    @property
    def members(self) -> list[ProjectionRunner]:
        with self._lock:
            return list(self._members)

    # -- Driver ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def leave(self, runner: ProjectionRunner) -> None:
        with self._lock:
            if runner in self._members:
                self._members.remove(runner)
        if not self._stop.is_set():  # (not worth a line when the group stops anyway)
            log.info("projection.left_group", projection=runner.name, group=self.name)

    # -- what to read -------------------------------------------------------------------

    def _offsets(self, partitions: Sequence[int]) -> Mapping[int, int]:
        """Per partition, the lowest offset any member applied (-1: none applied)."""
        lowest: dict[int, int] = {}
        for runner in self.members:
            applied = runner.store.offsets(partitions)
            for p in partitions:
                offset = applied.get(p, -1)
                lowest[p] = min(lowest.get(p, offset), offset)
        return lowest

    def _types(self) -> frozenset[str] | None:
        """Every event type a member handles (None: a member takes every event)."""
        types: set[str] = set()
        for runner in self.members:
            subscribed = runner.projection.subscribed
            if subscribed is None:
                return None
            types |= subscribed
        return frozenset(types)

    def subscribe(self) -> Subscription:
        if self._subscription is None:
            self._subscription = self.stream.subscribe(self.name, self._offsets, self._types())
        return self._subscription

    def _drop_subscription(self) -> None:
        subscription, self._subscription = self._subscription, None
        close_quietly(subscription, group=self.name)

    # -- feeding -------------------------------------------------------------------------

    def run_once(self, timeout: float | None = None) -> int:
        """Read one batch and apply it to every member; the records it took."""
        members = self.members  # (a member that stops leaves: see ProjectionRunner.stop)
        if not members:
            return 0
        subscription = self.subscribe()
        records = subscription.poll(
            self.poll_size, self.poll_timeout if timeout is None else timeout
        )
        at_head = not records or gather_more(
            subscription, records, self.poll_size, self.batch_size, self.gather_seconds
        )
        for runner in members:
            if runner.stopped:  # left meanwhile (its view may be closing)
                continue
            if records:
                runner.apply_records(records)
            if at_head:
                runner.reached_head()
        if records:
            subscription.committed({r.partition: r.offset for r in records})
        return len(records)

    def catch_up(self, timeout: float = 0.05) -> int:
        """Apply everything currently available (tools, tests, benchmarks)."""
        total = 0
        while n := self.run_once(timeout):
            total += n
        return total

    def run_forever(self) -> None:
        log.info("projection.group_started", group=self.name)
        while not self._stop.is_set() and self.members:
            try:
                self.run_once()
            except Exception as exc:  # keep feeding; the error is reported
                self.failures += 1
                self.last_error = repr(exc)
                for runner in self.members:
                    runner.stats.failures += 1
                    runner.stats.last_error = repr(exc)
                log.exception("projection.group_poll_failed", group=self.name)
                # records read but not applied by every member come again: subscribe
                # afresh from the members' positions
                self._drop_subscription()
                self._stop.wait(self.retry_after)
        log.info("projection.group_stopped", group=self.name)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self.run_forever, name=f"projection-group-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._drop_subscription()
