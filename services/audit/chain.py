"""Verifying the event store's hash chain, and its signed quarterly checkpoints.

``verify`` recomputes the chain over the whole store (``infra.hash_chain``) and
names the first altered or missing event; it also checks every checkpoint
recorded in the store: its signature, the chain's hash at its position, and the
number of its unit's subtree events up to that position.

A checkpoint (``domain.audit.ChainCheckpoint``) is taken per unit per quarter:
the chain's head at the last event recorded before the quarter's end, and how
many events of the unit's subtree the store held then, signed with HMAC-SHA256
under ``CIVIC_AUDIT_SECRET``. Someone who edits history *and* recomputes the
chain after it cannot sign the new head: the checkpoints no longer match. Print
them (``civic audit checkpoint``) and publish them outside the database too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import structlog
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from pydantic import BaseModel, Field

from domain.audit import ChainCheckpoint
from domain.errors import NotFoundError, RuleViolationError
from infra.envelopes import envelope_from_notification
from infra.hash_chain import ChainBreak, ChainTable, notifications, verify_chain
from services.application import CivicApplication
from services.commands.audit import RecordChainCheckpoint
from services.principals import Principal

log = structlog.get_logger(__name__)

CHECKPOINT_TOPIC = get_topic(ChainCheckpoint.Recorded)
PAGE = 2000


def chain_table(app: CivicApplication) -> ChainTable:
    table: ChainTable | None = getattr(app.recorder, "chain", None)
    if table is None:
        msg = "the configured event store keeps no hash chain"
        raise TypeError(msg)
    return table


# -- reports -----------------------------------------------------------------------------


class ChainBreakView(BaseModel):
    position: int
    kind: str = Field(description="altered | missing | unchained")
    aggregate_id: UUID | None
    aggregate_version: int | None
    type: str | None = Field(description="the event's class, e.g. Passbook.PointsAwarded")
    detail: str


class CheckpointView(BaseModel):
    checkpoint_id: UUID
    unit_id: UUID
    quarter: str
    position: int
    chain_hash: str
    subtree_events: int
    signature: str
    recorded_at: datetime
    recorded_position: int = Field(description="where the checkpoint itself was recorded")


class CheckpointCheck(BaseModel):
    checkpoint: CheckpointView
    signature_valid: bool
    hash_matches: bool
    count_matches: bool
    ok: bool


class VerifyReport(BaseModel):
    ok: bool
    events_checked: int
    head_position: int
    head_hash: str
    breaks_total: int
    first_break: ChainBreakView | None
    breaks: list[ChainBreakView] = Field(description="the first 100 breaks")
    checkpoints: list[CheckpointCheck]


def _type_name(topic: str | None) -> str | None:
    return None if topic is None else topic.rpartition(":")[2]


def _break_view(brk: ChainBreak) -> ChainBreakView:
    return ChainBreakView(
        position=brk.position,
        kind=brk.kind,
        aggregate_id=UUID(brk.aggregate_id) if brk.aggregate_id else None,
        aggregate_version=brk.aggregate_version,
        type=_type_name(brk.topic),
        detail=brk.detail,
    )


# -- signatures --------------------------------------------------------------------------


def sign(secret: bytes, fields: dict[str, Any]) -> str:
    """HMAC-SHA256 of the fields as canonical JSON (sorted keys, no spaces)."""
    message = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def _signed_fields(
    unit_id: UUID, quarter: str, position: int, chain_hash: str, subtree_events: int
) -> dict[str, Any]:
    return {
        "unit_id": str(unit_id),
        "quarter": quarter,
        "position": position,
        "chain_hash": chain_hash,
        "subtree_events": subtree_events,
    }


def checkpoint_signature_valid(secret: bytes, c: CheckpointView) -> bool:
    expected = sign(
        secret, _signed_fields(c.unit_id, c.quarter, c.position, c.chain_hash, c.subtree_events)
    )
    return hmac.compare_digest(expected, c.signature)


def _checkpoint_view(n: Notification) -> CheckpointView:
    e = envelope_from_notification(n)
    p = e.payload
    return CheckpointView(
        checkpoint_id=e.aggregate_id,
        unit_id=UUID(p["unit_id"]),
        quarter=p["quarter"],
        position=int(p["position"]),
        chain_hash=p["chain_hash"],
        subtree_events=int(p["subtree_events"]),
        signature=p["signature"],
        recorded_at=e.recorded_at,
        recorded_position=n.id,
    )


# -- subtree counts ----------------------------------------------------------------------


def creation_lineage(n: Notification) -> list[str]:
    """The unit lineage an aggregate belongs to, from its creation event (as the
    audit trail tags it): a unit's path and itself, else ``unit_path`` or
    ``home_path``; none for aggregates outside the hierarchy."""
    e = envelope_from_notification(n)
    p = e.payload
    if "path" in p and isinstance(p["path"], list):
        return [*map(str, p["path"]), str(e.aggregate_id)]
    lineage = p.get("unit_path") or p.get("home_path") or []
    return [str(u) for u in lineage] if isinstance(lineage, list) else []


@dataclass
class _Lineages:
    by_aggregate: dict[str, tuple[str, ...]]
    units: dict[str, tuple[str, ...]]  # unit id -> its lineage

    @classmethod
    def empty(cls) -> _Lineages:
        return cls({}, {})

    def of(self, n: Notification) -> tuple[str, ...]:
        key = n.originator_id.hex if isinstance(n.originator_id, UUID) else str(n.originator_id)
        lineage = self.by_aggregate.get(key)
        if lineage is None:
            lineage = tuple(creation_lineage(n)) if n.originator_version == 1 else ()
            self.by_aggregate[key] = lineage
            if lineage and lineage[-1] == str(UUID(key)) and n.topic.endswith("Unit.Opened"):
                self.units[lineage[-1]] = lineage
        return lineage


def subtree_counts(
    app: CivicApplication, positions: Iterable[int]
) -> tuple[dict[int, dict[str, int]], dict[str, tuple[str, ...]]]:
    """How many events of each unit's subtree the store held at each position
    (``{position: {unit id: count}}``), and the lineage of every unit recorded up
    to the last of the positions. Decodes creation events only."""
    counts: dict[str, int] = {}
    result: dict[int, dict[str, int]] = {}
    lineages = _Lineages.empty()
    pending = sorted(set(positions))
    last = pending[-1] if pending else 0
    read = notifications(app.recorder)
    after = 0
    while pending and (page := read(after, PAGE)):
        for n in page:
            while pending and n.id > pending[0]:
                result[pending.pop(0)] = dict(counts)
            if n.id > last:
                break
            for unit in lineages.of(n):
                counts[unit] = counts.get(unit, 0) + 1
        after = page[-1].id
    for position in pending:
        result[position] = dict(counts)
    return result, lineages.units


# -- verification ------------------------------------------------------------------------


def verify(app: CivicApplication, secret: bytes) -> VerifyReport:
    """Recompute the chain and check every checkpoint recorded in the store."""
    table = chain_table(app)
    checkpoints: list[CheckpointView] = []

    def observe(n: Notification) -> None:
        if n.topic == CHECKPOINT_TOPIC:
            checkpoints.append(_checkpoint_view(n))

    read = notifications(app.recorder)

    def read_observed(after: int, limit: int) -> Sequence[Notification]:
        page = read(after, limit)
        for n in page:
            observe(n)
        return page

    report = verify_chain(read_observed, table)
    # Up to the first break, the recomputed chain equals the stored links: a
    # checkpoint's hash is compared with the link at its position.
    first_break = report.breaks[0].position if report.breaks else None
    counts, _ = subtree_counts(app, (c.position for c in checkpoints))
    checks = []
    for c in checkpoints:
        signature_valid = checkpoint_signature_valid(secret, c)
        link_hash = table.hash_at(c.position) if c.position else bytes(32)
        hash_matches = (
            (first_break is None or first_break > c.position)
            and link_hash is not None
            and link_hash.hex() == c.chain_hash
            and c.position <= report.head_position
        )
        count_matches = counts[c.position].get(str(c.unit_id), 0) == c.subtree_events
        checks.append(
            CheckpointCheck(
                checkpoint=c,
                signature_valid=signature_valid,
                hash_matches=hash_matches,
                count_matches=count_matches,
                ok=signature_valid and hash_matches and count_matches,
            )
        )
    views = [_break_view(b) for b in report.breaks]
    ok = report.ok and all(c.ok for c in checks)
    log.info(
        "audit.chain_verified",
        ok=ok,
        events=report.events,
        breaks=report.breaks_total,
        checkpoints=len(checks),
    )
    return VerifyReport(
        ok=ok,
        events_checked=report.events,
        head_position=report.head_position,
        head_hash=report.head_hash.hex(),
        breaks_total=report.breaks_total,
        first_break=views[0] if views else None,
        breaks=views,
        checkpoints=checks,
    )


# -- checkpoints -------------------------------------------------------------------------


def quarter_bounds(quarter: str, timezone: str) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of a quarter such as ``2026-Q1``, in local time."""
    try:
        year_text, q_text = quarter.split("-Q")
        year, q = int(year_text), int(q_text)
        if not (1 <= q <= 4 and 2000 <= year <= 2100):
            raise ValueError
    except ValueError:
        raise RuleViolationError(
            f"{quarter!r} is not a quarter like 2026-Q1", code="invalid-period"
        ) from None
    tz = ZoneInfo(timezone)
    start = datetime(year, 3 * q - 2, 1, tzinfo=tz)
    end = datetime(year + 1, 1, 1, tzinfo=tz) if q == 4 else datetime(year, 3 * q + 1, 1, tzinfo=tz)
    return start, end


def last_quarter(today: date) -> str:
    q = (today.month - 1) // 3  # the current quarter's index, 0-based
    return f"{today.year - 1}-Q4" if q == 0 else f"{today.year}-Q{q}"


def position_before(app: CivicApplication, moment: datetime) -> int:
    """The last position recorded before ``moment`` (recording times follow
    positions; a binary search over the store)."""
    lo, hi = 0, app.head()  # answer in [lo, hi]
    read = notifications(app.recorder)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        page = read(mid - 1, 1)  # the first event at or after mid
        if not page:
            hi = mid - 1
            continue
        n = page[0]
        if n.id <= hi and envelope_from_notification(n).recorded_at < moment:
            lo = n.id
        else:
            hi = mid - 1
    return lo


class CheckpointOutcome(BaseModel):
    unit_id: UUID
    quarter: str
    position: int
    chain_hash: str
    subtree_events: int
    signature: str
    recorded: bool = Field(description="false when the unit already had this checkpoint")


def create_checkpoints(
    app: CivicApplication,
    principal: Principal,
    secret: bytes,
    *,
    quarter: str,
    timezone: str,
    unit_ids: Sequence[UUID] | None = None,
    now: Callable[[], datetime] | None = None,
) -> list[CheckpointOutcome]:
    """Checkpoint the chain at the quarter's end for each unit (every unit if none
    given); refuses a quarter that has not ended."""
    _, end = quarter_bounds(quarter, timezone)
    current = (now or app.clock)()
    if end > current:
        raise RuleViolationError(f"{quarter} has not ended yet", code="quarter-not-over")
    position = position_before(app, end)
    chained = chain_table(app).hash_at(position) if position else None
    if position and chained is None:
        raise RuleViolationError(
            f"position {position} has no link in the chain: run civic audit verify",
            code="chain-broken",
        )
    chain_hash = (chained or bytes(32)).hex()
    # the units that existed at the quarter's end, and their subtrees' event counts
    counts, units = subtree_counts(app, [position])
    chosen = sorted(units) if unit_ids is None else sorted({str(u) for u in unit_ids})
    unknown = [u for u in chosen if u not in units]
    if unknown:
        raise NotFoundError(f"no unit {unknown[0]} at the end of {quarter}")
    outcomes = []
    for unit in chosen:
        existing = app.get(ChainCheckpoint.create_id(UUID(unit), quarter))
        if existing is not None:  # report what is recorded, not what would be
            outcomes.append(
                CheckpointOutcome(
                    unit_id=UUID(unit),
                    quarter=quarter,
                    position=existing.position,
                    chain_hash=existing.chain_hash,
                    subtree_events=existing.subtree_events,
                    signature=existing.signature,
                    recorded=False,
                )
            )
            continue
        count = counts[position].get(unit, 0)
        signature = sign(secret, _signed_fields(UUID(unit), quarter, position, chain_hash, count))
        app.execute(
            RecordChainCheckpoint(
                unit_id=UUID(unit),
                quarter=quarter,
                position=position,
                chain_hash=chain_hash,
                subtree_events=count,
                signature=signature,
            ),
            principal,
        )
        outcomes.append(
            CheckpointOutcome(
                unit_id=UUID(unit),
                quarter=quarter,
                position=position,
                chain_hash=chain_hash,
                subtree_events=count,
                signature=signature,
                recorded=True,
            )
        )
    log.info("audit.checkpoints_recorded", quarter=quarter, position=position, units=len(chosen))
    return outcomes


def list_checkpoints(
    app: CivicApplication, *, unit_id: UUID | None = None, quarter: str | None = None
) -> list[CheckpointView]:
    """The checkpoints recorded in the store, oldest first (a scan of the store's
    checkpoint events)."""
    found = []
    after = 0
    while page := app.recorder.select_notifications(
        after, PAGE, topics=[CHECKPOINT_TOPIC], inclusive_of_start=False
    ):
        for n in page:
            view = _checkpoint_view(n)
            if (unit_id is None or view.unit_id == unit_id) and (
                quarter is None or view.quarter == quarter
            ):
                found.append(view)
        after = page[-1].id
    return found
