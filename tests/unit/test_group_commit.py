"""The group-commit recorder: a call that finds no commit under way commits on its
own thread (the application's single writer never waits for a hand-over); calls
that arrive during a commit are grouped by the writer thread; every call commits
exactly once either way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from infra.event_store import GroupCommitSQLiteRecorder

TOPIC = "tests:Event"


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[GroupCommitSQLiteRecorder]:
    store = GroupCommitSQLiteRecorder(SQLiteDatastore(str(tmp_path / "events.sqlite")))
    store.create_table()
    yield store
    store.close()


def _event() -> StoredEvent:
    return StoredEvent(uuid4(), 1, TOPIC, b"{}")


def test_an_uncontended_call_commits_on_the_callers_thread(recorder):
    committed_on: list[threading.Thread] = []
    recorder.listeners.append(lambda head: committed_on.append(threading.current_thread()))
    ids = recorder.insert_events([_event(), _event()])
    assert ids is not None and len(ids) == 2
    assert committed_on == [threading.current_thread()]
    assert recorder._writer is None  # no writer thread was needed


def test_concurrent_calls_all_commit_once(recorder):
    threads, calls = 8, 40
    ids: list[list[int]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        start.wait()
        for _ in range(calls):
            ids[n].extend(recorder.insert_events([_event()]) or [])

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    every = sorted(i for mine in ids for i in mine)
    assert every == list(range(1, threads * calls + 1))
    assert recorder.calls_committed == threads * calls
    assert recorder.groups_committed <= threads * calls
