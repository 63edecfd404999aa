"""A passbook's statement for a period and its balance as of a moment, folded from
the passbook's own events (pure functions: events in, figures out).

The period is ``[start, end)`` by recording time; as of T is the longest run of
the passbook's events recorded at or before T (the library's "aggregate at a
version", the version being the last event recorded by T).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, Field

from domain.passbook import Passbook


class Entry(BaseModel):
    """One change to a passbook, as a statement line."""

    model_config = ConfigDict(frozen=True)

    version: int = Field(description="the passbook's event version")
    type: str = Field(description="award, redemption, refund, deduction, correction, expiry")
    event: str = Field(description="event class name, e.g. PointsAwarded")
    points: int = Field(description="change to the balance (negative for debits)")
    balance_after: int
    reason: str
    actor: str
    recorded_at: datetime = Field(description="when the change was booked")
    business_at: datetime = Field(
        description="the time the change belongs to (an award's awarded_at, a "
        "correction's service time); the recording time otherwise"
    )
    kind: str | None = Field(default=None, description="award kind: service, manual...")
    lot_id: UUID | None = None
    lots: list[tuple[UUID, int]] = Field(
        default_factory=list, description="(lot, points) taken from or given back to lots"
    )
    activity_id: UUID | None = None
    redemption_id: UUID | None = None
    source_id: UUID | None = None


class Totals(BaseModel):
    awarded: int = 0
    redeemed: int = 0
    refunded: int = 0
    deducted: int = 0
    expired: int = 0


class Statement(BaseModel):
    volunteer_id: UUID
    passbook_id: UUID
    start: datetime | None = Field(description="inclusive; null: from the first event")
    end: datetime | None = Field(description="exclusive; null: up to now")
    opening_balance: int
    closing_balance: int
    totals: Totals
    entries: list[Entry]


class Balance(BaseModel):
    volunteer_id: UUID
    passbook_id: UUID
    as_of: datetime
    balance: int
    version: int = Field(description="the passbook version the balance stands at")
    last_change_at: datetime | None


def entry(event: Any, balance: int) -> Entry | None:
    """The statement line of one passbook event (None for the opening)."""
    recorded_at: datetime = event.timestamp
    common: dict[str, Any] = {
        "version": event.originator_version,
        "event": type(event).__name__,
        "actor": getattr(event, "actor", "system"),
        "recorded_at": recorded_at,
        "business_at": recorded_at,
    }
    if isinstance(event, Passbook.PointsAwarded):
        delta = event.points
        fields: dict[str, Any] = {
            "type": "correction" if event.kind == "correction" else "award",
            "reason": event.reason,
            "kind": event.kind,
            "lot_id": event.lot_id,
            "activity_id": event.activity_id,
            "source_id": event.source_id,
            "business_at": event.awarded_at,
        }
    elif isinstance(event, Passbook.PointsRedeemed):
        delta = -event.points
        fields = {
            "type": "redemption",
            "reason": "redemption",
            "redemption_id": event.redemption_id,
            "lots": list(event.spent),
        }
    elif isinstance(event, Passbook.RedemptionRefunded):
        delta = event.points
        fields = {
            "type": "refund",
            "reason": event.reason,
            "redemption_id": event.redemption_id,
            "lots": list(event.restored),
        }
    elif isinstance(event, Passbook.PointsDeducted):
        delta = -event.points
        fields = {
            "type": "deduction",
            "reason": event.reason,
            "source_id": event.adjustment_id,
            "lots": list(event.spent),
        }
    elif isinstance(event, Passbook.CorrectionDebited):
        delta = -event.points
        fields = {
            "type": "correction",
            "reason": event.reason,
            "source_id": event.correction_id,
            "activity_id": event.activity_id,
            "lots": list(event.spent),
            "business_at": event.service_at,
        }
    elif isinstance(event, Passbook.PointsExpired):
        delta = -event.points
        fields = {"type": "expiry", "reason": "expired", "lots": list(event.expired)}
    else:
        return None
    return Entry(**{**common, **fields}, points=delta, balance_after=balance + delta)


def _until(events: Iterable[Any], end: datetime | None) -> Iterator[Any]:
    for event in events:
        if end is not None and event.timestamp > end:
            return
        yield event


def _add(totals: Totals, line: Entry) -> None:
    if line.type in ("award", "correction") and line.points > 0:
        totals.awarded += line.points
    elif line.type == "redemption":
        totals.redeemed -= line.points
    elif line.type == "refund":
        totals.refunded += line.points
    elif line.type in ("deduction", "correction"):
        totals.deducted -= line.points
    elif line.type == "expiry":
        totals.expired -= line.points


def statement(
    events: Iterable[Any], *, start: datetime | None = None, end: datetime | None = None
) -> Statement:
    """Opening balance (everything recorded before ``start``), each change recorded
    in ``[start, end)``, totals and the closing balance."""
    opened: Passbook.Opened | None = None
    balance = opening = 0
    entries: list[Entry] = []
    totals = Totals()
    for event in events:
        if end is not None and event.timestamp >= end:
            break
        if isinstance(event, Passbook.Opened):
            opened = event
            continue
        line = entry(event, balance)
        if line is None:
            continue
        balance = line.balance_after
        if start is not None and event.timestamp < start:
            opening = balance
            continue
        entries.append(line)
        _add(totals, line)
    if opened is None:
        msg = "the passbook was not opened in that period"
        raise LookupError(msg)
    return Statement(
        volunteer_id=opened.volunteer_id,
        passbook_id=opened.originator_id,
        start=start,
        end=end,
        opening_balance=opening,
        closing_balance=balance,
        totals=totals,
        entries=entries,
    )


def balance_as_of(events: Iterable[Any], as_of: datetime) -> Balance:
    """The balance after the last event recorded at or before ``as_of``."""
    opened: Passbook.Opened | None = None
    balance = version = 0
    last: datetime | None = None
    for event in _until(events, as_of):
        version = event.originator_version
        last = event.timestamp
        if isinstance(event, Passbook.Opened):
            opened = event
            continue
        line = entry(event, balance)
        if line is not None:
            balance = line.balance_after
    if opened is None:
        msg = f"the passbook was not opened by {as_of.isoformat()}"
        raise LookupError(msg)
    return Balance(
        volunteer_id=opened.volunteer_id,
        passbook_id=opened.originator_id,
        as_of=as_of,
        balance=balance,
        version=version,
        last_change_at=last,
    )


def rows(
    events: Iterable[Any], *, start: datetime | None = None, end: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """The statement as rows, produced while the events are read (for exports): an
    ``opening`` row, one ``entry`` row per change in ``[start, end)``, a ``closing``
    row. Nothing but the running balance is held in memory."""
    balance = 0
    opened = False
    for event in events:
        if end is not None and event.timestamp >= end:
            break
        if isinstance(event, Passbook.Opened):
            opened = True
            continue
        line = entry(event, balance)
        if line is None:
            continue
        if start is not None and event.timestamp < start:
            balance = line.balance_after
            continue
        if opened:
            yield {"line": "opening", "balance": balance}
            opened = False
        balance = line.balance_after
        yield {"line": "entry", **line.model_dump(mode="json")}
    if opened:
        yield {"line": "opening", "balance": balance}
    yield {"line": "closing", "balance": balance}


# -- the fast path: a balance straight from the stored records -------------------------

_SIGNS: Final = {
    get_topic(Passbook.PointsAwarded): 1,
    get_topic(Passbook.RedemptionRefunded): 1,
    get_topic(Passbook.PointsRedeemed): -1,
    get_topic(Passbook.PointsDeducted): -1,
    get_topic(Passbook.CorrectionDebited): -1,
    get_topic(Passbook.PointsExpired): -1,
}
_OPENED: Final = get_topic(Passbook.Opened)


def balance_of_stored(records: Iterable[Any], as_of: datetime) -> Balance:
    """``balance_as_of`` over the store's records (topic, version, JSON state) without
    building domain events: the as-of balance of a long passbook costs little more
    than reading it. Raises ``ValueError`` on a state that is not plain JSON (a
    compressed or encrypted store), for the caller to take the event path."""
    balance = version = 0
    volunteer: UUID | None = None
    passbook: UUID | None = None
    last: datetime | None = None
    for record in records:
        state = json.loads(record.state)
        recorded_at = datetime.fromisoformat(state["timestamp"]["_data_"])
        if recorded_at > as_of:
            break
        version, last = record.originator_version, recorded_at
        sign = _SIGNS.get(record.topic)
        if sign is not None:
            balance += sign * int(state["points"])
        elif record.topic == _OPENED:
            volunteer = UUID(state["volunteer_id"]["_data_"])
            passbook = UUID(str(record.originator_id))
    if volunteer is None or passbook is None:
        msg = f"the passbook was not opened by {as_of.isoformat()}"
        raise LookupError(msg)
    return Balance(
        volunteer_id=volunteer,
        passbook_id=passbook,
        as_of=as_of,
        balance=balance,
        version=version,
        last_change_at=last,
    )
