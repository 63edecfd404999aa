"""One writer at a time among the processes that share an SQLite event store.

SQLite lets one connection write at a time and makes the others wait in its busy
handler, which sleeps and tries again (1, 2, 5, 10, 15, 20, 25 ms...): with two
API workers committing all the time, a waiting writer sleeps through most of the
other's commits, and the pair commits little faster than one. Writers that first
take an exclusive ``flock`` on a file beside the database instead wait in the
kernel and wake the moment the other releases it; meanwhile their next group of
commands gathers, so the processes take turns, each turn a group commit.

A holder keeps the lock while it runs a group of single commands and commits it
(SQLite's own lock is taken inside), and the kernel releases it when its holder
dies. The wait has no timeout of its own: a holder that is stopped (SIGSTOP, a
debugger) rather than killed keeps the others waiting, where SQLite alone would
have answered "busy" after its lock timeout. A descriptor opened before a fork is
shared with the parent (flock locks belong to the open file, not the process), so
each process opens its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path


class ProcessWriteLock:
    """An exclusive lock on ``path`` between processes. Within a process it is
    shared: it is taken when the first holder enters and released when the last
    leaves (the command executor holds it around a whole group, the event store
    around its transaction, on the same or another thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._mutex = threading.Lock()
        self._holders = 0
        self.waits = 0  # acquisitions that found the lock taken by another process

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        with self._mutex:
            if self._holders == 0:
                fd = self._descriptor()
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self.waits += 1
                    fcntl.flock(fd, fcntl.LOCK_EX)  # blocks in the kernel, the GIL released
            self._holders += 1

    def release(self) -> None:
        with self._mutex:
            self._holders -= 1
            if self._holders == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _descriptor(self) -> int:
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = pid
        return self._fd

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
            self._holders = 0


def for_database(db_name: str) -> ProcessWriteLock | None:
    """The write lock of an SQLite database file; ``None`` for an in-memory
    database (one process only) or a URI (no plain path beside which to lock)."""
    if not db_name or ":memory:" in db_name or "mode=memory" in db_name:
        return None
    if db_name.startswith("file:"):
        return None
    return ProcessWriteLock(Path(f"{db_name}.writer-lock"))
