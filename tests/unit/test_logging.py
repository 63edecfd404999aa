"""The log set-up of a server: lines are handed to a writer thread, never written by
the thread that logs them (an event loop must not make a write system call per
request), and nothing queued is lost on shutdown."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest
import structlog

from infra.logging import configure_logging, flush_logs


class RecordingStream:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((threading.current_thread().name, text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        return "".join(text for _, text in self.writes)


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingStream]:
    """Swapped in by the test itself (pytest's own capture swaps ``sys.stderr``
    back at the start of each test, after the fixtures)."""
    stream = RecordingStream()
    yield stream
    configure_logging("json", "INFO")  # back to writing at once (flushes the queue)


def _swap(monkeypatch: pytest.MonkeyPatch, stream: RecordingStream) -> None:
    monkeypatch.setattr(sys, "stderr", stream)


def test_a_server_writes_its_log_lines_from_the_writer_thread(
    stderr: RecordingStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _swap(monkeypatch, stderr)
    configure_logging("json", "INFO", background=True)
    log = structlog.get_logger("tests")
    for n in range(3):
        log.info("tests.line", n=n)
    deadline = time.monotonic() + 30
    while stderr.text().count("tests.line") < 3:
        assert time.monotonic() < deadline, "the writer thread never wrote the lines"
        time.sleep(0.01)
    assert {thread for thread, _ in stderr.writes} == {"log-writer"}


def test_flush_logs_writes_what_is_queued_at_once(
    stderr: RecordingStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _swap(monkeypatch, stderr)
    configure_logging("json", "INFO", background=True)
    structlog.get_logger("tests").info("tests.last_words")
    flush_logs()
    assert "tests.last_words" in stderr.text()


def test_without_background_lines_are_written_by_the_logging_thread(
    stderr: RecordingStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _swap(monkeypatch, stderr)
    configure_logging("json", "INFO")
    structlog.get_logger("tests").info("tests.at_once")
    assert [thread for thread, text in stderr.writes if "tests.at_once" in text] == [
        threading.current_thread().name
    ]
