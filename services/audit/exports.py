"""Streamed exports of the audit trail as CSV or JSON Lines.

The rows come from the audit-trail read model one page at a time (keyset
pagination on the store position), so a year of a district's events never sits
in memory: each yielded chunk is one page. ``connect`` is called for every page,
so a streaming response may move between threads.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal

from projections import audit_trail

ExportFormat = Literal["csv", "jsonl"]
PAGE = 1000
COLUMNS = (
    "position",
    "recorded_at",
    "actor",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "event_type",
    "volunteer_id",
    "unit_id",
    "lineage",
    "summary",
)
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
}


def _row(entry: audit_trail.AuditEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "recorded_at": entry.recorded_at.isoformat(),
        "actor": entry.actor,
        "aggregate_type": entry.aggregate_type,
        "aggregate_id": entry.aggregate_id,
        "aggregate_version": entry.aggregate_version,
        "event_type": entry.event_type,
        "volunteer_id": entry.volunteer_id,
        "unit_id": entry.unit_id,
        "lineage": entry.lineage,
        "summary": entry.summary,
    }


def _csv(rows: list[dict[str, Any]], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [
                *(r[c] if r[c] is not None else "" for c in COLUMNS[:-2]),
                "/".join(r["lineage"]),
                json.dumps(r["summary"], ensure_ascii=False, separators=(",", ":")),
            ]
        )
    return out.getvalue()


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)


def export(
    connect: Callable[[], sqlite3.Connection],
    fmt: ExportFormat,
    *,
    volunteer_id: str | None = None,
    unit_id: str | None = None,
    actor: str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    up_to: int | None = None,
    page_size: int = PAGE,
) -> Iterator[str]:
    """The matching audit-trail rows in store order, one chunk of text per page
    (CSV starts with a header row). ``up_to`` pins the export to a store position."""
    after: int | None = None
    first = True
    while True:
        page = audit_trail.search(
            connect(),
            volunteer_id=volunteer_id,
            unit_id=unit_id,
            actor=actor,
            type=type,
            since=since,
            until=until,
            after_position=after,
            limit=page_size,
        )
        items = [e for e in page.items if up_to is None or e.position <= up_to]
        rows = [_row(e) for e in items]
        chunk = _csv(rows, header=first) if fmt == "csv" else _jsonl(rows)
        first = False
        if chunk:
            yield chunk
        if page.next_after_position is None or len(items) < len(page.items):
            return
        after = page.next_after_position
