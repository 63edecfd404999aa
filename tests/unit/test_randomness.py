"""Buffered randomness: every byte handed out once, in every thread and process."""

from __future__ import annotations

import os
import threading

from domain.randomness import new_id, random_bytes


def test_ids_are_version_4_and_distinct() -> None:
    ids = [new_id() for _ in range(10_000)]  # ~40 refills of the buffer
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {4}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}


def test_bytes_of_any_length_are_never_handed_out_twice() -> None:
    chunks = [random_bytes(n) for n in (1, 12, 16, 100, 4096, 5000, 7, 32) * 50]
    assert [len(c) for c in chunks] == [n for n in (1, 12, 16, 100, 4096, 5000, 7, 32) * 50]
    sixteen = [c[:16] for c in chunks if len(c) >= 16]
    assert len(set(sixteen)) == len(sixteen)


def test_threads_draw_from_their_own_buffers() -> None:
    seen: list[list[bytes]] = []

    def draw() -> None:
        seen.append([random_bytes(16) for _ in range(1_000)])

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [b for drawn in seen for b in drawn]
    assert len(set(everything)) == 4_000


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    random_bytes(16)  # the parent's buffer holds bytes it has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it would hand out next, and leave
        os.close(read)
        os.write(write, random_bytes(64))
        os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 64
    assert child != random_bytes(64)
