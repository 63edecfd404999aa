"""Audit and replay (``/v1/audit/...``, auditors and admins): statements and
balances as of any moment, the leaderboard and unit metrics as they stood then
(replayed from the history, not read from the views), traces of redemptions,
the replay check and what-if replays under a proposed points rule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from projections import leaderboard, unit_metrics
from projections.periods import Granularity
from services.api.deps import PlatformDep, PrincipalDep
from services.api.problems import ProblemError, problems
from services.audit_replay import (
    as_of as replay,
)
from services.audit_replay import (
    check,
    exports,
    service,
    statement,
    trace,
    what_if,
)

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Instant = Annotated[
    AwareDatetime,
    Query(description="an instant with a timezone, e.g. 2026-03-31T23:59:59+08:00"),
]


@router.get(
    "/passbooks/{volunteer_id}/statement",
    summary="A passbook's statement for a period: opening balance, every change, closing",
    description=(
        "Replayed from the passbook's events. `from` is inclusive, `to` exclusive, by "
        "recording time (when each change was booked); each entry also carries its "
        "business time (`business_at`). `format=csv` or `jsonl` streams the statement "
        "as an export (opening row, entries, closing row)."
    ),
    response_model=statement.Statement,
    responses={
        **problems(403, 404, 422),
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
    },
)
def get_statement(
    volunteer_id: UUID,
    platform: PlatformDep,
    principal: PrincipalDep,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    format: Annotated[str, Query(pattern="^(json|csv|jsonl)$")] = "json",
) -> statement.Statement | StreamingResponse:
    if format in ("csv", "jsonl"):
        fmt: exports.ExportFormat = "csv" if format == "csv" else "jsonl"
        body = service.statement_export(platform.app, principal, volunteer_id, start, end, fmt)
        name = f"statement-{volunteer_id}.{format}"
        return StreamingResponse(
            body,
            media_type=exports.MEDIA_TYPES[format],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return service.passbook_statement(platform.app, principal, volunteer_id, start, end)


@router.get(
    "/passbooks/{volunteer_id}/balance",
    summary="A passbook's balance as it stood at a moment (replayed from its events)",
    responses=problems(403, 404),
)
def get_balance(
    volunteer_id: UUID, as_of: Instant, platform: PlatformDep, principal: PrincipalDep
) -> statement.Balance:
    return service.passbook_balance(platform.app, principal, volunteer_id, as_of)


class LeaderboardAsOf(BaseModel):
    as_of: datetime
    by: leaderboard.RankBy
    period: leaderboard.BoardPeriod
    period_key: str
    unit_id: UUID | None
    events_replayed: int = Field(
        description="events recorded by as_of, replayed into a scratch board"
    )
    entries: list[leaderboard.LeaderboardEntry]


def _invalid(exc: ValueError) -> ProblemError:
    return ProblemError(422, "invalid-period", str(exc))


@router.get(
    "/leaderboards",
    summary="The leaderboard as it stood at a past moment (replayed, not from the view)",
    responses=problems(403, 422),
)
def get_leaderboard_as_of(
    as_of: Instant,
    platform: PlatformDep,
    principal: PrincipalDep,
    by: leaderboard.RankBy = "points",
    period: leaderboard.BoardPeriod = "all",
    period_key: Annotated[str | None, Query(max_length=16)] = None,
    unit_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> LeaderboardAsOf:
    service.ensure_auditor(principal)
    try:
        entries, key, replayed = replay.leaderboard_as_of(
            platform.app.recorder,
            as_of,
            by=by,
            period=period,
            period_key=period_key,
            unit_id=str(unit_id) if unit_id else None,
            limit=limit,
            offset=offset,
            timezone=platform.settings.timezone,
            reveal=lambda vid, token: platform.app.vault.reveal(vid, "name", token),
        )
    except ValueError as exc:
        raise _invalid(exc) from None
    return LeaderboardAsOf(
        as_of=as_of,
        by=by,
        period=period,
        period_key=key,
        unit_id=unit_id,
        events_replayed=replayed,
        entries=entries,
    )


class UnitMetricsAsOf(BaseModel):
    as_of: datetime
    events_replayed: int
    metrics: unit_metrics.UnitMetrics


@router.get(
    "/units/{unit_id}/metrics",
    summary="A unit's figures as they stood at a past moment (replayed, not from the view)",
    responses=problems(403, 422),
)
def get_metrics_as_of(
    unit_id: UUID,
    as_of: Instant,
    platform: PlatformDep,
    principal: PrincipalDep,
    granularity: Annotated[str, Query(pattern="^(day|month|quarter|year|all)$")] = "all",
    period_key: Annotated[str | None, Query(max_length=16)] = None,
) -> UnitMetricsAsOf:
    service.ensure_auditor(principal)
    g: Granularity = granularity  # type: ignore[assignment]  # checked by the pattern
    try:
        figures, replayed = replay.metrics_as_of(
            platform.app.recorder,
            str(unit_id),
            as_of,
            granularity=g,
            period_key=period_key,
            timezone=platform.settings.timezone,
        )
    except ValueError as exc:
        raise _invalid(exc) from None
    return UnitMetricsAsOf(as_of=as_of, events_replayed=replayed, metrics=figures)


@router.get(
    "/redemptions/{redemption_id}/trace",
    summary="Trace a redemption to the awards it spent and the service behind each",
    responses=problems(403, 404),
)
def get_trace(
    redemption_id: UUID, platform: PlatformDep, principal: PrincipalDep
) -> trace.RedemptionTrace:
    return service.redemption_trace(platform.app, principal, redemption_id)


@router.get(
    "/check",
    summary="The replay check: every read model rebuilt from history and compared",
    description=(
        "Rebuilds each read model from the event history (up to the position its served "
        "view has applied) into scratch tables, reports every difference (table, key, "
        "served vs recomputed) and reconciles the invariants. `ok` is false on any "
        "difference. Takes as long as replaying the history."
    ),
    responses=problems(403),
)
def get_check(platform: PlatformDep, principal: PrincipalDep) -> check.CheckReport:
    return service.replay_check(platform.app, principal, platform.settings)


@router.post(
    "/what-if",
    summary="Replay the history under a proposed points rule (writes nothing)",
    responses=problems(403, 422),
)
def post_what_if(
    rule: what_if.ProposedRule,
    platform: PlatformDep,
    principal: PrincipalDep,
    top: Annotated[int, Query(ge=1, le=1000)] = what_if.TOP,
    everyone: Annotated[bool, Query(description="list every volunteer's outcome")] = False,
) -> what_if.WhatIfReport:
    return service.run_what_if(platform.app, principal, rule, top=top, everyone=everyone)
