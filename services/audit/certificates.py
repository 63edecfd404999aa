"""Service certificates (志愿服务记录证明): a volunteer's confirmed service in a
period, derived from the event store and tied to the hash chain.

A certificate lists each confirmed service (activity, date, hours) whose activity
took place in the period (local dates), the issuing unit (the volunteer's home
station), and the event range it was derived from: the store position it was
issued as of, the chain's hash at the last included event, and a digest of the
included events' links. Its number is derived from the volunteer, the period and
that digest, so the same history always yields the same number. It is signed
with HMAC-SHA256 under ``CIVIC_AUDIT_SECRET``.

``verify_certificate`` derives the certificate again from the history as of the
same position, compares every field, checks the chain up to that position and
the signature: an edited certificate or an edited history both fail. It also
says whether later events (a correction, a late confirmation) changed it since.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import struct
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, StringConstraints

from domain.errors import NotFoundError, RuleViolationError
from infra.hash_chain import notifications, verify_chain
from projections.audit_related import related_aggregates
from services.application import CivicApplication
from services.audit.chain import chain_table, sign
from services.audit.history import HistoryEntry, aggregate_entries

MAX_PERIOD_DAYS = 3660
MAX_POSITION = 2**62  # beyond any store; keeps SQLite integers in range
_U64 = struct.Struct(">Q")
_CENT = Decimal("0.01")


# A certificate comes back for verification from outside: every field is bounded so
# that junk is refused with a 422 before it reaches the history.
Position = Annotated[int, Field(ge=0, le=MAX_POSITION)]
Count = Annotated[int, Field(ge=0, le=MAX_POSITION)]
Hours = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2, allow_inf_nan=False)]
Label = Annotated[str, StringConstraints(max_length=500)]
HexDigest = Annotated[str, StringConstraints(max_length=128)]


class CertifiedService(BaseModel):
    activity_id: UUID
    title: Label
    category: Label
    unit_id: UUID = Field(description="the unit that organised the activity")
    service_date: date = Field(description="the activity's local date")
    minutes: Count
    hours: Hours
    people_served: Count
    hours_source: Label = Field(description="checkin (measured) or organizer (entered)")
    position: Position = Field(description="store position of the ServiceConfirmed event")
    event_hash: HexDigest = Field(description="that event's link in the hash chain (hex)")


class EventRange(BaseModel):
    as_of_position: Position = Field(description="the store position the certificate reflects")
    first_position: Position | None
    last_position: Position | None
    chain_hash: HexDigest | None = Field(description="the chain's hash at last_position (hex)")
    events_digest: HexDigest = Field(
        description="SHA-256 over the included events' positions+links"
    )


class Certificate(BaseModel):
    number: Label
    volunteer_id: UUID
    volunteer_name: Label
    period_from: date
    period_to: date
    issuing_unit_id: UUID
    issuing_unit_name: Label
    services: list[CertifiedService] = Field(max_length=100_000)
    service_count: Count
    total_minutes: Count
    total_hours: Hours
    range: EventRange
    issued_at: datetime
    signature: HexDigest = Field(description="HMAC-SHA256 of every other field (hex)")


class CertificateCheck(BaseModel):
    ok: bool
    number: str
    signature_valid: bool
    matches_history: bool
    chain_intact: bool
    differences: list[str] = Field(description="fields that differ from the history")
    superseded: bool = Field(
        description="later events changed the volunteer's record for the period since"
    )


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(_CENT)


def _upto(entries: list[HistoryEntry], position: int) -> list[HistoryEntry]:
    return [e for e in entries if e.position <= position]


def _latest(entries: list[HistoryEntry], field: str) -> Any:
    value = None
    for e in entries:
        if field in e.payload:
            value = e.payload[field]
    return value


def _signed_payload(cert: Certificate) -> dict[str, Any]:
    data: dict[str, Any] = cert.model_dump(mode="json", exclude={"signature"})
    return data


def derive(
    app: CivicApplication,
    audit_trail: sqlite3.Connection,
    *,
    volunteer_id: UUID,
    period_from: date,
    period_to: date,
    timezone: str,
    as_of: int | None = None,
) -> Certificate:
    """The certificate as the history stood at position ``as_of`` (default: now),
    unsigned and stamped with the current time."""
    if period_to < period_from or (period_to - period_from).days > MAX_PERIOD_DAYS:
        raise RuleViolationError("give from <= to, at most ten years apart", code="invalid-period")
    position = app.head() if as_of is None else as_of
    volunteer = _upto(aggregate_entries(app, volunteer_id), position)
    if not volunteer or volunteer[0].aggregate_type != "Volunteer":
        raise NotFoundError(f"volunteer {volunteer_id} not found")
    station_id = UUID(str(volunteer[0].payload["home_station_id"]))
    station = _upto(aggregate_entries(app, station_id), position)
    tz = ZoneInfo(timezone)
    services = []
    for aggregate in related_aggregates(audit_trail, str(volunteer_id)):
        entries = _upto(aggregate_entries(app, UUID(aggregate)), position)
        if not entries or entries[0].aggregate_type != "Activity":
            continue
        published = entries[0].payload
        day = datetime.fromisoformat(str(published["starts_at"])).astimezone(tz).date()
        if not period_from <= day <= period_to:
            continue
        for e in entries:
            if e.type != "ServiceConfirmed" or e.payload.get("volunteer_id") != str(volunteer_id):
                continue
            minutes = int(e.payload["minutes"])
            services.append(
                CertifiedService(
                    activity_id=e.aggregate_id,
                    title=str(published["title"]),
                    category=str(published["category"]),
                    unit_id=UUID(str(published["unit_id"])),
                    service_date=day,
                    minutes=minutes,
                    hours=_hours(minutes),
                    people_served=int(e.payload.get("people_served", 0)),
                    hours_source=str(e.payload.get("hours_source", "")),
                    position=e.position,
                    event_hash=e.chain_hash or "",
                )
            )
    services.sort(key=lambda s: s.position)
    digest = hashlib.sha256()
    for s in services:
        digest.update(_U64.pack(s.position) + bytes.fromhex(s.event_hash))
    last = services[-1] if services else None
    event_range = EventRange(
        as_of_position=position,
        first_position=services[0].position if services else None,
        last_position=last.position if last else None,
        chain_hash=last.event_hash if last else None,
        events_digest=digest.hexdigest(),
    )
    number_digest = hashlib.sha256(
        f"{volunteer_id}|{period_from}|{period_to}|{event_range.events_digest}".encode()
    ).hexdigest()
    total = sum(s.minutes for s in services)
    return Certificate(
        number=f"CVS-{period_from:%Y%m%d}-{period_to:%Y%m%d}-{number_digest[:12].upper()}",
        volunteer_id=volunteer_id,
        volunteer_name=str(_latest(volunteer, "name")),
        period_from=period_from,
        period_to=period_to,
        issuing_unit_id=station_id,
        issuing_unit_name=str(_latest(station, "name")),
        services=services,
        service_count=len(services),
        total_minutes=total,
        total_hours=_hours(total),
        range=event_range,
        issued_at=app.clock(),
        signature="",
    )


def issue(
    app: CivicApplication,
    audit_trail: sqlite3.Connection,
    secret: bytes,
    *,
    volunteer_id: UUID,
    period_from: date,
    period_to: date,
    timezone: str,
    as_of: int | None = None,
) -> Certificate:
    """A signed certificate as of ``as_of`` (default: the store's head; give the
    audit trail's position when it may lag behind the store)."""
    cert = derive(
        app,
        audit_trail,
        volunteer_id=volunteer_id,
        period_from=period_from,
        period_to=period_to,
        timezone=timezone,
        as_of=as_of,
    )
    return cert.model_copy(update={"signature": sign(secret, _signed_payload(cert))})


_UNCHECKED = frozenset({"issued_at", "signature"})


def verify_certificate(
    app: CivicApplication,
    audit_trail: sqlite3.Connection,
    secret: bytes,
    cert: Certificate,
    *,
    timezone: str,
) -> CertificateCheck:
    signature_valid = hmac.compare_digest(sign(secret, _signed_payload(cert)), cert.signature)
    as_of = cert.range.as_of_position
    try:
        again = derive(
            app,
            audit_trail,
            volunteer_id=cert.volunteer_id,
            period_from=cert.period_from,
            period_to=cert.period_to,
            timezone=timezone,
            as_of=as_of,
        )
    except NotFoundError:
        again = None
    if again is None:
        differences = ["volunteer_id"]
    else:
        mine = cert.model_dump(mode="json", exclude=set(_UNCHECKED))
        theirs = again.model_dump(mode="json", exclude=set(_UNCHECKED))
        differences = sorted(k for k in mine if mine[k] != theirs[k])
    chain = verify_chain(notifications(app.recorder), chain_table(app), up_to=as_of)
    chain_intact = chain.ok and chain.head_position == as_of
    superseded = False
    if again is not None and not differences:
        now = derive(
            app,
            audit_trail,
            volunteer_id=cert.volunteer_id,
            period_from=cert.period_from,
            period_to=cert.period_to,
            timezone=timezone,
        )
        superseded = now.number != cert.number
    return CertificateCheck(
        ok=signature_valid and not differences and chain_intact,
        number=cert.number,
        signature_valid=signature_valid,
        matches_history=not differences,
        chain_intact=chain_intact,
        differences=differences,
        superseded=superseded,
    )
