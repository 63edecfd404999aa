"""The relay's blocking producer calls get a deadline (kafka-python 3.0's
``commit_transaction`` has none)."""

from __future__ import annotations

import threading

import pytest
from kafka.errors import KafkaTimeoutError

from infra.relay import _within


def test_a_call_that_never_returns_times_out() -> None:
    never = threading.Event()
    with pytest.raises(KafkaTimeoutError, match="commit_transaction did not complete"):
        _within(never.wait, 0.1, "commit_transaction")
    never.set()


def test_errors_and_results_pass_through() -> None:
    done: list[int] = []
    _within(lambda: done.append(1), 5, "flush")
    assert done == [1]

    def fenced() -> None:
        raise RuntimeError("fenced")

    with pytest.raises(RuntimeError, match="fenced"):
        _within(fenced, 5, "commit_transaction")
