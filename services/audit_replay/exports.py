"""Statement exports as CSV and JSONL, produced row by row (a passbook's history is
never held whole: the response streams as the events are read)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Final, Literal

ExportFormat = Literal["csv", "jsonl"]

CSV_COLUMNS: Final = (
    "line",
    "version",
    "type",
    "event",
    "points",
    "balance_after",
    "balance",
    "reason",
    "actor",
    "recorded_at",
    "business_at",
    "kind",
    "lot_id",
    "lots",
    "activity_id",
    "redemption_id",
    "source_id",
)

MEDIA_TYPES: Final[dict[str, str]] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(f"{lot}:{points}" for lot, points in value)
    return str(value)


def as_csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    # a CSV without rows still has its header
    if buffer.getvalue():
        yield buffer.getvalue()


def as_jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def export(rows: Iterable[dict[str, Any]], fmt: ExportFormat) -> Iterator[str]:
    return as_csv(rows) if fmt == "csv" else as_jsonl(rows)
