"""What the HTTP routes and the CLI call: authorisation (auditors and admins read
the audit interface) and loading from the store, around the pure functions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.errors import NotFoundError, RuleViolationError
from domain.passbook import Passbook
from infra.settings import Settings
from services.application import CivicApplication
from services.audit_replay import check, exports, history, statement, trace, what_if
from services.principals import ForbiddenError, Principal


def ensure_auditor(principal: Principal) -> None:
    if not principal.can_read_everything():
        raise ForbiddenError("the audit interface is for auditors and admins")


def _passbook_events(app: CivicApplication, volunteer_id: UUID) -> list[Any]:
    events = history.aggregate_events(app, Passbook.create_id(volunteer_id))
    if not events:
        raise NotFoundError(f"no passbook for volunteer {volunteer_id}")
    return events


def _period(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise RuleViolationError("the period must end after it starts", code="bad-period")


def passbook_statement(
    app: CivicApplication,
    principal: Principal,
    volunteer_id: UUID,
    start: datetime | None,
    end: datetime | None,
) -> statement.Statement:
    ensure_auditor(principal)
    _period(start, end)
    try:
        return statement.statement(_passbook_events(app, volunteer_id), start=start, end=end)
    except LookupError as exc:
        raise NotFoundError(str(exc)) from None


def statement_export(
    app: CivicApplication,
    principal: Principal,
    volunteer_id: UUID,
    start: datetime | None,
    end: datetime | None,
    fmt: exports.ExportFormat,
) -> Iterator[str]:
    """Checked before the first byte is sent; then produced as the events are read."""
    ensure_auditor(principal)
    _period(start, end)
    passbook_id = Passbook.create_id(volunteer_id)
    if not list(app.events.get(passbook_id, limit=1)):
        raise NotFoundError(f"no passbook for volunteer {volunteer_id}")
    events = history.aggregate_event_stream(app, passbook_id)
    return exports.export(statement.rows(events, start=start, end=end), fmt)


def passbook_balance(
    app: CivicApplication, principal: Principal, volunteer_id: UUID, as_of: datetime
) -> statement.Balance:
    ensure_auditor(principal)
    try:
        records = app.recorder.select_events(Passbook.create_id(volunteer_id))
        if not records:
            raise NotFoundError(f"no passbook for volunteer {volunteer_id}")
        try:
            return statement.balance_of_stored(records, as_of)
        except (ValueError, KeyError, TypeError):  # not plain JSON: decode through the library
            return statement.balance_as_of(_passbook_events(app, volunteer_id), as_of)
    except LookupError as exc:
        raise NotFoundError(str(exc)) from None


def redemption_trace(
    app: CivicApplication, principal: Principal, redemption_id: UUID
) -> trace.RedemptionTrace:
    ensure_auditor(principal)
    return trace.trace_redemption(app, redemption_id)


def replay_check(
    app: CivicApplication, principal: Principal, settings: Settings
) -> check.CheckReport:
    ensure_auditor(principal)
    return check.run_check(app.recorder, settings.views_dir, timezone=settings.timezone)


def run_what_if(
    app: CivicApplication,
    principal: Principal,
    rule: what_if.ProposedRule,
    *,
    top: int = what_if.TOP,
    everyone: bool = False,
) -> what_if.WhatIfReport:
    ensure_auditor(principal)
    try:
        return what_if.what_if(
            history.pages(app.recorder),
            rule,
            current_rule=app.points_rule,
            current_expiry=app.expiry_policy,
            now=app.clock(),
            top=top,
            everyone=everyone,
        )
    except ValueError as exc:
        raise RuleViolationError(str(exc), code="bad-rule") from None
