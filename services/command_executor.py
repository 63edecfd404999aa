"""The single writer: one thread runs every command of this process, in arrival order.

Callers (async routes, the batch endpoint, the CLI) hand a job to :meth:`submit` and
get a future. The executor thread takes every job waiting, runs them one after
another against the application's aggregate cache in a single unit of work, and
commits all their events in one transaction (one fsync for the group) before it
resolves their futures. Because only this thread ever touches the cache, cached
aggregates are changed in place instead of deep-copied for every command, and two
commands of this process never conflict with each other: only a write by another
process (a second worker, the CLI) can make a cached aggregate stale, and
optimistic concurrency turns that into a retry.

This is the classic single-writer design of event-sourced systems (one writer per
aggregate cache): commands are serialised in memory, where they are cheap, instead of
in the database, where they would contend.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class Job(Generic[J, R]):
    work: J
    size: int
    future: Future[R] = field(default_factory=Future)


class CommandExecutor(Generic[J, R]):
    """Runs ``run_group(jobs)`` on one thread for every group of waiting jobs.

    ``run_group`` must settle each job's future (a result or an exception); if it
    raises, every job of the group not yet settled gets that exception.
    """

    def __init__(
        self,
        run_group: Callable[[Sequence[Job[J, R]]], None],
        *,
        max_group: int = 2000,
        name: str = "command-executor",
        gate: Callable[[], AbstractContextManager[object]] | None = None,
        gated_below: int = 64,
    ) -> None:
        self._run_group = run_group
        # A small group (fewer than ``gated_below`` commands: single commands from
        # many callers) waits at the gate (the event store's lock between
        # processes), then takes in the jobs that arrived meanwhile and runs with
        # the gate held: while another process commits, this one's callers gather
        # into its next group instead of each trickling into a group of its own,
        # and nothing the group read can change before it commits. A large group
        # (a batch) runs first and takes the lock only to commit, so that
        # processes run their batches side by side.
        self._gate = gate
        self.gated_below = gated_below
        self.max_group = max_group  # commands per group (a job is never split)
        self._name = name
        self._queue: queue.SimpleQueue[Job[J, R] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.groups_run = 0
        self.jobs_run = 0

    def submit(self, work: J, size: int = 1) -> Future[R]:
        if self._closed:
            msg = "the command executor is closed"
            raise RuntimeError(msg)
        job: Job[J, R] = Job(work, size)
        # A submitted job runs to its end and its future cannot be cancelled: an
        # abandoned caller (an async route whose client went away cancels the
        # awaiting side) must not leave a cancelled future for the group to trip on.
        job.future.set_running_or_notify_cancel()
        self._ensure_thread()
        self._queue.put(job)
        return job.future

    def on_executor_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        carry: Job[J, R] | None = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if job is None:
                return
            group = [job]
            carry, stop = self._gather(group)
            gate = self._gate
            if gate is None or carry is not None or stop or _size(group) >= self.gated_below:
                self._run(group)
            else:
                with gate():
                    carry, stop = self._gather(group)  # those that came while it waited
                    self._run(group)
            if stop:
                return

    def _gather(self, group: list[Job[J, R]]) -> tuple[Job[J, R] | None, bool]:
        """Add the jobs waiting to ``group``, up to ``max_group`` commands; the job
        that starts the next group, and whether to stop after this one."""
        size = _size(group)
        while size < self.max_group:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return None, True
            if size + nxt.size > self.max_group:
                return nxt, False  # the next group starts with it
            group.append(nxt)
            size += nxt.size
        return None, False

    def _run(self, group: list[Job[J, R]]) -> None:
        try:
            self._run_group(group)
        except BaseException as exc:
            log.exception("command_executor.group_failed", jobs=len(group))
            for job in group:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            self.groups_run += 1
            self.jobs_run += len(group)

    def close(self, timeout: float = 10) -> None:
        """Finish the jobs already submitted, then stop the thread."""
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)


def _size(group: Sequence[Job[J, R]]) -> int:
    return sum(job.size for job in group)
