"""The civic application: a thin command/query facade over the event store.

Commands run through :meth:`CivicApplication.execute` (one command) or
:meth:`CivicApplication.execute_batch` (many, one transaction). Both honour
idempotency keys atomically with the events they record, retry on optimistic
concurrency conflicts (so two sign-ups racing for an activity both land if there
is room), and report the store position of their last event so readers can wait
for the read models to catch up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, cast
from uuid import UUID

import structlog
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    Cache,
    LRUCache,
    Repository,
)
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.base import acting_as
from domain.errors import ConflictError, DomainError
from domain.points import ExpiryPolicy, PointsRule
from infra.event_store import IdempotencyKeyTakenError, IdempotencyRecord, StoredResponse
from infra.process_lock import ProcessWriteLock
from infra.vault import PersonalDataVault
from services.command_executor import CommandExecutor, Job
from services.commands import Command
from services.handlers import HANDLERS, Context, Result
from services.principals import ForbiddenError, Principal
from services.unit_of_work import StaleUnitOfWorkError, UnitOfWork, evict

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 16
# Between attempts after a conflict: a random pause up to BACKOFF * 2**attempt (capped),
# so that writers racing for one aggregate from several processes stop colliding.
BACKOFF_SECONDS = 0.002
MAX_BACKOFF_SECONDS = 0.25


class IdempotencyMismatchError(DomainError):
    code = "idempotency-key-reused"


def _forget_all(cache: Cache[UUID, Any]) -> None:
    """Empty an aggregate cache (the library's ``LRUCache.clear`` resets its recency
    list only, and leaves the entries)."""
    if isinstance(cache, LRUCache):
        with cache.lock:
            cache.cache.clear()
            cache.clear()
            cache.full = False
    else:
        cache.cache.clear()


def _jitter(attempt: int) -> float:
    """A random pause before retrying a conflicting write (full jitter)."""
    ceiling = min(BACKOFF_SECONDS * 2**attempt, MAX_BACKOFF_SECONDS)
    return random.uniform(0, ceiling)  # noqa: S311 - spreads retries, not a secret


class ConcurrencyError(ConflictError):
    code = "concurrent-modification"


@dataclass(frozen=True)
class CommandResult:
    result: Result
    position: int | None
    replayed: bool = False


@dataclass(frozen=True)
class BatchItem:
    command: Command
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ItemOutcome:
    ok: bool
    result: Result | None = None
    position: int | None = None
    replayed: bool = False
    error: DomainError | ForbiddenError | None = None


@dataclass(frozen=True)
class _Work:
    items: Sequence[BatchItem]
    principal: Principal
    # the submitter's structlog context (its request id): the writer thread's log
    # lines about this work carry it
    log_context: Mapping[str, Any] = field(default_factory=dict)


class _Run:
    """A job's progress through one group: its outcomes so far, the items still to
    run, and an unexpected error that fails it."""

    def __init__(self, job: Job[_Work, list[ItemOutcome]]) -> None:
        self.job = job
        self.items = job.work.items
        self.principal = job.work.principal
        self.outcomes: dict[int, ItemOutcome] = {}
        self.pending: list[int] = list(range(len(self.items)))  # indexes still to run
        self.failed: BaseException | None = None
        # items repeating an idempotency key used earlier in the group: (index, run, index)
        self.followers: list[tuple[int, _Run, int]] = []


def _follow_repeated_keys(runs: Sequence[_Run]) -> None:
    """Within one group, only the first item with a given idempotency key runs; the
    others are its retries and get its outcome (see :func:`_as_retry_of`)."""
    first: dict[tuple[str, str], tuple[_Run, int]] = {}
    for run in runs:
        pending = []
        for i in run.pending:
            key = run.items[i].idempotency_key
            if key is not None:
                leader = first.setdefault((run.principal.key_id, key), (run, i))
                if leader != (run, i):
                    run.followers.append((i, *leader))
                    continue
            pending.append(i)
        run.pending = pending


def _as_retry_of(leader: _Run, index: int, fingerprint_: str) -> ItemOutcome:
    outcome = leader.outcomes.get(index)
    if leader.failed is not None or outcome is None:
        return ItemOutcome(
            ok=False, error=ConcurrencyError("a concurrent request with this key failed; retry")
        )
    if fingerprint(leader.items[index].command) != fingerprint_:
        return ItemOutcome(
            ok=False,
            error=IdempotencyMismatchError("this Idempotency-Key was used for a different request"),
        )
    if not outcome.ok:
        return outcome
    return ItemOutcome(ok=True, result=outcome.result, position=outcome.position, replayed=True)


def fingerprint(command: Command) -> str:
    return hashlib.sha256(command.model_dump_json().encode()).hexdigest()


def _json(result: Result) -> str:
    return json.dumps(result, default=str, ensure_ascii=False, sort_keys=True)


class CivicApplication(Application[UUID]):
    name = "civic"
    # Commands take aggregates from a write-through cache without asking the store
    # whether they changed (no "fast-forward" query per command): every write in
    # this process refreshes the cache, and a write by another process makes a
    # cached copy stale, which optimistic concurrency turns into a conflict that
    # evicts it and retries from the store (and a refusal is re-checked once
    # against the store before it is reported).
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        # only the executor thread uses the cache, and evicts what it does not commit
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        document_secret: bytes,
        points_rule: PointsRule | None = None,
        expiry_policy: ExpiryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        vault: PersonalDataVault | None = None,
    ) -> None:
        super().__init__(env)
        self.document_secret = document_secret
        # personal data is sealed with a key per volunteer (infra/vault.py); without a
        # configured vault, a private in-memory one (tests, tools)
        self.vault = vault or PersonalDataVault.in_memory()
        self.points_rule = points_rule or PointsRule()
        self.expiry_policy = expiry_policy or ExpiryPolicy()
        self.clock = clock or (lambda: datetime.now(UTC))
        # Queries read the store itself; commands use the write-through cache.
        self.store_reader: Repository[UUID] = Repository(event_store=self.events)
        # other processes' events applied to cached aggregates, aggregates evicted
        # instead (they could not be), and groups run again after a conflict (a
        # write by another process that landed meanwhile)
        self.caught_up_with_others = 0
        self.evicted_changed_elsewhere = 0
        self.conflict_retries = 0
        # Every command of this process runs on this one thread (see command_executor).
        # the SQLite store's lock between writing processes and its reader of their
        # events (None on other stores: conflicts are then retried after a pause)
        self.process_lock: ProcessWriteLock | None = getattr(self.recorder, "process_lock", None)
        self._written_elsewhere: Callable[[], list[StoredEvent] | None] | None = getattr(
            self.recorder, "written_elsewhere", None
        )
        lock = self.process_lock
        self.executor: CommandExecutor[_Work, list[ItemOutcome]] = CommandExecutor(
            self._run_group, gate=lock.held if lock is not None else None
        )

    # -- commands ------------------------------------------------------------------

    def context(self, principal: Principal) -> Context:
        return Context(
            principal=principal,
            now=self.clock(),
            points_rule=self.points_rule,
            expiry_policy=self.expiry_policy,
            document_secret=self.document_secret,
            vault=self.vault,
        )

    def execute(
        self, command: Command, principal: Principal, idempotency_key: str | None = None
    ) -> CommandResult:
        """Run one command and wait until its events are durably committed; raises
        its refusal (a ``DomainError`` or ``ForbiddenError``)."""
        return self.submit(command, principal, idempotency_key).result()

    def submit(
        self, command: Command, principal: Principal, idempotency_key: str | None = None
    ) -> Future[CommandResult]:
        """Run one command without blocking the caller: the future resolves once its
        events are durably committed (or to its refusal). Async routes await it with
        ``asyncio.wrap_future``."""
        batch = self.submit_batch([BatchItem(command, idempotency_key)], principal)
        result: Future[CommandResult] = Future()
        result.set_running_or_notify_cancel()  # like the batch's: runs to its end

        def settle(done: Future[list[ItemOutcome]]) -> None:
            try:
                outcome = done.result()[0]
            except BaseException as exc:
                result.set_exception(exc)
                return
            if outcome.error is not None:
                result.set_exception(outcome.error)
            else:
                result.set_result(
                    CommandResult(outcome.result or {}, outcome.position, outcome.replayed)
                )

        batch.add_done_callback(settle)
        return result

    def execute_batch(self, items: Sequence[BatchItem], principal: Principal) -> list[ItemOutcome]:
        """Run every item; commit all successful items' events in one transaction.

        Items that fail (a domain rule, the caller's reach) are reported and leave
        no trace; a retried idempotency key returns its original result.
        """
        return self.submit_batch(items, principal).result()

    def submit_batch(
        self, items: Sequence[BatchItem], principal: Principal
    ) -> Future[list[ItemOutcome]]:
        """:meth:`execute_batch` without blocking the caller."""
        if self.executor.on_executor_thread():  # a command that runs a command
            msg = "commands cannot be submitted from inside a command"
            raise RuntimeError(msg)
        work = _Work(items, principal, structlog.contextvars.get_contextvars())
        return self.executor.submit(work, size=max(1, len(items)))

    def _run_group(self, jobs: Sequence[Job[_Work, list[ItemOutcome]]]) -> None:
        """Run every waiting job in one unit of work and commit all their events in one
        transaction (on the executor thread: the only thread that touches the cache).

        The cache hands out its own aggregates, not copies; so whatever does not
        commit (a refused item, a conflict, a failed transaction) is evicted from it
        and read again from the store when next needed.
        """
        runs = [_Run(job) for job in jobs]
        self._catch_up_with_others()
        self._replay_known_keys(runs)
        _follow_repeated_keys(runs)
        if not self._attempts(runs):
            for run in runs:
                for i in run.pending:
                    run.outcomes[i] = ItemOutcome(
                        ok=False,
                        error=ConcurrencyError(
                            "too many concurrent changes to the same records; retry"
                        ),
                    )
        for run in runs:
            for i, leader, j in run.followers:
                run.outcomes[i] = _as_retry_of(leader, j, fingerprint(run.items[i].command))
        for run in runs:
            if run.failed is not None:
                run.job.future.set_exception(run.failed)
            else:
                run.job.future.set_result([run.outcomes[i] for i in range(len(run.items))])

    def _attempts(self, runs: Sequence[_Run]) -> bool:
        """Run the group until it commits (False: it kept conflicting)."""
        lock = self.process_lock
        for attempt in range(MAX_ATTEMPTS):
            if attempt and lock is not None:
                # run again holding the lock between processes (a large group ran
                # without it): caught up with every other process's events, nothing
                # can change under this attempt
                with lock.held():
                    self._catch_up_with_others()
                    if self._attempt(runs, attempt):
                        return True
            elif self._attempt(runs, attempt):
                return True
            elif lock is None:  # writers without that lock: spread out the retries
                time.sleep(_jitter(attempt))
        return False

    def _catch_up_with_others(self) -> None:
        """Bring cached aggregates up to date with what other processes (another API
        worker, the CLI) committed since the last group: one read of the log's tail
        per group, each of their events applied to the cached copy it concerns,
        instead of a conflict (and the whole group run again) per stale aggregate.
        A write that lands while the group runs is still caught by optimistic
        concurrency."""
        written_elsewhere = self._written_elsewhere
        cache = self.repository.cache
        if written_elsewhere is None or cache is None:
            return
        written = written_elsewhere()
        if written is None:  # a long stretch (an import): forget everything
            _forget_all(cache)
            return
        to_domain_event = self.mapper.to_domain_event
        for stored in written:
            aggregate_id = cast("UUID", stored.originator_id)
            try:
                cached = cache.get(aggregate_id)
            except KeyError:
                continue
            caught_up = None
            if cached.version + 1 == stored.originator_version:
                with contextlib.suppress(Exception):  # then the store knows better
                    event: Any = to_domain_event(stored)
                    caught_up = event.mutate(cached)
            if caught_up is None:  # read it again from the store when next needed
                evict(self.repository, aggregate_id)
                self.evicted_changed_elsewhere += 1
            else:
                self.caught_up_with_others += 1

    def _attempt(self, runs: Sequence[_Run], attempt: int) -> bool:
        """Run the group's pending items and commit their events in one transaction;
        False when a write by another process means the group must run again."""
        uow = UnitOfWork(self.repository)
        try:
            succeeded = [s for run in runs if run.failed is None for s in self._run_items(run, uow)]
            if not succeeded:
                return True
            records = [
                IdempotencyRecord(
                    run.principal.key_id,
                    key,
                    fingerprint(run.items[i].command),
                    _json(result),
                    last_event=end - 1 if end > start else None,
                )
                for run, i, result, start, end in succeeded
                if (key := run.items[i].idempotency_key)
            ]
            # The event store directly: ``Application.save`` would check every
            # event against the library's runtime protocols (slow isinstance
            # calls), take no snapshots (none configured) and cache nothing
            # (given events, not aggregates: ``cache_into`` below does that).
            recordings = self.events.put(uow.events, idempotency=records)
        except IdempotencyKeyTakenError:
            # another process committed a retry of one of these keys first:
            # answer it with the stored result and run the others again
            uow.evict_from(self.repository)
            self._replay_known_keys(runs)
            return False
        except IntegrityError:
            # another process changed one of these aggregates: read them again
            log.debug("command.conflict_retry", attempt=attempt)
            self.conflict_retries += 1
            uow.evict_from(self.repository)
            return False
        except BaseException:
            uow.evict_from(self.repository)
            raise
        uow.cache_into(self.repository)
        ids = [r.notification.id for r in recordings]
        for run, i, result, start, end in succeeded:
            position = ids[end - 1] if end > start else (max(ids) if ids else None)
            run.outcomes[i] = ItemOutcome(ok=True, result=result, position=position)
        return True

    def _run_items(self, run: _Run, uow: UnitOfWork) -> list[tuple[_Run, int, Result, int, int]]:
        """Run one job's pending items into ``uow``: (run, index, result, event span)
        for each that succeeded; refusals go to ``run.outcomes``. An unexpected error
        fails the job alone: its items are taken out of the unit of work."""
        ctx = self.context(run.principal)
        done: list[tuple[_Run, int, Result, int, int]] = []
        mark = uow.mark()
        with acting_as(run.principal.actor, ctx.now):
            for i in run.pending:
                handler = HANDLERS[type(run.items[i].command)]
                start = len(uow.events)
                try:
                    try:
                        result = handler(run.items[i].command, uow, ctx)
                    except DomainError:
                        # The refusal may rest on a cached copy that another
                        # process has since changed: refresh and decide again.
                        uow.discard_item(refresh=True)
                        result = handler(run.items[i].command, uow, ctx)
                except (DomainError, ForbiddenError) as exc:
                    uow.discard_item()
                    run.outcomes[i] = ItemOutcome(ok=False, error=exc)
                    continue
                except StaleUnitOfWorkError:
                    raise  # the whole group runs again (see _attempt)
                except Exception as exc:
                    log.exception(
                        "command.failed",
                        command=type(run.items[i].command).__name__,
                        **run.job.work.log_context,
                    )
                    uow.discard_item()
                    uow.rollback_to(mark)
                    run.failed = exc
                    return []
                uow.commit_item()
                done.append((run, i, result, start, len(uow.events)))
        return done

    def _replay_known_keys(self, runs: Sequence[_Run]) -> None:
        """Answer the pending items whose key was already used (one read per caller
        in the group, not one per item) and leave the others pending."""
        keys: dict[str, list[str]] = {}
        for run in runs:
            scope = keys.setdefault(run.principal.key_id, [])
            scope.extend(key for i in run.pending if (key := run.items[i].idempotency_key))
        known = {scope: self.find_responses(scope, ks) for scope, ks in keys.items() if ks}
        for run in runs:
            stored_for = known.get(run.principal.key_id, {})
            pending = []
            for i in run.pending:
                item = run.items[i]
                stored = stored_for.get(item.idempotency_key) if item.idempotency_key else None
                if stored is None:
                    pending.append(i)
                elif stored.fingerprint != fingerprint(item.command):
                    run.outcomes[i] = ItemOutcome(
                        ok=False,
                        error=IdempotencyMismatchError(
                            "this Idempotency-Key was used for a different request"
                        ),
                    )
                else:
                    run.outcomes[i] = ItemOutcome(
                        ok=True,
                        result=json.loads(stored.response),
                        position=stored.position,
                        replayed=True,
                    )
            run.pending = pending

    def find_responses(self, scope: str, keys: Sequence[str]) -> dict[str, StoredResponse]:
        """The stored responses of those of ``keys`` already used, in one read."""
        find = getattr(self.recorder, "find_responses", None)
        if find is None:
            msg = "the configured event store does not record idempotency keys"
            raise TypeError(msg)
        responses: dict[str, StoredResponse] = find(scope, keys)
        return responses

    # -- queries -------------------------------------------------------------------

    def get(self, aggregate_id: UUID) -> Any:
        """The current state of an aggregate, read from the store (None if absent)."""
        try:
            return self.store_reader.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def close(self) -> None:
        self.executor.close()
        super().close()
        self.vault.close()

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)
