"""``civic audit ...``: what an auditor runs from a terminal.

The commands live beside the services they call, one module per capability;
each module adds its commands to ``audit_app`` in its ``register`` function.
"""

from __future__ import annotations

import typer

from services import cli_audit_integrity, cli_audit_replay

audit_app = typer.Typer(
    help="Audit and replay: histories, as-of figures, checks, chain verification, certificates.",
    no_args_is_help=True,
)


cli_audit_integrity.register(audit_app)  # verify, checkpoint(s), history, certificate, export
cli_audit_replay.register(audit_app)  # statement, balance, leaderboard, metrics, trace, check...


def register(app: typer.Typer) -> None:
    """Add ``civic audit`` (and its sub-commands) to the ``civic`` command line."""
    app.add_typer(audit_app, name="audit")
