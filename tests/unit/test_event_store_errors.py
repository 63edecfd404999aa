"""What a failed write means: real SQLite errors (a full database, a held lock),
raised bare or wrapped by the library, are told apart for the API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError, PersistenceError

from infra.event_store import EventStoreBusyError, EventStoreFullError, storage_error


def _full(path: Path) -> sqlite3.Error:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x TEXT)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    try:
        conn.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    pytest.fail("the insert fitted")


def _busy(path: Path) -> sqlite3.Error:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x TEXT)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("INSERT INTO t VALUES ('y')")
    except sqlite3.Error as exc:
        return exc
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        other.close()
    pytest.fail("the insert got the lock")


def _wrapped(exc: sqlite3.Error) -> PersistenceError:
    """As the library raises it, and as a rollback failing after it would."""
    try:
        try:
            raise OperationalError(exc) from exc
        except OperationalError:
            raise OperationalError("cannot rollback - no transaction is active") from None
    except OperationalError as outer:
        return outer


def test_a_full_database_is_told_apart(tmp_path: Path) -> None:
    error = _full(tmp_path / "full.sqlite")
    assert isinstance(storage_error(error), EventStoreFullError)
    assert isinstance(storage_error(_wrapped(error)), EventStoreFullError)
    assert storage_error(error).code == "event-store-full"  # type: ignore[attr-defined]


def test_a_held_lock_is_told_apart(tmp_path: Path) -> None:
    error = _busy(tmp_path / "busy.sqlite")
    assert isinstance(storage_error(error), EventStoreBusyError)
    assert isinstance(storage_error(_wrapped(error)), EventStoreBusyError)


def test_other_errors_stay_persistence_errors() -> None:
    plain = OperationalError("disk I/O error")
    assert storage_error(plain) is plain
    other = storage_error(RuntimeError("boom"))
    assert type(other) is PersistenceError
