"""Trace a point: from a redemption back to the lots (awards) it spent, and from
each award to the confirmed service, check-in and check-out and activity behind
it. ``build_trace`` is a pure function of the events; ``trace_redemption`` reads
them from the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from domain.activities import Activity
from domain.errors import NotFoundError
from domain.passbook import Passbook
from domain.redemptions import Redemption


class Step(BaseModel):
    """One event on the way: what happened, when, by whom."""

    event: str
    recorded_at: datetime
    actor: str
    version: int = Field(description="the aggregate version of the event")
    detail: dict[str, Any] = Field(default_factory=dict)


class ServiceTrace(BaseModel):
    activity_id: UUID
    title: str
    unit_id: UUID
    category: str
    starts_at: datetime
    ends_at: datetime
    points_per_hour: int
    volunteer_id: UUID
    confirmation_id: UUID | None
    minutes: int | None = Field(description="the minutes on record after every correction")
    hours_source: str | None
    steps: list[Step] = Field(description="sign-up, check-in, check-out, confirmation, corrections")


class AwardTrace(BaseModel):
    lot_id: UUID
    points_spent: int = Field(description="points of this lot the redemption spent")
    kind: str
    points: int = Field(description="points the lot was awarded with")
    reason: str
    awarded_at: datetime
    recorded_at: datetime
    actor: str
    expires_at: datetime | None
    source_id: UUID
    activity_id: UUID | None
    minutes: int
    service: ServiceTrace | None = Field(description="for service and correction awards")


class RedemptionTrace(BaseModel):
    redemption_id: UUID
    volunteer_id: UUID
    passbook_id: UUID
    reward_id: UUID
    unit_id: UUID
    quantity: int
    points: int
    status: str
    steps: list[Step] = Field(description="requested, fulfilled or cancelled")
    lots: list[AwardTrace]
    refunded: bool = Field(description="whether the points went back to their lots")


def _step(event: Any, **detail: Any) -> Step:
    return Step(
        event=type(event).__name__,
        recorded_at=event.timestamp,
        actor=getattr(event, "actor", "system"),
        version=event.originator_version,
        detail={k: (str(v) if isinstance(v, UUID) else v) for k, v in detail.items()},
    )


def service_trace(events: Sequence[Any], volunteer_id: UUID) -> ServiceTrace:
    """What an activity's events say about one volunteer's service."""
    published = events[0]
    if not isinstance(published, Activity.Published):
        msg = "an activity's history starts with its publication"
        raise ValueError(msg)
    steps = [_step(published, title=published.title)]
    confirmation_id: UUID | None = None
    minutes: int | None = None
    source: str | None = None
    for event in events[1:]:
        if getattr(event, "volunteer_id", None) != volunteer_id:
            continue
        if isinstance(event, Activity.CheckedIn | Activity.CheckedOut):
            steps.append(_step(event, at=event.at.isoformat()))
        elif isinstance(event, Activity.ServiceConfirmed):
            confirmation_id, minutes, source = (
                event.confirmation_id,
                event.minutes,
                event.hours_source,
            )
            steps.append(
                _step(
                    event,
                    minutes=event.minutes,
                    hours_source=event.hours_source,
                    people_served=event.people_served,
                    note=event.note,
                )
            )
        elif isinstance(event, Activity.ServiceCorrected):
            minutes = event.new_minutes
            steps.append(
                _step(
                    event,
                    correction_id=event.correction_id,
                    old_minutes=event.old_minutes,
                    new_minutes=event.new_minutes,
                    reason=event.reason,
                    approved_by=event.approved_by,
                    service_at=event.service_at.isoformat(),
                )
            )
        else:
            steps.append(_step(event))
    return ServiceTrace(
        activity_id=published.originator_id,
        title=published.title,
        unit_id=published.unit_id,
        category=published.category,
        starts_at=published.starts_at,
        ends_at=published.ends_at,
        points_per_hour=published.points_per_hour,
        volunteer_id=volunteer_id,
        confirmation_id=confirmation_id,
        minutes=minutes,
        hours_source=source,
        steps=steps,
    )


def build_trace(
    redemption_events: Sequence[Any],
    passbook_events: Sequence[Any],
    activity_events: Callable[[UUID], Sequence[Any]],
) -> RedemptionTrace:
    requested = redemption_events[0]
    if not isinstance(requested, Redemption.Requested):
        msg = "a redemption's history starts with its request"
        raise ValueError(msg)
    steps = [_step(requested, points=requested.points, quantity=requested.quantity)]
    status = "requested"
    for event in redemption_events[1:]:
        if isinstance(event, Redemption.Fulfilled):
            status = "fulfilled"
            steps.append(_step(event, note=event.note))
        elif isinstance(event, Redemption.Cancelled):
            status = "cancelled"
            steps.append(_step(event, reason=event.reason))
    awards = {e.lot_id: e for e in passbook_events if isinstance(e, Passbook.PointsAwarded)}
    refunded = any(
        isinstance(e, Passbook.RedemptionRefunded) and e.redemption_id == requested.originator_id
        for e in passbook_events
    )
    services: dict[UUID, ServiceTrace] = {}
    lots = []
    for lot_id, spent in requested.spent:
        award = awards.get(lot_id)
        if award is None:
            msg = f"lot {lot_id} has no award in the passbook's history"
            raise LookupError(msg)
        service = None
        if award.activity_id is not None:
            service = services.get(award.activity_id)
            if service is None:
                service = services[award.activity_id] = service_trace(
                    activity_events(award.activity_id), requested.volunteer_id
                )
        lots.append(
            AwardTrace(
                lot_id=lot_id,
                points_spent=spent,
                kind=award.kind,
                points=award.points,
                reason=award.reason,
                awarded_at=award.awarded_at,
                recorded_at=award.timestamp,
                actor=award.actor,
                expires_at=award.expires_at,
                source_id=award.source_id,
                activity_id=award.activity_id,
                minutes=award.minutes,
                service=service,
            )
        )
    return RedemptionTrace(
        redemption_id=requested.originator_id,
        volunteer_id=requested.volunteer_id,
        passbook_id=requested.passbook_id,
        reward_id=requested.reward_id,
        unit_id=requested.unit_id,
        quantity=requested.quantity,
        points=requested.points,
        status=status,
        steps=steps,
        lots=lots,
        refunded=refunded,
    )


def trace_redemption(app: Any, redemption_id: UUID) -> RedemptionTrace:
    """Read the redemption's, its passbook's and the activities' events and trace."""
    redemption_events = list(app.events.get(redemption_id))
    if not redemption_events or not isinstance(redemption_events[0], Redemption.Requested):
        raise NotFoundError(f"Redemption {redemption_id} not found")
    passbook_events = list(app.events.get(redemption_events[0].passbook_id))
    return build_trace(
        redemption_events, passbook_events, lambda activity_id: list(app.events.get(activity_id))
    )
