"""The relay's blocking producer calls get a deadline (kafka-python 3.0's
``commit_transaction`` has none); the relay prepares its next batch meanwhile."""

from __future__ import annotations

import threading

import pytest
from kafka.errors import KafkaTimeoutError

from infra.relay import _InBackground


def test_a_call_that_never_returns_times_out() -> None:
    never = threading.Event()
    with pytest.raises(KafkaTimeoutError, match="commit_transaction did not complete"):
        _InBackground(never.wait, "commit_transaction").result(0.1)
    never.set()


def test_errors_and_results_pass_through() -> None:
    done: list[int] = []
    _InBackground(lambda: done.append(1), "flush").result(5)
    assert done == [1]

    def fenced() -> None:
        raise RuntimeError("fenced")

    with pytest.raises(RuntimeError, match="fenced"):
        _InBackground(fenced, "commit_transaction").result(5)
