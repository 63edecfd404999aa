"""The replay check: rebuild every read model from the history into scratch
databases, compare them row by row with the served views, and reconcile the
invariants the figures must satisfy.

Each scratch model is replayed up to the position its served view has applied,
so a view that is merely behind is not reported as different (its lag is
reported). Rows are compared table by table inside SQLite (``EXCEPT`` both ways
over the attached served database), so neither side is loaded into memory.

Invariants (on the served unit metrics, all-time figures):

* points: awarded − deducted − redeemed (net of refunds) − expired = the points
  left in the passbooks, per unit (by the volunteers' home lineage) and in total;
  the ledger's own totals against the balances its lots add up to;
* hierarchy: a unit's figure is the sum of its children's plus what is
  attributed to the unit itself; home-attributed figures (points, registrations)
  can only be attributed at stations, so for them a parent equals the sum of its
  children exactly, and for the rest it is at least that sum;
* stock never below zero, and no balance below zero, at any event.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, Final

from eventsourcing.persistence import ApplicationRecorder
from pydantic import BaseModel, Field

from projections.catalog import PROJECTIONS
from projections.periods import DEFAULT_TIMEZONE
from projections.unit_metrics import COUNTERS, UnitMetricsProjection
from projections.view_files import live_path
from services.audit_replay import history
from services.audit_replay.ledger import Ledger
from services.audit_replay.scratch import Scratch

SKIPPED_TABLES: Final = frozenset({"stream_position", "dead_letters"})
HOME_COUNTERS: Final = (
    "points_awarded",
    "points_deducted",
    "points_redeemed",
    "points_expired",
    "volunteers_registered",
)
SAMPLES: Final = 50  # differences shown per table (all are counted)


class Difference(BaseModel):
    view: str
    table: str
    key: dict[str, Any]
    served: dict[str, Any] | None = Field(description="null: the row is missing from the view")
    recomputed: dict[str, Any] | None = Field(description="null: the history has no such row")


class ViewCheck(BaseModel):
    name: str
    served: bool = Field(description="whether a served view was found")
    served_position: int
    head: int
    lag: int = Field(description="events recorded that the served view has not applied")
    events_replayed: int
    tables: int
    rows_compared: int
    differences: int
    samples: list[Difference]


class Invariant(BaseModel):
    name: str
    ok: bool
    checked: int = Field(description="how many figures were held against each other")
    violations: list[dict[str, Any]] = Field(description="the first few that did not hold")


class CheckReport(BaseModel):
    ok: bool
    head: int
    events_read: int
    seconds: float
    views: list[ViewCheck]
    invariants: list[Invariant]


def _served_position(path: Path) -> int | None:
    if not path.exists():
        return None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        try:
            row = conn.execute("SELECT MAX(position) FROM stream_position").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0] or 0)


def _tables(conn: sqlite3.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "  # noqa: S608 - fixed
        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [r[0] for r in rows if r[0] not in SKIPPED_TABLES]


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> tuple[list[str], list[str]]:
    info = conn.execute(f'PRAGMA {schema}.table_info("{table}")').fetchall()
    columns = [r[1] for r in info]
    keys = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5] > 0] or columns
    return columns, keys


def compare_view(
    name: str, scratch_path: Path, served_path: Path
) -> tuple[int, int, int, list[Difference]]:
    """(tables, rows compared, differences, samples) of one view against its scratch copy."""
    with closing(sqlite3.connect(f"file:{scratch_path}?mode=ro", uri=True)) as conn:
        conn.execute("ATTACH DATABASE ? AS served", (f"file:{served_path}?mode=ro",))
        served_tables = set(_tables(conn, "served"))
        count = differences = 0
        samples: list[Difference] = []
        tables = _tables(conn, "main")
        for table in tables:
            count += conn.execute(f'SELECT COUNT(*) FROM main."{table}"').fetchone()[0]  # noqa: S608
            if table not in served_tables:
                differences += 1
                samples.append(
                    Difference(
                        view=name, table=table, key={}, served=None, recomputed={"table": table}
                    )
                )
                continue
            found, shown = _compare_table(conn, name, table)
            differences += found
            samples.extend(shown)
    return len(tables), count, differences, samples


def _compare_table(conn: sqlite3.Connection, view: str, table: str) -> tuple[int, list[Difference]]:
    columns, keys = _columns(conn, "main", table)
    served_columns, _ = _columns(conn, "served", table)
    if served_columns != columns:
        return 1, [
            Difference(
                view=view,
                table=table,
                key={"schema": True},
                served={"columns": served_columns},
                recomputed={"columns": columns},
            )
        ]
    names = ", ".join(f'"{c}"' for c in columns)
    sides: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {"served": {}, "recomputed": {}}
    total: set[tuple[Any, ...]] = set()
    for side, (a, b) in {"recomputed": ("main", "served"), "served": ("served", "main")}.items():
        rows = conn.execute(
            f'SELECT {names} FROM {a}."{table}" EXCEPT SELECT {names} FROM {b}."{table}"'  # noqa: S608
        )
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            key = tuple(record[k] for k in keys)
            total.add(key)
            if len(sides[side]) < SAMPLES * 2:
                sides[side][key] = record
    shown = []
    for key in sorted(total, key=repr)[:SAMPLES]:
        served, recomputed = sides["served"].get(key), sides["recomputed"].get(key)
        shown.append(
            Difference(
                view=view,
                table=table,
                key=dict(zip(keys, key, strict=True)),
                served=served,
                recomputed=recomputed,
            )
        )
    return len(total), shown


# -- invariants ---------------------------------------------------------------------------


def _metrics_all(path: Path) -> dict[str, dict[str, int]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        columns = ", ".join(COUNTERS)
        rows = conn.execute(
            f"SELECT unit_id, {columns} FROM um_counters WHERE period = 'all'"  # noqa: S608
        ).fetchall()
    return {r[0]: dict(zip(COUNTERS, r[1:], strict=True)) for r in rows}


def _invariant(name: str, checked: int, violations: list[dict[str, Any]]) -> Invariant:
    return Invariant(name=name, ok=not violations, checked=checked, violations=violations[:SAMPLES])


def invariants(ledger: Ledger, metrics: dict[str, dict[str, int]]) -> list[Invariant]:
    results = []
    # the ledger against itself: totals from the points figures, balances from lots
    t = ledger.totals
    net = t["awarded"] - t["deducted"] - t["redeemed"] - t["expired"]
    results.append(
        _invariant(
            "points issued - deducted - redeemed - expired = outstanding balances (history)",
            1,
            []
            if net == ledger.outstanding
            else [{"net_issued": net, "outstanding": ledger.outstanding, **t}],
        )
    )
    # the served unit metrics against the balances, per unit and in total
    outstanding = ledger.outstanding_by_unit()
    violations = []
    units = set(outstanding) | set(metrics)
    for unit in sorted(units):
        m = metrics.get(unit, dict.fromkeys(COUNTERS, 0))
        net_unit = (
            m["points_awarded"] - m["points_deducted"] - m["points_redeemed"] - m["points_expired"]
        )
        if net_unit != outstanding.get(unit, 0):
            violations.append(
                {"unit_id": unit, "net_issued": net_unit, "outstanding": outstanding.get(unit, 0)}
            )
    centers = [u for u, parent in ledger.parents.items() if parent is None]
    served_total = sum(
        metrics.get(u, {}).get("points_awarded", 0)
        - metrics.get(u, {}).get("points_deducted", 0)
        - metrics.get(u, {}).get("points_redeemed", 0)
        - metrics.get(u, {}).get("points_expired", 0)
        for u in centers
    )
    if served_total != ledger.outstanding:
        violations.append(
            {"unit_id": "total", "net_issued": served_total, "outstanding": ledger.outstanding}
        )
    results.append(
        _invariant(
            "points issued - deducted - redeemed - expired = outstanding, per unit and total",
            len(units) + 1,
            violations,
        )
    )
    # the hierarchy: a parent is the sum of its children (plus its own)
    violations = []
    checked = 0
    zero = dict.fromkeys(COUNTERS, 0)
    for parent, kids in sorted(ledger.children().items()):
        own = metrics.get(parent, zero)
        for counter in COUNTERS:
            checked += 1
            below = sum(metrics.get(k, zero)[counter] for k in kids)
            exact = counter in HOME_COUNTERS
            if (own[counter] != below) if exact else (own[counter] < below):
                violations.append(
                    {
                        "unit_id": parent,
                        "figure": counter,
                        "unit": own[counter],
                        "sum_of_children": below,
                        "rule": "equal" if exact else "at least",
                    }
                )
    results.append(
        _invariant("a parent's metrics = sum of its children's (+ its own)", checked, violations)
    )
    results.append(
        _invariant(
            "stock never below zero",
            len(ledger.stock),
            [
                {"reward_id": d.reward_id, "position": d.position, "stock": d.stock}
                for d in ledger.stock_dips
            ],
        )
    )
    results.append(
        _invariant(
            "no balance below zero",
            len(ledger.balances),
            [
                {"passbook_id": p, "position": pos, "balance": b}
                for p, pos, b in ledger.negative_balances
            ],
        )
    )
    return results


# -- the whole check ----------------------------------------------------------------------


def run_check(
    recorder: ApplicationRecorder,
    views_dir: Path,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    names: list[str] | None = None,
    scratch_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    started = time.perf_counter()
    names = names or list(PROJECTIONS)
    head = history.head(recorder)
    served = {name: live_path(views_dir, name) for name in names}
    positions = {name: _served_position(path) for name, path in served.items()}
    upto = {name: head if p is None else p for name, p in positions.items()}
    metrics_name = UnitMetricsProjection.name
    ledger_upto = upto.get(metrics_name, head)
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="civic-check-") as tmp:
        directory = Path(tmp)
        scratch = Scratch.open(names, directory=directory, timezone=timezone)
        ledger = Ledger()
        read = 0
        try:
            for page in history.pages(recorder, upto=max(upto.values(), default=head)):
                read += len(page)
                scratch.apply(page, upto)
                if page[0].position <= ledger_upto:
                    ledger.fold(e for e in page if e.position <= ledger_upto)
                if progress is not None:
                    progress(page[-1].position, head)
        finally:
            applied = {name: scratch[name].applied for name in names}
            scratch.close()
        views = []
        for name in names:
            scratch_path = directory / f"{name}.sqlite"
            path = served[name]
            position = positions[name]
            if position is None:
                views.append(
                    ViewCheck(
                        name=name,
                        served=False,
                        served_position=0,
                        head=head,
                        lag=head,
                        events_replayed=applied[name],
                        tables=0,
                        rows_compared=0,
                        differences=1,
                        samples=[
                            Difference(view=name, table="*", key={}, served=None, recomputed={})
                        ],
                    )
                )
                continue
            tables, rows, count, samples = compare_view(name, scratch_path, path)
            views.append(
                ViewCheck(
                    name=name,
                    served=True,
                    served_position=position,
                    head=head,
                    lag=head - position,
                    events_replayed=applied[name],
                    tables=tables,
                    rows_compared=rows,
                    differences=count,
                    samples=samples,
                )
            )
        metrics_path = served.get(metrics_name)
        if metrics_path is None or positions.get(metrics_name) is None:
            metrics_path = directory / f"{metrics_name}.sqlite"
        checks = invariants(ledger, _metrics_all(metrics_path)) if metrics_path.exists() else []
    ok = all(v.differences == 0 for v in views) and all(i.ok for i in checks)
    return CheckReport(
        ok=ok,
        head=head,
        events_read=read,
        seconds=round(time.perf_counter() - started, 3),
        views=views,
        invariants=checks,
    )
