"""Reading the event store's notification log as plain rows.

The relay and the embedded stream read every stored event in notification order.
On the SQLite store one SELECT by rowid (the notification id) returning tuples is
several times cheaper per row than the recorder's notifications (a
``Notification`` and a ``UUID`` built per row); on any other store the recorder's
own ``select_notifications`` is used and its notifications turned into the same
rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

# one stored event: position, originator id (as the store gives it), version, topic, state
StoredRow = tuple[int, UUID | str, int, str, bytes]
_Select = Callable[[int, int, Sequence[str], int | None], list[StoredRow]]


class RowReader:
    """Stored events after a position, in order, optionally only of some topics and
    up to a position (``stop``, inclusive)."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder
        self._select = _sqlite_select(recorder)

    def read(
        self, after: int, limit: int, *, topics: Sequence[str] = (), stop: int | None = None
    ) -> Sequence[StoredRow]:
        if self._select is not None:
            return self._select(after, limit, topics, stop)
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in self.recorder.select_notifications(
                start=after, limit=limit, stop=stop, topics=list(topics), inclusive_of_start=False
            )
        ]


def _sqlite_select(recorder: ApplicationRecorder) -> _Select | None:
    """A reader of the SQLite store's events table by rowid; ``None`` for other stores."""
    if not isinstance(recorder, SQLiteApplicationRecorder):
        return None
    datastore = recorder.datastore
    table = recorder.events_table_name  # the recorder's own name, never input
    statements: dict[tuple[int, bool], str] = {}

    def statement(topics: int, stop: bool) -> str:
        found = statements.get((topics, stop))
        if found is None:
            where = "rowid > ?"
            if stop:
                where += " AND rowid <= ?"
            if topics:
                where += f" AND topic IN ({','.join('?' * topics)})"
            found = statements[(topics, stop)] = (
                "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608 - see table
                f"FROM {table} WHERE {where} ORDER BY rowid LIMIT ?"
            )
        return found

    def select(after: int, limit: int, topics: Sequence[str], stop: int | None) -> list[StoredRow]:
        params: list[int | str] = [after]
        if stop is not None:
            params.append(stop)
        params += topics
        params.append(limit)
        with datastore.transaction(commit=False) as curs:
            cursor = curs.sqlite_cursor
            cursor.row_factory = None  # tuples, not sqlite3.Row
            cursor.execute(statement(len(topics), stop is not None), params)
            rows: list[StoredRow] = cursor.fetchall()
        return rows

    return select
