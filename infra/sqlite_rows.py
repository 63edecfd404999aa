"""Multi-row inserts for SQLite.

Python's sqlite3 releases the GIL around every statement step (``executemany``
steps once per row). On a busy server each release costs the writing thread a wait
of up to the 5 ms switch interval to get the GIL back, while another thread (the
event loop) holds it; one multi-row ``INSERT ... VALUES (...), (...)`` steps once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

_VARIABLES = 999  # SQLite's smallest limit on a statement's variables (before 3.32)
_VALUES = re.compile(r"\bVALUES\s*(\((?:\s*\?\s*,)*\s*\?\s*\))", re.IGNORECASE)


def _statements(c: Any, sql: str, rows: Iterable[Sequence[Any]]) -> Iterator[tuple[int, int]]:
    """Run ``sql`` (one ``VALUES (?, ...)`` row, with any clause after it) for all
    ``rows``, as few multi-row statements as the variable limit allows; yields each
    statement's row count and ``lastrowid``."""
    found = _VALUES.search(sql)
    if found is None:
        msg = "not an INSERT of one VALUES row: " + sql  # noqa: S608 - a message
        raise ValueError(msg)
    head, row, tail = sql[: found.start(1)], found.group(1), sql[found.end(1) :]
    per_statement = max(1, _VARIABLES // row.count("?"))
    rows = rows if isinstance(rows, Sequence) else list(rows)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        ran = c.execute(head + ",".join([row] * len(chunk)) + tail, [v for r in chunk for v in r])
        # a connection's execute returns a cursor; the library's cursor returns None
        yield len(chunk), int((c if ran is None else ran).lastrowid or 0)


def insert_many(c: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """``c.executemany(sql, rows)`` for an INSERT (upserts included), in multi-row
    statements."""
    for _ in _statements(c, sql, rows):
        pass


def insert_rows(c: Any, into: str, columns: int, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert ``rows`` into ``into`` (a table, with its column list if need be);
    returns their rowids. Only for a transaction that holds the write lock (each
    statement's rows then take consecutive rowids, ending at its ``lastrowid``)."""
    ids: list[int] = []
    sql = f"INSERT INTO {into} VALUES ({','.join('?' * columns)})"  # noqa: S608 - fixed names
    for count, last in _statements(c, sql, rows):
        ids.extend(range(last - count + 1, last + 1))
    return ids
