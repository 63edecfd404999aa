"""The cyclic garbage collector and our long-running processes.

Python's full collections walk every tracked object, and after start-up most of
them are modules, classes, pydantic validators and the app's own wiring: objects
that live as long as the process. A consumer that buffers thousands of envelopes
(or a server that allocates per request) triggers such collections again and
again. ``gc.freeze()`` moves what exists at start-up into the permanent
generation, so later collections skip it (Python documents it for this use:
https://docs.python.org/3/library/gc.html#gc.freeze). Measured on the Kafka
subscription (bench/bench_kafka.py): 11-24% less CPU per event.

The same processes allocate envelopes, rows and batches by the hundred thousand,
nearly all of them freed by reference counting (no cycles). With the default
threshold a young collection runs every 700 allocations and walks everything
allocated since, to find nothing: a batch of 20,000 envelopes triggers thousands
of them. A threshold of 50,000 measured here: the Kafka subscription 29% and a
leaderboard runner on it 20% less CPU per event (bench/bench_kafka.py part b).

Once per process: objects frozen are never collected, so freezing again and again
(tests start many platforms) would keep their garbage alive.
"""

from __future__ import annotations

import gc
import threading

YOUNG_COLLECTION_EVERY = 50_000  # allocations (Python's default: 700)

_lock = threading.Lock()
_frozen = False


def freeze_startup_heap() -> bool:
    """Collect, then freeze what is left, and collect the young generation every
    ``YOUNG_COLLECTION_EVERY`` allocations; the first call in a process only.
    Returns whether this call froze."""
    global _frozen  # noqa: PLW0603 - once per process, by design
    with _lock:
        if _frozen:
            return False
        gc.collect()
        gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
        _frozen = True
        return True
