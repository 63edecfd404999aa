"""The group-commit recorder: a call that finds no commit under way commits on its
own thread (the application's single writer never waits for a hand-over); calls
that arrive during a commit are grouped by the writer thread; every call commits
exactly once either way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from infra.event_store import (
    GroupCommitSQLiteRecorder,
    IdempotencyKeyTakenError,
    IdempotencyRecord,
)
from infra.hash_chain import verify_chain

TOPIC = "tests:Event"


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[GroupCommitSQLiteRecorder]:
    store = GroupCommitSQLiteRecorder(SQLiteDatastore(str(tmp_path / "events.sqlite")))
    store.create_table()
    yield store
    store.close()


def _event() -> StoredEvent:
    return StoredEvent(uuid4(), 1, TOPIC, b"{}")


def test_an_uncontended_call_commits_on_the_callers_thread(
    recorder: GroupCommitSQLiteRecorder,
) -> None:
    committed_on: list[threading.Thread] = []
    recorder.listeners.append(lambda head: committed_on.append(threading.current_thread()))
    ids = recorder.insert_events([_event(), _event()])
    assert ids is not None and len(ids) == 2
    assert committed_on == [threading.current_thread()]
    assert recorder._writer is None  # no writer thread was needed


def test_concurrent_calls_all_commit_once(recorder: GroupCommitSQLiteRecorder) -> None:
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


def _rows(recorder: GroupCommitSQLiteRecorder, sql: str) -> list[tuple[object, ...]]:
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(sql)
        return [tuple(row) for row in c.fetchall()]


def test_a_large_call_is_inserted_in_order_with_the_positions_returned(
    recorder: GroupCommitSQLiteRecorder,
) -> None:
    first = recorder.insert_events([_event() for _ in range(3)])
    events = [StoredEvent(uuid4(), v, TOPIC, f'{{"n":{v}}}'.encode()) for v in range(1, 501)]
    ids = recorder.insert_events(events)  # several multi-row statements
    assert first == [1, 2, 3]
    assert ids == list(range(4, 504))
    stored = _rows(
        recorder,
        "SELECT rowid, originator_id, originator_version FROM stored_events ORDER BY rowid",
    )
    expected = [
        (i, UUID(str(e.originator_id)).hex, e.originator_version)
        for i, e in zip(ids, events, strict=True)
    ]
    assert stored[3:] == expected
    links = _rows(recorder, "SELECT notification_id, prev_id FROM event_chain ORDER BY 1")
    assert links == [(n, n - 1) for n in range(1, 504)]

    def read(after: int, limit: int) -> list[Notification]:
        return list(recorder.select_notifications(after + 1, limit))

    report = verify_chain(read, recorder.chain)
    assert report.ok
    assert report.events == 503


def test_a_conflicting_call_leaves_nothing_and_names_the_taken_key(
    recorder: GroupCommitSQLiteRecorder,
) -> None:
    def record(key: str) -> IdempotencyRecord:
        return IdempotencyRecord("scope", key, "fp", "{}")

    recorder.insert_events([_event()], idempotency=[record("a"), record("b")])
    taken = [record(k) for k in ("c", "b", "d")]
    with pytest.raises(IdempotencyKeyTakenError) as failed:
        recorder.insert_events([_event(), _event()], idempotency=taken)
    assert failed.value.key == "b"
    with pytest.raises(IdempotencyKeyTakenError) as repeated:
        recorder.insert_events([_event()], idempotency=[record("e"), record("e")])
    assert repeated.value.key == "e"
    assert _rows(recorder, "SELECT key, position FROM idempotency_keys ORDER BY key") == [
        ("a", 1),
        ("b", 1),
    ]
    assert recorder.insert_events([_event()]) == [2]  # the failed calls left no gap


def test_written_elsewhere_gives_other_processes_events_in_order_and_never_its_own(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "shared.sqlite")
    mine = GroupCommitSQLiteRecorder(SQLiteDatastore(path))
    mine.create_table()
    theirs = GroupCommitSQLiteRecorder(SQLiteDatastore(path))  # another process's
    try:
        mine.insert_events([_event()])
        assert mine.written_elsewhere() == []  # the first look marks where the log stands
        a, b = _event(), StoredEvent(uuid4(), 1, TOPIC, b'{"n":2}')
        theirs.insert_events([a])
        mine.insert_events([_event()])
        theirs.insert_events([b])
        seen = mine.written_elsewhere()
        assert seen is not None
        assert [(e.originator_id, e.state) for e in seen] == [
            (a.originator_id, a.state),
            (b.originator_id, b.state),
        ]
        assert mine.written_elsewhere() == []
        for _ in range(3):
            theirs.insert_events([_event()])
        assert mine.written_elsewhere(limit=2) is None  # too many: forget everything
        assert mine.written_elsewhere() == []  # and go on from the head
    finally:
        mine.close()
        theirs.close()


def test_a_recorder_nobody_asks_about_others_writes_keeps_no_record_of_its_own(
    recorder: GroupCommitSQLiteRecorder,
) -> None:
    for _ in range(5):
        recorder.insert_events([_event()])
    assert recorder._own == set()
    assert recorder.written_elsewhere() == []  # from now on it keeps them, to tell them apart
    recorder.insert_events([_event()])
    assert len(recorder._own) == 1
    assert recorder.written_elsewhere() == []  # its own event is not another process's
    assert recorder._own == set()
