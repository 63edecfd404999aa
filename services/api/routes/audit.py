"""The auditor's routes under ``/v1/audit/...``: chain verification and checkpoints,
histories from the event store, service certificates, streamed exports and the
personal-data access log. Auditors and admins only (the access log: admins).

Reading a person's data here (a volunteer's history, a certificate) is recorded
as a ``PersonalDataViewed`` event before the data is returned; pass ``purpose``
to say why.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from projections.audit_trail import AuditTrailProjection
from services.api.deps import PlatformDep, PrincipalDep
from services.api.execute import wait_for_projection
from services.api.problems import ProblemError, problems
from services.audit import access_log, certificate_html, certificates, chain, exports, history
from services.bootstrap import Platform
from services.principals import ForbiddenError, Principal

AUDIT_TRAIL = AuditTrailProjection.name


def require_auditor(principal: PrincipalDep) -> Principal:
    if not principal.can_read_everything():
        raise ForbiddenError("only auditors and admins may use the audit interface")
    return principal


def require_admin(principal: PrincipalDep) -> Principal:
    principal.ensure_admin()
    return principal


AuditorDep = Annotated[Principal, Depends(require_auditor)]
AdminDep = Annotated[Principal, Depends(require_admin)]
Purpose = Annotated[
    str | None,
    Query(max_length=500, description="why you are reading this person's data (recorded)"),
]

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def _audit_trail(platform: Platform, min_position: int) -> tuple[sqlite3.Connection, int]:
    """The audit trail's reader once it has applied ``min_position``, and its position."""
    runner = platform.runners.get(AUDIT_TRAIL)
    if runner is None:
        raise ProblemError(503, "projection-unavailable", "the audit trail is not running")
    wait_for_projection(platform, AUDIT_TRAIL, min_position)
    return runner.store.reader(), runner.position


# -- the hash chain ----------------------------------------------------------------------


@router.get(
    "/verify",
    summary="Recompute the event store's hash chain and check the signed checkpoints",
    description=(
        "Reads the whole store. `ok` is false when any event was altered, deleted or "
        "inserted outside the recorder (`first_break` names it) or a checkpoint does not "
        "match its signature, the chain or its unit's event count."
    ),
    responses=problems(403),
)
def get_verify(platform: PlatformDep, principal: AuditorDep) -> chain.VerifyReport:
    return chain.verify(platform.app, platform.settings.audit_secret_bytes())


class Checkpoints(BaseModel):
    checkpoints: list[chain.CheckpointView]


@router.get(
    "/checkpoints",
    summary="The signed quarterly checkpoints of the hash chain (civic audit checkpoint)",
    responses=problems(403),
)
def get_checkpoints(
    platform: PlatformDep,
    principal: AuditorDep,
    unit_id: UUID | None = None,
    quarter: Annotated[str | None, Query(pattern=r"^\d{4}-Q[1-4]$")] = None,
) -> Checkpoints:
    return Checkpoints(
        checkpoints=chain.list_checkpoints(platform.app, unit_id=unit_id, quarter=quarter)
    )


# -- histories ---------------------------------------------------------------------------


@router.get(
    "/history/{aggregate_id}",
    summary="The full, ordered event history of any aggregate, read from the event store",
    description=(
        "Any volunteer, passbook, activity, unit, reward or redemption: every event with "
        "its position, version, type, time, actor, reason and payload (upcast). With "
        "`everything=true` a volunteer's id gives everything about them: their volunteer "
        "and passbook, their redemptions and the activity events naming them. Reading a "
        "person's history is recorded in the access log."
    ),
    responses=problems(403, 404, 503),
)
def get_history(
    aggregate_id: UUID,
    platform: PlatformDep,
    principal: AuditorDep,
    everything: Annotated[
        bool, Query(description="for a volunteer: everything about them")
    ] = False,
    purpose: Purpose = None,
) -> history.History:
    app = platform.app
    if everything:
        conn, _ = _audit_trail(platform, app.head())
        found = history.volunteer_history(app, aggregate_id, conn)
        subject: UUID | None = aggregate_id
    else:
        found = history.aggregate_history(app, aggregate_id)
        if found.subject_type == "AccessLog":
            principal.ensure_admin()  # the access log is the admins' to read
        subject = history.concerned_volunteer(found)
    if subject is not None:
        access_log.record_view(
            app,
            principal,
            timezone=platform.settings.timezone,
            subject_id=subject,
            subject_type="Volunteer",
            view="history" if not everything else "history:everything",
            purpose=purpose,
        )
    return found


# -- the access log ----------------------------------------------------------------------


class AccessLogPage(BaseModel):
    since: date
    until: date
    entries: list[access_log.AccessLogEntry]


@router.get(
    "/access-log",
    summary="Who read whose personal data through the audit interface, and why (admins)",
    responses=problems(403, 422),
)
def get_access_log(
    platform: PlatformDep,
    principal: AdminDep,
    since: Annotated[date, Query(alias="from", description="first local day")],
    until: Annotated[date | None, Query(alias="to", description="last local day")] = None,
    subject_id: UUID | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
) -> AccessLogPage:
    last = until or since
    return AccessLogPage(
        since=since,
        until=last,
        entries=access_log.read_access_log(
            platform.app, since=since, until=last, subject_id=subject_id, actor=actor
        ),
    )


# -- certificates ------------------------------------------------------------------------


@router.get(
    "/certificates",
    summary="A service certificate (志愿服务记录证明) for a volunteer and a period",
    description=(
        "The confirmed services whose activity took place between `from` and `to` (local "
        "dates), the hours, the issuing unit and the hash of the event range they were "
        "derived from; signed. `format=html` gives the printable page. Recorded in the "
        "access log."
    ),
    responses={
        **problems(403, 404, 422, 503),
        200: {"content": {"application/json": {}, "text/html": {}}},
    },
    response_model=certificates.Certificate,
)
def get_certificate(
    platform: PlatformDep,
    principal: AuditorDep,
    volunteer_id: UUID,
    period_from: Annotated[date, Query(alias="from")],
    period_to: Annotated[date, Query(alias="to")],
    format: Literal["json", "html"] = "json",
    purpose: Purpose = None,
) -> certificates.Certificate | HTMLResponse:
    app = platform.app
    conn, position = _audit_trail(platform, app.head())
    cert = certificates.issue(
        app,
        conn,
        platform.settings.audit_secret_bytes(),
        volunteer_id=volunteer_id,
        period_from=period_from,
        period_to=period_to,
        timezone=platform.settings.timezone,
        as_of=position,
    )
    access_log.record_view(
        app,
        principal,
        timezone=platform.settings.timezone,
        subject_id=volunteer_id,
        subject_type="Volunteer",
        view="certificate",
        purpose=purpose,
    )
    if format == "html":
        return HTMLResponse(certificate_html.render(cert))
    return cert


@router.post(
    "/certificates/verifications",
    summary="Check a certificate against the history (and its signature)",
    responses=problems(403, 422, 503),
)
def verify_certificate(
    cert: certificates.Certificate, platform: PlatformDep, principal: AuditorDep
) -> certificates.CertificateCheck:
    conn, _ = _audit_trail(platform, platform.app.head())
    return certificates.verify_certificate(
        platform.app,
        conn,
        platform.settings.audit_secret_bytes(),
        cert,
        timezone=platform.settings.timezone,
    )


# -- exports -----------------------------------------------------------------------------


class ExportQuery(BaseModel):
    format: exports.ExportFormat = "jsonl"
    volunteer_id: UUID | None = None
    unit_id: UUID | None = None
    actor: str | None = Field(default=None, max_length=200)
    type: str | None = Field(default=None, max_length=200)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


@router.get(
    "/export",
    summary="The audit trail as CSV or JSON Lines, streamed",
    description=(
        "The same filters as `GET /v1/audit`; every matching row, in store order, up to "
        "the position the audit trail had applied when the export began (header "
        "`X-Civic-Position`). Streamed page by page: any size of history."
    ),
    responses={**problems(403, 503), 200: {"content": {"text/csv": {}, "application/jsonl": {}}}},
    response_class=StreamingResponse,
)
def get_export(
    platform: PlatformDep,
    principal: AuditorDep,
    query: Annotated[ExportQuery, Query()],
) -> StreamingResponse:
    runner = platform.runners.get(AUDIT_TRAIL)
    if runner is None:
        raise ProblemError(503, "projection-unavailable", "the audit trail is not running")
    position = runner.position
    chunks = exports.export(
        runner.store.reader,
        query.format,
        volunteer_id=str(query.volunteer_id) if query.volunteer_id else None,
        unit_id=str(query.unit_id) if query.unit_id else None,
        actor=query.actor,
        type=query.type,
        since=query.since,
        until=query.until,
        up_to=position,
    )
    filename = f"audit-{position}.{query.format}"
    return StreamingResponse(
        chunks,
        media_type=exports.MEDIA_TYPES[query.format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Civic-Position": str(position),
        },
    )
