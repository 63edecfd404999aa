"""Checkpoints of the event store's write-ahead log, off the committing thread.

In WAL mode SQLite copies committed pages back into the database file when the log
passes 1,000 pages (~4 MB), and does it inside the commit that crossed the mark.
Commands touch index pages all over the store (one passbook here, another there):
a batch of 1,000 awards dirties 1,000-2,000 pages, so with the default nearly every
batch's commit also ran a checkpoint, and a page that every batch touches was copied back
every time. Here the committing connections checkpoint only past
``fallback_pages`` (a safety net), and a thread of this process runs a PASSIVE
checkpoint about every ``interval`` seconds after commits: it takes no write lock
(commits go on meanwhile, on the other core: sqlite3 runs the copy without the
GIL), copies each page once however many commits touched it, and stops where a
reader still needs older pages (the next run goes on from there).

Durability is unchanged: a commit is durable once its WAL frames are synced, and
after a crash SQLite replays the WAL whatever was checkpointed. ``journal_size_limit``
keeps the log file from staying at its largest size after a burst. The thread is
not carried into a process forked after the store's first commit (our servers spawn
their workers): there commits fall back to checkpointing past ``fallback_pages``.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref

import structlog

log = structlog.get_logger(__name__)

FALLBACK_PAGES = 10_000  # ~40 MB of 4 KiB pages: only if the thread falls behind
LOG_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the log file is truncated to after a reset
# A committing connection's page cache (the default is 2 MB): commands insert into
# the events' (originator id, version) index at random places, and a page found in
# the cache is one not read again (allocated as used, so a small store uses less)
WRITER_CACHE_KIB = 32 * 1024


class WalCheckpointer:
    """Checkpoints ``path``'s WAL from a thread of its own, after commits."""

    def __init__(
        self,
        path: str,
        *,
        interval: float = 0.1,
        fallback_pages: int = FALLBACK_PAGES,
    ) -> None:
        self.path = path
        self.interval = interval
        self.fallback_pages = fallback_pages
        self.checkpoints = 0  # runs that copied pages back
        self.last: tuple[int, int, int] = (0, 0, 0)  # the last run's (busy, log, copied)
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def configure(self, conn: sqlite3.Connection) -> None:
        """Make a committing connection leave checkpoints to this thread, and give
        it a writer's page cache. The settings belong to the connection, and the
        pool hands out several: set them for each transaction (statements that
        only store a number)."""
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint={int(self.fallback_pages)}")
        conn.execute(f"PRAGMA journal_size_limit={LOG_SIZE_LIMIT}")

    def committed(self) -> None:
        """A transaction committed: checkpoint within ``interval``."""
        self._dirty.set()
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    # the thread holds the checkpointer weakly: a store dropped without
                    # close() does not leave it running (and its file open) for good
                    self._thread = threading.Thread(
                        target=_run,
                        args=(weakref.ref(self), self.path, self.interval, self._stop),
                        name="wal-checkpoint",
                        daemon=True,
                    )
                    self._thread.start()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, pages in the log, pages copied back)."""
        busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(pages), int(copied)

    def _turn(self, conn: sqlite3.Connection) -> None:
        """The thread's turn: a checkpoint if anything committed since the last."""
        if not self._dirty.is_set():
            return
        self._dirty.clear()
        try:
            self.last = self.checkpoint(conn)
        except sqlite3.Error as exc:  # e.g. a full disk: commits will say so
            log.warning("wal_checkpoint.failed", path=self.path, error=str(exc))
            return
        _, pages, copied = self.last
        if copied > 0:
            self.checkpoints += 1
        if copied < pages:  # a reader held older pages: try again next time
            self._dirty.set()

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5)


def _run(
    owner: weakref.ref[WalCheckpointer], path: str, interval: float, stop: threading.Event
) -> None:
    conn = sqlite3.connect(path, uri=True, isolation_level=None, check_same_thread=False)
    try:
        while not stop.wait(interval):
            checkpointer = owner()
            if checkpointer is None:  # its store was dropped without close()
                return
            checkpointer._turn(conn)  # the thread of this very object
            del checkpointer  # not kept alive while waiting
    finally:
        conn.close()
