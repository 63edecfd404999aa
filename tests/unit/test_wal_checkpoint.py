"""The event store's WAL is copied back by a thread of its own, not inside commits
(infra/wal_checkpoint.py). What a checkpoint did shows in the database file: pages
still only in the log leave it at its old size; pages copied back grow it."""

from __future__ import annotations

import gc
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from infra.event_store import GroupCommitSQLiteRecorder
from infra.wal_checkpoint import FALLBACK_PAGES, WalCheckpointer
from tests.conftest import wait_until

PAGE = 4096
ROWS = 1_500  # one page each: past SQLite's own 1,000-page checkpoint mark


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite"


@pytest.fixture
def conn(path: Path) -> Iterator[sqlite3.Connection]:
    """A WAL database with one table, on ``path``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x BLOB)")
    yield conn
    conn.close()


def _write_pages(conn: sqlite3.Connection, checkpointer: WalCheckpointer | None) -> None:
    conn.execute("BEGIN IMMEDIATE")
    if checkpointer is not None:
        checkpointer.configure(conn)
    conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(PAGE - 100),) for _ in range(ROWS)])
    conn.execute("COMMIT")


def test_by_default_the_commit_itself_copies_the_log_back(
    path: Path, conn: sqlite3.Connection
) -> None:
    """What the checkpointer changes: without it, the commit that passes 1,000
    pages of log runs the checkpoint (the file holds the rows at once)."""
    _write_pages(conn, None)
    assert path.stat().st_size > ROWS * PAGE


def test_a_configured_commit_leaves_the_copy_to_the_thread(
    path: Path, conn: sqlite3.Connection
) -> None:
    checkpointer = WalCheckpointer(str(path), interval=0.05)
    _write_pages(conn, checkpointer)
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == FALLBACK_PAGES
    assert path.stat().st_size < ROWS * PAGE  # the rows are in the log only
    assert checkpointer.checkpoints == 0

    checkpointer.committed()
    try:
        wait_until(lambda: checkpointer.checkpoints == 1, 10)
        assert path.stat().st_size > ROWS * PAGE
        # and the rows are all there for a new connection
        assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()[0] == ROWS
    finally:
        checkpointer.close()
    thread = checkpointer._thread
    assert thread is not None and not thread.is_alive()


def test_the_thread_checkpoints_only_after_commits(path: Path, conn: sqlite3.Connection) -> None:
    checkpointer = WalCheckpointer(str(path), interval=0.02)
    _write_pages(conn, checkpointer)
    checkpointer.committed()
    try:
        wait_until(lambda: checkpointer.checkpoints == 1, 10)
        time.sleep(0.2)  # ten more turns of the thread, no commit
        assert checkpointer.checkpoints == 1
    finally:
        checkpointer.close()


def test_the_event_store_checkpoints_off_its_commits(tmp_path: Path) -> None:
    recorder = GroupCommitSQLiteRecorder(SQLiteDatastore(str(tmp_path / "events.sqlite")))
    recorder.create_table()
    checkpointer = recorder.checkpointer
    assert checkpointer is not None
    try:
        for _ in range(3):
            recorder.insert_events(
                [StoredEvent(uuid4(), 1, "tests:Event", os.urandom(3000)) for _ in range(500)]
            )
        # three commits of ~500 pages each, past SQLite's 1,000-page mark: had the
        # third commit checkpointed, the thread would find nothing to copy
        wait_until(lambda: checkpointer.checkpoints >= 1, 10)
    finally:
        recorder.close()
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()


def test_an_in_memory_store_has_no_checkpointer() -> None:
    recorder = GroupCommitSQLiteRecorder(SQLiteDatastore("file::memory:?mode=memory&cache=shared"))
    assert recorder.checkpointer is None
    recorder.close()


def test_a_dropped_checkpointer_s_thread_ends(path: Path, conn: sqlite3.Connection) -> None:
    """A store dropped without close() leaves no thread (and no open file) behind."""
    checkpointer = WalCheckpointer(str(path), interval=0.02)
    checkpointer.committed()
    thread = checkpointer._thread
    assert thread is not None and thread.is_alive()
    del checkpointer
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
