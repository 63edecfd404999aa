"""``civic audit statement | balance | leaderboard | metrics | trace | check | what-if``:
figures as of any moment, traces, the replay check and what-if replays, from a
terminal. Each reads the event store under ``--data-dir`` directly (the server may
keep running) and acts as the local admin."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table

from domain.errors import DomainError
from projections.periods import Granularity
from services.application import CivicApplication
from services.audit_replay import as_of as replay
from services.audit_replay import check, service, what_if
from services.audit_replay.exports import ExportFormat
from services.bootstrap import build_application
from services.cli_common import DataDir, console, fail, load_settings, progress_bar
from services.principals import SYSTEM

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _instant(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{name} must be an ISO 8601 instant, e.g. 2026-03-31T23:59:59+08:00", 2
        ) from None
    if at.tzinfo is None:
        raise fail(f"{name} needs a timezone, e.g. 2026-03-31T23:59:59+08:00", 2)
    return at


@contextmanager
def _application(data_dir: Path | None) -> Iterator[CivicApplication]:
    settings = load_settings(data_dir)
    app = build_application(settings)
    try:
        yield app
    except DomainError as exc:
        raise fail(exc.detail) from None
    finally:
        app.close()


def _print_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


def statement_command(
    volunteer_id: UUID,
    start: Annotated[str | None, typer.Option("--from", help="Inclusive instant.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Exclusive instant.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table, json, csv or jsonl (streamed).")
    ] = "table",
    data_dir: DataDir = None,
) -> None:
    """A passbook's statement for a period: opening balance, each change, closing."""
    begin, finish = _instant(start, "--from"), _instant(end, "--to")
    if fmt not in ("table", "json", "csv", "jsonl"):
        raise fail("--format is one of table, json, csv, jsonl", 2)
    with _application(data_dir) as app:
        if fmt in ("csv", "jsonl"):
            export_format: ExportFormat = "csv" if fmt == "csv" else "jsonl"
            for chunk in service.statement_export(
                app, SYSTEM, volunteer_id, begin, finish, export_format
            ):
                sys.stdout.write(chunk)
            return
        result = service.passbook_statement(app, SYSTEM, volunteer_id, begin, finish)
    if fmt == "json":
        _print_json(result)
        return
    table = Table("recorded", "business", "type", "points", "balance", "reason", "actor")
    table.add_row("", "", "opening", "", str(result.opening_balance), "", "")
    for e in result.entries:
        table.add_row(
            e.recorded_at.isoformat(timespec="seconds"),
            e.business_at.isoformat(timespec="seconds"),
            e.type,
            f"{e.points:+d}",
            str(e.balance_after),
            e.reason,
            e.actor,
        )
    table.add_row("", "", "closing", "", str(result.closing_balance), "", "")
    console().print(table)


def balance_command(
    volunteer_id: UUID,
    at: Annotated[str, typer.Option("--as-of", help="e.g. 2026-03-31T23:59:59+08:00")],
    data_dir: DataDir = None,
) -> None:
    """A passbook's balance as it stood at a moment."""
    instant = _instant(at, "--as-of")
    assert instant is not None  # noqa: S101 - a required option
    with _application(data_dir) as app:
        _print_json(service.passbook_balance(app, SYSTEM, volunteer_id, instant))


def leaderboard_command(
    at: Annotated[str, typer.Option("--as-of", help="e.g. 2026-03-31T23:59:59+08:00")],
    by: Annotated[str, typer.Option(help="points or hours")] = "points",
    period: Annotated[str, typer.Option(help="all, year, quarter, month, week")] = "all",
    period_key: Annotated[str | None, typer.Option(help="default: the period of --as-of")] = None,
    unit: Annotated[UUID | None, typer.Option(help="a unit's subtree")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """The leaderboard as it stood at a moment, replayed from the history."""
    instant = _instant(at, "--as-of")
    assert instant is not None  # noqa: S101 - a required option
    if by not in ("points", "hours") or period not in ("all", "year", "quarter", "month", "week"):
        raise fail("--by is points or hours; --period all, year, quarter, month or week", 2)
    settings = load_settings(data_dir)
    with _application(data_dir) as app:
        try:
            entries, key, replayed = replay.leaderboard_as_of(
                app.recorder,
                instant,
                by=by,  # type: ignore[arg-type]  # checked above
                period=period,  # type: ignore[arg-type]
                period_key=period_key,
                unit_id=str(unit) if unit else None,
                limit=limit,
                timezone=settings.timezone,
                reveal=lambda vid, token: app.vault.reveal(vid, "name", token),
            )
        except ValueError as exc:
            raise fail(str(exc), 2) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "as_of": instant.isoformat(),
                    "period_key": key,
                    "events_replayed": replayed,
                    "entries": [e.model_dump() for e in entries],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    table = Table("rank", "volunteer", "name", "points", "hours", title=f"{period} {key}")
    for e in entries:
        table.add_row(str(e.rank), e.volunteer_id, e.name, str(e.points), f"{e.hours:g}")
    console().print(table)
    typer.echo(f"{replayed} events recorded by {instant.isoformat()} replayed.")


def metrics_command(
    unit_id: UUID,
    at: Annotated[str, typer.Option("--as-of", help="e.g. 2026-03-31T23:59:59+08:00")],
    granularity: Annotated[str, typer.Option(help="day, month, quarter, year, all")] = "all",
    period_key: Annotated[str | None, typer.Option(help="default: the period of --as-of")] = None,
    data_dir: DataDir = None,
) -> None:
    """A unit's figures as they stood at a moment, replayed from the history."""
    instant = _instant(at, "--as-of")
    assert instant is not None  # noqa: S101 - a required option
    if granularity not in ("day", "month", "quarter", "year", "all"):
        raise fail("--granularity is day, month, quarter, year or all", 2)
    g: Granularity = granularity  # type: ignore[assignment]  # checked above
    settings = load_settings(data_dir)
    with _application(data_dir) as app:
        try:
            figures, _ = replay.metrics_as_of(
                app.recorder,
                str(unit_id),
                instant,
                granularity=g,
                period_key=period_key,
                timezone=settings.timezone,
            )
        except ValueError as exc:
            raise fail(str(exc), 2) from None
    _print_json(figures)


def trace_command(redemption_id: UUID, data_dir: DataDir = None) -> None:
    """Trace a redemption to the awards it spent and the service behind each (JSON)."""
    with _application(data_dir) as app:
        _print_json(service.redemption_trace(app, SYSTEM, redemption_id))


def _report_check(report: check.CheckReport) -> None:
    out = console()
    table = Table("read model", "served at", "lag", "rows", "differences")
    for v in report.views:
        style = "green" if v.differences == 0 else "red"
        served = str(v.served_position) if v.served else "missing"
        table.add_row(
            v.name, served, str(v.lag), str(v.rows_compared), f"[{style}]{v.differences}[/]"
        )
    out.print(table)
    for v in report.views:
        for d in v.samples:
            out.print(
                f"[red]{v.name}.{d.table}[/] {json.dumps(d.key, ensure_ascii=False)}: "
                f"served {json.dumps(d.served, ensure_ascii=False)} "
                f"recomputed {json.dumps(d.recomputed, ensure_ascii=False)}"
            )
    for i in report.invariants:
        mark = "[green]ok[/]" if i.ok else "[red]FAILED[/]"
        out.print(f"{mark} {i.name} ({i.checked} checked)")
        for violation in i.violations:
            out.print(f"    {json.dumps(violation, ensure_ascii=False)}")
    verdict = "no differences" if report.ok else "DIFFERENCES FOUND"
    out.print(f"{report.events_read} events replayed in {report.seconds:.1f} s: {verdict}")


def check_command(as_json: JsonOption = False, data_dir: DataDir = None) -> None:
    """Rebuild every read model from history, compare with the served views and
    reconcile the invariants; exits 1 on any difference."""
    settings = load_settings(data_dir)
    with _application(data_dir) as app, progress_bar() as progress:
        task = progress.add_task("replaying", total=None)

        def advance(position: int, head: int) -> None:
            progress.update(task, completed=position, total=max(head, 1))

        report = check.run_check(
            app.recorder, settings.views_dir, timezone=settings.timezone, progress=advance
        )
    if as_json:
        _print_json(report)
    else:
        _report_check(report)
    if not report.ok:
        raise typer.Exit(1)


def what_if_command(
    rule: Annotated[
        Path, typer.Option("--rule", exists=True, dir_okay=False, help="The rule as JSON.")
    ],
    top: Annotated[int, typer.Option(min=1, max=1000)] = what_if.TOP,
    everyone: Annotated[bool, typer.Option("--all", help="Every volunteer's outcome.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Replay the history under a proposed points rule; writes nothing (JSON)."""
    try:
        proposed = what_if.ProposedRule.model_validate_json(rule.read_text(encoding="utf-8"))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(f"invalid rule: {problems}", 2) from None
    with _application(data_dir) as app:
        _print_json(service.run_what_if(app, SYSTEM, proposed, top=top, everyone=everyone))


COMMANDS: dict[str, Callable[..., Any]] = {
    "statement": statement_command,
    "balance": balance_command,
    "leaderboard": leaderboard_command,
    "metrics": metrics_command,
    "trace": trace_command,
    "check": check_command,
    "what-if": what_if_command,
}


def register(audit_app: typer.Typer) -> None:
    """Add the replay commands to ``civic audit``."""
    for name, command in COMMANDS.items():
        audit_app.command(name)(command)
