"""``civic audit verify | checkpoint | checkpoints | history | access-log |
certificate issue/verify | export``: the integrity half of the auditor's tools.

Each command opens the event store of ``--data-dir``; those that need the audit
trail (everything about a volunteer, certificates, exports) first bring it up to
the store's head. Reading a person's data (history, certificate) is recorded in
the access log under ``cli:<OS user>``. Commands that find a problem exit 1.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from pydantic import ValidationError

from domain.errors import DomainError
from infra.settings import Settings
from services.application import CivicApplication
from services.cli_common import DataDir, console, fail, load_settings
from services.principals import Principal, Role

certificate_app = typer.Typer(help="Service certificates: issue and verify.", no_args_is_help=True)


def cli_principal() -> Principal:
    """Who a command-line auditor is recorded as: the OS user, with full rights."""
    user = getpass.getuser()
    return Principal(key_id=f"cli:{user}", name=user, role=Role.ADMIN)


@contextmanager
def _application(settings: Settings) -> Iterator[CivicApplication]:
    from services.bootstrap import build_application  # noqa: PLC0415 - avoid import cycles

    app = build_application(settings)
    try:
        yield app
    finally:
        app.close()


@contextmanager
def _with_audit_trail(settings: Settings) -> Iterator[tuple[CivicApplication, sqlite3.Connection]]:
    """The application and the audit trail's reader, the trail caught up to the head."""
    from projections.audit_trail import AuditTrailProjection  # noqa: PLC0415
    from services.bootstrap import build_runners, build_stream  # noqa: PLC0415

    with _application(settings) as app:
        stream = build_stream(settings, app)
        runners = build_runners(settings, stream)
        runner = runners[AuditTrailProjection.name]
        try:
            head = app.head()
            idle = 0
            while runner.position < head and idle < 40:
                idle = 0 if runner.run_once(timeout=0.05, linger=0) else idle + 1
            if runner.position < head:
                raise fail(f"the audit trail stopped at {runner.position} of {head}")
            yield app, runner.store.reader()
        finally:
            for r in runners.values():
                r.store.reader().close()
                r.store.close()
            close = getattr(stream, "close", None)
            if callable(close):
                close()


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r} is not a date (YYYY-MM-DD)", 2) from None


def _record(
    app: CivicApplication, settings: Settings, subject: UUID, view: str, purpose: str
) -> None:
    from services.audit import access_log  # noqa: PLC0415

    access_log.record_view(
        app,
        cli_principal(),
        timezone=settings.timezone,
        subject_id=subject,
        subject_type="Volunteer",
        view=view,
        purpose=purpose,
    )


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Purpose = Annotated[str, typer.Option("--purpose", help="Why you read this (recorded).")]


def verify(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Recompute the hash chain over the whole store and check the signed
    checkpoints; name the first altered or missing event. Exit 1 on any problem."""
    from services.audit import chain  # noqa: PLC0415

    settings = load_settings(data_dir)
    with _application(settings) as app:
        report = chain.verify(app, settings.audit_secret_bytes())
    if as_json:
        _print_json(report.model_dump(mode="json"))
    else:
        out = console()
        out.print(
            f"events checked: {report.events_checked}, head {report.head_position} "
            f"{report.head_hash[:16]}…, checkpoints: {len(report.checkpoints)}"
        )
        if report.first_break is not None:
            b = report.first_break
            out.print(
                f"FIRST BREAK at position {b.position}: {b.kind} — aggregate {b.aggregate_id} "
                f"v{b.aggregate_version} {b.type or '?'}: {b.detail} "
                f"({report.breaks_total} break(s) in all)"
            )
        failed = [check for check in report.checkpoints if not check.ok]
        if failed:
            out.print(f"{len(failed)} checkpoint(s) do not match; the first ones:")
        for check in failed[:5]:
            if not check.ok:
                c = check.checkpoint
                out.print(
                    f"CHECKPOINT {c.quarter} unit {c.unit_id} at {c.position}: "
                    f"signature {'ok' if check.signature_valid else 'INVALID'}, "
                    f"chain {'ok' if check.hash_matches else 'DIFFERS'}, "
                    f"count {'ok' if check.count_matches else 'DIFFERS'}"
                )
        out.print("chain intact" if report.ok else "chain BROKEN")
    if not report.ok:
        raise typer.Exit(1)


def checkpoint(
    quarter: Annotated[
        str | None, typer.Option(help="e.g. 2026-Q1 (default: the last quarter that ended).")
    ] = None,
    unit: Annotated[
        list[UUID] | None, typer.Option(help="A unit id (repeatable; default: every unit).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Sign and record the chain's head at a quarter's end for each unit; prints the
    checkpoints as JSON lines, to publish outside the database too."""
    from services.audit import chain  # noqa: PLC0415
    from services.audit.access_log import local_day  # noqa: PLC0415

    settings = load_settings(data_dir)
    with _application(settings) as app:
        chosen = quarter or chain.last_quarter(local_day(app.clock(), settings.timezone))
        try:
            outcomes = chain.create_checkpoints(
                app,
                cli_principal(),
                settings.audit_secret_bytes(),
                quarter=chosen,
                timezone=settings.timezone,
                unit_ids=unit or None,
            )
        except DomainError as exc:
            raise fail(exc.detail, 2) from None
    for o in outcomes:
        typer.echo(o.model_dump_json())


def checkpoints(
    unit: Annotated[UUID | None, typer.Option(help="Only this unit's.")] = None,
    quarter: Annotated[str | None, typer.Option(help="Only this quarter's.")] = None,
    data_dir: DataDir = None,
) -> None:
    """List the checkpoints recorded in the store, as JSON lines."""
    from services.audit import chain  # noqa: PLC0415

    settings = load_settings(data_dir)
    with _application(settings) as app:
        for c in chain.list_checkpoints(app, unit_id=unit, quarter=quarter):
            typer.echo(c.model_dump_json())


def history(
    aggregate_id: Annotated[UUID, typer.Argument(help="Any aggregate id.")],
    everything: Annotated[
        bool, typer.Option("--everything", help="A volunteer: everything about them.")
    ] = False,
    purpose: Purpose = "",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """The full, ordered event history of an aggregate, from the event store."""
    from services.audit import history as histories  # noqa: PLC0415

    settings = load_settings(data_dir)
    try:
        if everything:
            with _with_audit_trail(settings) as (app, conn):
                found = histories.volunteer_history(app, aggregate_id, conn)
                _record(app, settings, aggregate_id, "history:everything", purpose)
        else:
            with _application(settings) as app:
                found = histories.aggregate_history(app, aggregate_id)
                subject = histories.concerned_volunteer(found)
                if subject is not None:
                    _record(app, settings, subject, "history", purpose)
    except DomainError as exc:
        raise fail(exc.detail) from None
    if as_json:
        _print_json(found.model_dump(mode="json"))
        return
    out = console()
    for e in found.entries:
        payload = json.dumps(e.payload, ensure_ascii=False, separators=(",", ":"))
        out.print(
            f"{e.position:>9} {e.recorded_at:%Y-%m-%d %H:%M:%S} {e.aggregate_type}.{e.type} "
            f"v{e.version} by {e.actor}" + (f" — {e.reason}" if e.reason else "") + f" {payload}",
            markup=False,
        )


def access_log_command(
    since: Annotated[str, typer.Option("--from", help="First local day, YYYY-MM-DD.")],
    until: Annotated[str | None, typer.Option("--to", help="Last local day.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Who read whose personal data through the audit interface, as JSON lines."""
    from services.audit.access_log import read_access_log  # noqa: PLC0415

    settings = load_settings(data_dir)
    first = _date(since, "--from")
    last = _date(until, "--to") if until else first
    with _application(settings) as app:
        try:
            entries = read_access_log(app, since=first, until=last)
        except DomainError as exc:
            raise fail(exc.detail, 2) from None
    for e in entries:
        typer.echo(e.model_dump_json())


@certificate_app.command("issue")
def certificate_issue(
    volunteer: Annotated[UUID, typer.Option(help="The volunteer's id.")],
    since: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    until: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
    out: Annotated[Path | None, typer.Option(help="Write the JSON here (else stdout).")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write the printable page here.")] = None,
    purpose: Purpose = "",
    data_dir: DataDir = None,
) -> None:
    """Issue a signed service certificate (志愿服务记录证明)."""
    from services.audit import certificate_html, certificates  # noqa: PLC0415

    settings = load_settings(data_dir)
    first, last = _date(since, "--from"), _date(until, "--to")
    with _with_audit_trail(settings) as (app, conn):
        try:
            cert = certificates.issue(
                app,
                conn,
                settings.audit_secret_bytes(),
                volunteer_id=volunteer,
                period_from=first,
                period_to=last,
                timezone=settings.timezone,
            )
        except DomainError as exc:
            raise fail(exc.detail, 2) from None
        _record(app, settings, volunteer, "certificate", purpose)
    text = cert.model_dump_json(indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)
    if html is not None:
        html.write_text(certificate_html.render(cert), encoding="utf-8")


@certificate_app.command("verify")
def certificate_verify(
    file: Annotated[Path, typer.Argument(help="The certificate's JSON.", exists=True)],
    data_dir: DataDir = None,
) -> None:
    """Check a certificate against the history and its signature; exit 1 if it fails."""
    from services.audit import certificates  # noqa: PLC0415

    settings = load_settings(data_dir)
    try:
        cert = certificates.Certificate.model_validate_json(file.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise fail(f"{file} is not a certificate: {exc.error_count()} problem(s)", 2) from None
    with _with_audit_trail(settings) as (app, conn):
        check = certificates.verify_certificate(
            app, conn, settings.audit_secret_bytes(), cert, timezone=settings.timezone
        )
    _print_json(check.model_dump(mode="json"))
    if not check.ok:
        raise typer.Exit(1)


def export(
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    volunteer: Annotated[UUID | None, typer.Option(help="Only events about them.")] = None,
    unit: Annotated[UUID | None, typer.Option(help="Only this unit's subtree.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor's, e.g. key:1a2b.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="e.g. PointsAwarded.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write here (else stdout).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Export the audit trail as CSV or JSON Lines, page by page."""
    from services.audit import exports  # noqa: PLC0415

    if fmt not in ("csv", "jsonl"):
        raise fail("--format is csv or jsonl", 2)
    settings = load_settings(data_dir)
    with _with_audit_trail(settings) as (app, conn):
        chunks = exports.export(
            lambda: conn,
            "csv" if fmt == "csv" else "jsonl",
            volunteer_id=str(volunteer) if volunteer else None,
            unit_id=str(unit) if unit else None,
            actor=actor,
            type=event_type,
            up_to=app.head(),
        )
        if out is None:
            for chunk in chunks:
                sys.stdout.write(chunk)
        else:
            with out.open("w", encoding="utf-8", newline="") as f:
                for chunk in chunks:
                    f.write(chunk)


def register(audit_app: typer.Typer) -> None:
    """Add the integrity commands to ``civic audit``."""
    audit_app.command("verify")(verify)
    audit_app.command("checkpoint")(checkpoint)
    audit_app.command("checkpoints")(checkpoints)
    audit_app.command("history")(history)
    audit_app.command("access-log")(access_log_command)
    audit_app.command("export")(export)
    audit_app.add_typer(certificate_app, name="certificate")
