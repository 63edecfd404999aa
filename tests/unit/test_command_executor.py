"""The single writer: grouping of jobs, and what a group does with failures, repeated
idempotency keys and a cache that another process made stale."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from uuid import UUID

import pytest
import structlog
from structlog.testing import capture_logs

from domain.passbook import Passbook
from infra.event_store import GroupCommitSQLiteRecorder
from infra.settings import Settings
from services import commands as c
from services.application import BatchItem, CivicApplication, ItemOutcome, _Work
from services.bootstrap import build_application
from services.command_executor import CommandExecutor, Job
from services.handlers import HANDLERS, Context, Result
from services.principals import SYSTEM
from services.unit_of_work import UnitOfWork
from tests.conftest import open_network, register_volunteer

# HANDLERS' key for AwardPoints (mypy cannot infer the key type from the class alone)
AWARD_POINTS: type[c.Command] = c.AwardPoints

# -- the executor's mechanics ------------------------------------------------------------


def test_jobs_waiting_together_run_as_one_group_without_splitting_a_job() -> None:
    entered, gate = threading.Event(), threading.Event()
    groups: list[list[str]] = []

    def run_group(jobs: Sequence[Job[str, str]]) -> None:
        if not groups:
            entered.set()
            gate.wait(5)  # hold the first group while the others queue up
        groups.append([j.work for j in jobs])
        for job in jobs:
            job.future.set_result(job.work.upper())

    executor: CommandExecutor[str, str] = CommandExecutor(run_group, max_group=5)
    first = executor.submit("a")
    assert entered.wait(5)
    rest = [executor.submit(w, size=s) for w, s in (("b", 2), ("c", 2), ("d", 2), ("e", 1))]
    gate.set()
    assert [f.result(5) for f in (first, *rest)] == ["A", "B", "C", "D", "E"]
    executor.close()
    assert groups == [["a"], ["b", "c"], ["d", "e"]]


def test_a_small_group_waits_at_the_gate_and_takes_in_the_jobs_that_arrive_meanwhile() -> None:
    """The gate is the event store's lock between processes: while another process
    commits, this one's callers gather into one group. A batch-sized group runs
    without waiting there (it takes the lock only to commit)."""
    waiting, open_gate = threading.Event(), threading.Event()
    inside: list[bool] = []
    groups: list[tuple[list[str], bool]] = []

    @contextlib.contextmanager
    def gate() -> Iterator[None]:
        waiting.set()
        assert open_gate.wait(5)  # another process is committing
        inside.append(True)
        try:
            yield
        finally:
            inside.pop()

    def run_group(jobs: Sequence[Job[str, str]]) -> None:
        groups.append(([j.work for j in jobs], bool(inside)))
        for job in jobs:
            job.future.set_result(job.work)

    executor: CommandExecutor[str, str] = CommandExecutor(run_group, gate=gate, gated_below=10)
    first = executor.submit("a")
    assert waiting.wait(5)
    later = [executor.submit(w) for w in "bcd"]
    open_gate.set()
    assert [f.result(5) for f in (first, *later)] == ["a", "b", "c", "d"]
    assert executor.submit("batch", size=10).result(5) == "batch"
    executor.close()
    assert groups == [(["a", "b", "c", "d"], True), (["batch"], False)]


def test_an_error_escaping_the_group_settles_every_future_with_it() -> None:
    def run_group(jobs: Sequence[Job[int, int]]) -> None:
        jobs[0].future.set_result(1)
        if len(jobs) > 1 or jobs[0].work == 1:
            raise RuntimeError("disk on fire")

    executor: CommandExecutor[int, int] = CommandExecutor(run_group)
    futures = [executor.submit(n) for n in range(4)]
    assert futures[0].result(5) == 1  # settled before the error: keeps its result
    raised = [f for f in futures[1:] if f.exception(5) is not None]
    assert raised, "some job after the first shared a group with it or was job 1"
    for future in raised:
        assert str(future.exception()) == "disk on fire"
    assert executor.submit(5).result(5) == 1  # the executor goes on after a failed group
    executor.close()
    with pytest.raises(RuntimeError, match="closed"):
        executor.submit(9)


def test_a_submitted_job_cannot_be_cancelled_and_its_group_still_settles() -> None:
    """An async route whose client went away cancels its side of the wait; the
    command still runs and every future of the group is settled."""
    entered, gate = threading.Event(), threading.Event()

    def run_group(jobs: Sequence[Job[int, int]]) -> None:
        entered.set()
        gate.wait(5)
        for job in jobs:
            job.future.set_result(job.work * 10)

    executor: CommandExecutor[int, int] = CommandExecutor(run_group)
    first = executor.submit(0)
    assert entered.wait(5)
    abandoned, other = executor.submit(1), executor.submit(2)  # one group, after the first
    assert not abandoned.cancel()
    gate.set()
    assert (first.result(5), abandoned.result(5), other.result(5)) == (0, 10, 20)
    executor.close()


# -- groups in the application -----------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CivicApplication]:
    application = build_application(Settings(data_dir=tmp_path))
    yield application
    application.close()


def _volunteer(app: CivicApplication) -> UUID:
    _, _, station = open_network(app)
    return register_volunteer(app, station, name="张三", phone="13800000000")


def _award(volunteer: UUID, points: int) -> c.AwardPoints:
    return c.AwardPoints(volunteer_id=volunteer, points=points, reason="文明户评比")


def _group(app: CivicApplication, *batches: list[BatchItem]) -> list[list[ItemOutcome]]:
    """Run ``batches`` as one group, as the executor does when they wait together."""
    jobs: list[Job[_Work, list[ItemOutcome]]] = [
        Job(_Work(items, SYSTEM), len(items)) for items in batches
    ]
    app._run_group(jobs)
    return [job.future.result(5) for job in jobs]


def _stored_balance(app: CivicApplication, volunteer: UUID) -> int:
    passbook = app.get(Passbook.create_id(volunteer))
    return int(passbook.balance) if passbook is not None else 0


def test_a_key_repeated_within_one_group_records_one_event(app: CivicApplication) -> None:
    v = _volunteer(app)
    head = app.head()
    same = BatchItem(_award(v, 3), "award-1")
    other = BatchItem(_award(v, 4), "award-1")
    outcomes = _group(app, [same], [same], [other])
    assert app.head() == head + 1
    first, again, mismatch = (o[0] for o in outcomes)
    assert first.ok and not first.replayed
    assert again.ok and again.replayed and again.result == first.result
    assert again.position == first.position
    assert not mismatch.ok and mismatch.error is not None
    assert mismatch.error.code == "idempotency-key-reused"
    assert _stored_balance(app, v) == 3


def test_a_refusal_mid_group_leaves_no_trace_and_later_items_build_on_the_rest(
    app: CivicApplication,
) -> None:
    v = _volunteer(app)
    outcomes = _group(
        app,
        [BatchItem(_award(v, 5))],
        [
            BatchItem(c.AdjustPoints(volunteer_id=v, delta=-100, reason="误录")),
            BatchItem(_award(v, 3)),
        ],
    )
    assert outcomes[0][0].ok
    assert not outcomes[1][0].ok and outcomes[1][1].ok
    assert _stored_balance(app, v) == 8
    assert app.repository.get(Passbook.create_id(v)).balance == 8  # the cache agrees


def test_an_unexpected_error_fails_its_job_alone_and_leaves_the_cache_clean(
    app: CivicApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _volunteer(app)
    award = HANDLERS[c.AwardPoints]

    def award_then_crash(command: c.AwardPoints, uow: UnitOfWork, ctx: Context) -> Result:
        result = award(command, uow, ctx)  # the passbook (the cached object) has changed
        if command.points == 13:
            raise RuntimeError("a bug in a handler")
        return result

    monkeypatch.setitem(HANDLERS, AWARD_POINTS, award_then_crash)
    jobs: list[Job[_Work, list[ItemOutcome]]] = [
        Job(_Work([BatchItem(_award(v, 2))], SYSTEM), 1),
        Job(_Work([BatchItem(_award(v, 7)), BatchItem(_award(v, 13))], SYSTEM), 2),
        Job(_Work([BatchItem(_award(v, 1))], SYSTEM), 1),
    ]
    app._run_group(jobs)
    assert jobs[0].future.result(5)[0].ok and jobs[2].future.result(5)[0].ok
    assert isinstance(jobs[1].future.exception(5), RuntimeError)
    assert _stored_balance(app, v) == 3  # 2 + 1: nothing of the failed job
    assert app.repository.get(Passbook.create_id(v)).balance == 3


def test_a_failing_command_is_logged_with_the_request_that_submitted_it(
    app: CivicApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _volunteer(app)

    def crash(command: c.AwardPoints, uow: UnitOfWork, ctx: Context) -> Result:
        raise RuntimeError("a bug in a handler")

    monkeypatch.setitem(HANDLERS, AWARD_POINTS, crash)
    with capture_logs() as logs:
        with structlog.contextvars.bound_contextvars(request_id="req-42"):
            future = app.submit(_award(v, 3), SYSTEM)  # in the request's context, as a route
        with pytest.raises(RuntimeError):
            future.result(5)
    # the writer thread's line names the request (the writer thread has no context of its own)
    assert [line for line in logs if line["event"] == "command.failed"] == [
        {
            "event": "command.failed",
            "command": "AwardPoints",
            "request_id": "req-42",
            "log_level": "error",
            "exc_info": True,
        }
    ]


def test_another_process_s_events_are_applied_to_the_cached_aggregate_before_a_group(
    app: CivicApplication, tmp_path: Path
) -> None:
    v = _volunteer(app)
    app.execute(_award(v, 1), SYSTEM)  # the passbook is now cached here
    cached: Passbook = app.repository.get(Passbook.create_id(v))
    other = build_application(Settings(data_dir=tmp_path))  # a second process's view
    try:
        other.execute(_award(v, 10), SYSTEM)
        other.execute(_award(v, 20), SYSTEM)
    finally:
        other.close()
    result = app.execute(_award(v, 100), SYSTEM)
    assert result.position == app.head()
    assert _stored_balance(app, v) == 131
    assert app.repository.get(Passbook.create_id(v)) is cached  # caught up, not read again
    assert cached.balance == 131
    assert (app.caught_up_with_others, app.conflict_retries) == (2, 0)


def test_a_write_by_another_process_while_a_group_runs_turns_into_a_retry(
    app: CivicApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group run outside the lock between processes (here, run directly; in the
    executor, a large one) can still meet a write that lands meanwhile."""
    v = _volunteer(app)
    app.execute(_award(v, 1), SYSTEM)
    award = HANDLERS[c.AwardPoints]
    interfered: list[int] = []

    def award_after_another_process(
        command: c.AwardPoints, uow: UnitOfWork, ctx: Context
    ) -> Result:
        if not interfered:  # once: the other process runs this handler too
            interfered.append(0)
            other = build_application(Settings(data_dir=tmp_path))
            try:
                interfered[0] = other.execute(_award(v, 10), SYSTEM).position or 0
            finally:
                other.close()
        return award(command, uow, ctx)

    monkeypatch.setitem(HANDLERS, AWARD_POINTS, award_after_another_process)
    [[outcome]] = _group(app, [BatchItem(_award(v, 100))])
    assert outcome.ok and outcome.position == app.head() > interfered[0]
    assert _stored_balance(app, v) == 111
    assert app.repository.get(Passbook.create_id(v)).balance == 111
    assert app.conflict_retries == 1


def test_after_a_long_stretch_of_others_writes_the_cache_is_forgotten(
    app: CivicApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = app.recorder
    assert isinstance(recorder, GroupCommitSQLiteRecorder)
    v = _volunteer(app)
    app.execute(_award(v, 1), SYSTEM)
    cache = app.repository.cache
    assert cache is not None and Passbook.create_id(v) in cache.cache
    other = build_application(Settings(data_dir=tmp_path))
    try:
        for points in (2, 3, 4):
            other.execute(_award(v, points), SYSTEM)
    finally:
        other.close()
    written_elsewhere = recorder.written_elsewhere
    monkeypatch.setattr(app, "_written_elsewhere", lambda: written_elsewhere(limit=2))
    app.execute(_award(v, 10), SYSTEM)  # more than the limit: the whole cache goes
    assert list(cache.cache) == [Passbook.create_id(v)]  # read again by this command
    assert (app.caught_up_with_others, app.conflict_retries) == (0, 0)
    assert _stored_balance(app, v) == 20
    assert app.repository.get(Passbook.create_id(v)).balance == 20


def test_a_submitted_command_cannot_be_cancelled(app: CivicApplication) -> None:
    v = _volunteer(app)
    future = app.submit(_award(v, 2), SYSTEM)
    assert not future.cancel()
    assert future.result(5).position is not None
    assert _stored_balance(app, v) == 2


def test_a_command_cannot_submit_a_command(app: CivicApplication) -> None:
    v = _volunteer(app)
    award = HANDLERS[c.AwardPoints]

    def reentrant(command: c.AwardPoints, uow: UnitOfWork, ctx: Context) -> Result:
        app.submit(_award(v, 1), SYSTEM)
        return award(command, uow, ctx)

    HANDLERS[c.AwardPoints] = reentrant
    try:
        with pytest.raises(RuntimeError, match="inside a command"):
            app.execute(_award(v, 2), SYSTEM)
    finally:
        HANDLERS[c.AwardPoints] = award
    assert _stored_balance(app, v) == 0


def test_a_refusal_rechecked_against_a_store_that_moved_on_reruns_the_group(
    app: CivicApplication, tmp_path: Path
) -> None:
    """The group's first job builds on a cached passbook that another process has
    since changed; the second job's refusal is re-checked against the store, which no
    longer fits the first job's event: the whole group runs again from the store."""
    v = _volunteer(app)
    app.execute(_award(v, 10), SYSTEM)  # cached here at balance 10
    other = build_application(Settings(data_dir=tmp_path))
    try:
        other.execute(c.AdjustPoints(volunteer_id=v, delta=-8, reason="误录"), SYSTEM)
    finally:
        other.close()
    outcomes = _group(
        app,
        [BatchItem(_award(v, 1))],
        [BatchItem(c.AdjustPoints(volunteer_id=v, delta=-15, reason="误录"))],
    )
    assert outcomes[0][0].ok
    refused = outcomes[1][0]
    assert not refused.ok and refused.error is not None
    assert refused.error.code == "insufficient-points"
    assert _stored_balance(app, v) == 3  # 10 - 8 + 1
    assert app.repository.get(Passbook.create_id(v)).balance == 3
