"""The cyclic garbage collector and our long-running processes.

Python's full collections walk every tracked object, and after start-up most of
them are modules, classes, pydantic validators and the app's own wiring: objects
that live as long as the process. A consumer that buffers thousands of envelopes
(or a server that allocates per request) triggers such collections again and
again. ``gc.freeze()`` moves what exists at start-up into the permanent
generation, so later collections skip it (Python documents it for this use:
https://docs.python.org/3/library/gc.html#gc.freeze). Measured on the Kafka
subscription (bench/bench_kafka.py): 11-24% less CPU per event.

Once per process: objects frozen are never collected, so freezing again and again
(tests start many platforms) would keep their garbage alive.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_frozen = False


def freeze_startup_heap() -> bool:
    """Collect, then freeze what is left; the first call in a process only.
    Returns whether this call froze."""
    global _frozen  # noqa: PLW0603 - once per process, by design
    with _lock:
        if _frozen:
            return False
        gc.collect()
        gc.freeze()
        _frozen = True
        return True
