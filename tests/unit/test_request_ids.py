"""Generated request ids: 32 hex digits like a uuid4, unique within a process (a
counter) and across processes (a random prefix per process, drawn again in a
forked child)."""

from __future__ import annotations

import re

from services.api.middleware import RequestIds


def test_ids_are_32_hex_digits_and_never_repeat_in_a_process() -> None:
    ids = RequestIds()
    drawn = [ids.next() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in drawn)
    assert len(set(drawn)) == len(drawn)
    assert len({i[:16] for i in drawn}) == 1  # one prefix, then the counter


def test_each_process_draws_its_own_prefix() -> None:
    first, second = RequestIds(), RequestIds()
    assert first.next()[:16] != second.next()[:16]
    before = first.next()
    first.reseed()  # what a forked child does
    assert first.next()[:16] != before[:16]
