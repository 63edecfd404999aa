"""The event store's lock between writing processes (infra/process_lock.py): it
excludes another process, including a forked child of the holder; within a process
it is shared and released when its last holder leaves."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import pytest

from infra.process_lock import ProcessWriteLock, for_database

FORK = multiprocessing.get_context("fork")


def _taken_by_someone(path: Path) -> bool:
    """Whether a descriptor of its own (as another process has) finds the lock taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _hold_until(lock: ProcessWriteLock, held: EventType, release: EventType) -> None:
    with lock.held():
        held.set()
        release.wait(10)


def test_a_second_process_waits_until_the_first_releases(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite.writer-lock"
    mine = ProcessWriteLock(path)
    with mine.held():  # the descriptor is open before the fork: the child opens its own
        pass
    held, release = FORK.Event(), FORK.Event()
    child = FORK.Process(target=_hold_until, args=(mine, held, release))
    child.start()
    try:
        assert held.wait(10)
        acquired = threading.Event()

        def take() -> None:
            with mine.held():
                acquired.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not acquired.wait(0.3)  # blocked by the child's hold
        release.set()
        assert acquired.wait(10)
        taker.join(10)
        assert mine.waits == 1
    finally:
        release.set()
        child.join(10)
    assert not _taken_by_someone(path)
    mine.close()


def test_within_a_process_the_lock_is_shared_and_released_by_its_last_holder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lock"
    lock = ProcessWriteLock(path)
    inner_entered, leave_inner = threading.Event(), threading.Event()

    def other_thread() -> None:
        with lock.held():  # does not wait for the outer holder: same process
            inner_entered.set()
            leave_inner.wait(10)

    with lock.held():
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert inner_entered.wait(10)
        assert _taken_by_someone(path)
    assert _taken_by_someone(path)  # the other thread still holds it
    leave_inner.set()
    thread.join(10)
    assert not _taken_by_someone(path)
    assert lock.waits == 0
    lock.close()


def test_the_kernel_releases_the_lock_of_a_process_that_died(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    lock = ProcessWriteLock(path)
    held, never = FORK.Event(), FORK.Event()
    child = FORK.Process(target=_hold_until, args=(lock, held, never))
    child.start()
    assert held.wait(10)
    assert _taken_by_someone(path)
    child.kill()
    child.join(10)
    with lock.held():  # does not hang
        pass
    assert not _taken_by_someone(path)
    lock.close()


@pytest.mark.parametrize(
    ("db_name", "lock_path"),
    [
        ("/data/events.sqlite", "/data/events.sqlite.writer-lock"),
        (":memory:", None),
        ("file:shared?mode=memory&cache=shared", None),
        ("file:/data/events.sqlite?mode=rwc", None),
    ],
)
def test_only_a_database_file_gets_a_lock(db_name: str, lock_path: str | None) -> None:
    lock = for_database(db_name)
    assert (str(lock.path) if lock is not None else None) == lock_path
