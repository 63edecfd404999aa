"""What every ``civic`` command shares: ``--data-dir``, settings, errors, output.

Sub-command modules (``cli_stream``, ``cli_audit``) import these instead of the
``cli`` module, which imports them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from infra.logging import configure_logging
from infra.settings import Settings

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="CIVIC_DATA_DIR",
        help="Where the event store, views and keys live.",
        show_default="./var",
        file_okay=False,
    ),
]

WIDE = 160  # tables keep whole ids when the output is not a terminal


def console(*, stderr: bool = False) -> Console:
    """A console for the current stream (created per use: tests swap the streams)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        file=stream, highlight=False, width=None if stream.isatty() else WIDE, stderr=stderr
    )


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def load_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    """Settings from the environment, with the command line's overrides (once)."""
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise fail(f"invalid configuration: {problems}", 2) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
    )
