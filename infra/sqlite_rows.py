"""Multi-row inserts for SQLite.

Python's sqlite3 releases the GIL around every statement step (``executemany``
steps once per row). On a busy server each release costs the writing thread a wait
of up to the 5 ms switch interval to get the GIL back, while another thread (the
event loop) holds it; one multi-row ``INSERT ... VALUES (...), (...)`` steps once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_ROWS_PER_STATEMENT = 999 // 6  # up to 6 columns: within any SQLite build's variable limit


def insert_rows(c: Any, into: str, columns: int, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert ``rows`` into ``into`` (a table, with its column list if need be) with
    as few statements as the variable limit allows; returns their rowids. Only
    for a transaction that holds the write lock (rowids are then consecutive)."""
    ids: list[int] = []
    placeholders = "(" + ",".join("?" * columns) + ")"
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        c.execute(
            f"INSERT INTO {into} VALUES " + ",".join([placeholders] * len(chunk)),  # noqa: S608 - fixed names
            [value for row in chunk for value in row],
        )
        last = int(c.lastrowid)
        ids.extend(range(last - len(chunk) + 1, last + 1))
    return ids
