"""Reads served straight from the aggregates: always current, authorised by the
aggregate's place in the unit hierarchy.

Each function loads one aggregate, checks the caller may read it and returns a
read model (pydantic, so the API and the CLI can both render it). Only the
masked identity-document number ever leaves this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.activities import Activity, ActivityStatus, SignupStatus
from domain.errors import NotFoundError
from domain.passbook import Passbook
from domain.redemptions import Redemption, RedemptionStatus
from domain.rewards import Reward
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import Volunteer, VolunteerStatus
from services.application import CivicApplication
from services.principals import Principal

A = TypeVar("A")


class ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True)


def load(app: CivicApplication, cls: type[A], aggregate_id: UUID) -> A:
    """The current state of an aggregate of type ``cls``, or NotFoundError."""
    aggregate = app.get(aggregate_id)
    if not isinstance(aggregate, cls):
        raise NotFoundError(f"{cls.__name__} {aggregate_id} not found")
    return aggregate


# -- units ---------------------------------------------------------------------------


class UnitView(ReadModel):
    unit_id: UUID
    code: str
    name: str
    tier: UnitTier
    parent_id: UUID | None
    path: list[UUID] = Field(description="ancestor unit ids, root first")
    closed: bool
    version: int


def unit_lineage(app: CivicApplication, unit_id: UUID) -> list[UUID]:
    return load(app, PracticeUnit, unit_id).lineage


def get_unit(app: CivicApplication, principal: Principal, unit_id: UUID) -> UnitView:
    unit = load(app, PracticeUnit, unit_id)
    principal.ensure_can_read(unit.lineage)
    return UnitView(
        unit_id=unit.id,
        code=unit.code,
        name=unit.name,
        tier=unit.tier,
        parent_id=unit.parent_id,
        path=unit.path,
        closed=unit.closed,
        version=unit.version,
    )


# -- volunteers ----------------------------------------------------------------------


class VolunteerView(ReadModel):
    volunteer_id: UUID
    name: str = Field(description='the name, or "[erased]" after erasure')
    phone: str = Field(description='the phone number, or "[erased]" after erasure')
    document_masked: str = Field(
        description="the identity number, masked (e.g. 110***********002X)"
    )
    home_station_id: UUID
    home_path: list[UUID]
    status: VolunteerStatus
    passbook_id: UUID
    version: int


def get_volunteer(app: CivicApplication, principal: Principal, volunteer_id: UUID) -> VolunteerView:
    volunteer = load(app, Volunteer, volunteer_id)
    principal.ensure_can_read(volunteer.home_path)
    vault = app.vault  # personal data is sealed per volunteer: "[erased]" once erased
    return VolunteerView(
        volunteer_id=volunteer.id,
        name=vault.reveal(volunteer.id, "name", volunteer.name),
        phone=vault.reveal(volunteer.id, "phone", volunteer.phone),
        document_masked=vault.reveal(volunteer.id, "document_masked", volunteer.document_masked),
        home_station_id=volunteer.home_station_id,
        home_path=volunteer.home_path,
        status=volunteer.status,
        passbook_id=Passbook.create_id(volunteer.id),
        version=volunteer.version,
    )


# -- activities ----------------------------------------------------------------------


class SignupView(ReadModel):
    volunteer_id: UUID
    status: SignupStatus
    waitlist_position: int | None
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    attended_minutes: int | None
    confirmed: bool


class ActivityView(ReadModel):
    activity_id: UUID
    unit_id: UUID
    unit_path: list[UUID]
    title: str
    category: str
    description: str
    location: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    points_per_hour: int
    hour_cap_minutes: int | None
    status: ActivityStatus
    enrolled_count: int
    places_left: int
    waitlist: list[UUID] = Field(description="waitlisted volunteers, first to be promoted first")
    signups: list[SignupView]
    version: int


def get_activity(app: CivicApplication, principal: Principal, activity_id: UUID) -> ActivityView:
    activity = load(app, Activity, activity_id)
    principal.ensure_can_read(activity.lineage)
    signups = [
        SignupView(
            volunteer_id=volunteer_id,
            status=a.status,
            waitlist_position=(
                activity.waitlist.index(volunteer_id) + 1
                if volunteer_id in activity.waitlist
                else None
            ),
            checked_in_at=a.checked_in_at,
            checked_out_at=a.checked_out_at,
            attended_minutes=activity.attended_minutes(volunteer_id),
            confirmed=a.confirmed,
        )
        for volunteer_id, a in activity.attendance.items()
    ]
    return ActivityView(
        activity_id=activity.id,
        unit_id=activity.unit_id,
        unit_path=activity.unit_path,
        title=activity.title,
        category=activity.category.value,
        description=activity.description,
        location=activity.location,
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
        capacity=activity.capacity,
        points_per_hour=activity.points_per_hour,
        hour_cap_minutes=activity.hour_cap_minutes,
        status=activity.status,
        enrolled_count=len(activity.enrolled),
        places_left=activity.places_left,
        waitlist=list(activity.waitlist),
        signups=signups,
        version=activity.version,
    )


# -- passbooks -----------------------------------------------------------------------


class LotView(ReadModel):
    lot_id: UUID
    kind: str
    points: int
    remaining: int
    awarded_at: datetime
    expires_at: datetime | None


class StatementLine(ReadModel):
    version: int = Field(description="the passbook's event version")
    type: str = Field(description="event name, e.g. PointsAwarded")
    points: int = Field(description="change to the balance (negative for debits)")
    balance_after: int
    reason: str | None
    at: datetime
    actor: str
    lot_id: UUID | None = None
    activity_id: UUID | None = None
    redemption_id: UUID | None = None


class PassbookView(ReadModel):
    volunteer_id: UUID
    passbook_id: UUID
    as_of: datetime | None = Field(description="the statement's cut-off, if one was asked for")
    balance: int
    earned_points: int = Field(description="points earned by confirmed service")
    earned_minutes: int = Field(description="minutes of confirmed service")
    points_due_to_expire: int = Field(
        description="points in lots past their expiry date that no expiry has yet recorded"
    )
    open_lots: list[LotView] = Field(description="lots with points left, spending order")
    statement: list[StatementLine]
    version: int


def _line(event: Any, balance: int) -> tuple[StatementLine, int]:
    name = type(event).__name__
    delta = 0
    reason: str | None = None
    lot_id = activity_id = redemption_id = None
    if isinstance(event, Passbook.Opened):
        reason = "passbook opened"
    elif isinstance(event, Passbook.PointsAwarded):
        delta, reason, lot_id, activity_id = (
            event.points,
            event.reason,
            event.lot_id,
            event.activity_id,
        )
    elif isinstance(event, Passbook.PointsDeducted):
        delta, reason = -event.points, event.reason
    elif isinstance(event, Passbook.PointsRedeemed):
        delta, reason, redemption_id = -event.points, "redemption", event.redemption_id
    elif isinstance(event, Passbook.RedemptionRefunded):
        delta, reason, redemption_id = event.points, event.reason, event.redemption_id
    elif isinstance(event, Passbook.PointsExpired):
        delta, reason = -event.points, "expired"
    elif isinstance(event, Passbook.CorrectionDebited):
        delta, reason, activity_id = -event.points, event.reason, event.activity_id
    balance += delta
    line = StatementLine(
        version=event.originator_version,
        type=name,
        points=delta,
        balance_after=balance,
        reason=reason,
        at=event.timestamp,
        actor=getattr(event, "actor", "system"),
        lot_id=lot_id,
        activity_id=activity_id,
        redemption_id=redemption_id,
    )
    return line, balance


def get_passbook(
    app: CivicApplication,
    principal: Principal,
    volunteer_id: UUID,
    as_of: datetime | None = None,
) -> PassbookView:
    """The passbook and its statement, folded from one read of its events (so the
    balance and the statement always agree). ``as_of`` replays only the events
    recorded at or before that time."""
    passbook_id = Passbook.create_id(volunteer_id)
    passbook: Passbook | None = None
    statement: list[StatementLine] = []
    balance = 0
    events: Iterable[Any] = app.events.get(passbook_id)
    for event in events:
        if as_of is not None and event.timestamp > as_of:
            break
        passbook = event.mutate(passbook)
        line, balance = _line(event, balance)
        statement.append(line)
    if passbook is None:
        current = app.get(passbook_id)
        if as_of is None or not isinstance(current, Passbook):
            raise NotFoundError(f"no passbook for volunteer {volunteer_id}")
        principal.ensure_can_read(current.home_path)
        raise NotFoundError(f"the passbook of {volunteer_id} was opened after {as_of.isoformat()}")
    principal.ensure_can_read(passbook.home_path)
    now = as_of or app.clock()
    return PassbookView(
        volunteer_id=passbook.volunteer_id,
        passbook_id=passbook.id,
        as_of=as_of,
        balance=passbook.balance,
        earned_points=passbook.earned,
        earned_minutes=passbook.earned_minutes,
        points_due_to_expire=sum(p for _, p in passbook.due_for_expiry(now)),
        open_lots=[
            LotView(
                lot_id=lot.lot_id,
                kind=lot.kind,
                points=lot.points,
                remaining=lot.remaining,
                awarded_at=lot.awarded_at,
                expires_at=lot.expires_at,
            )
            for lot in passbook.open_lots()
        ],
        statement=statement,
        version=passbook.version,
    )


# -- rewards and redemptions ---------------------------------------------------------


class RewardView(ReadModel):
    reward_id: UUID
    unit_id: UUID
    unit_path: list[UUID]
    name: str
    description: str
    cost_points: int
    stock: int
    delisted: bool
    version: int


def get_reward(app: CivicApplication, principal: Principal, reward_id: UUID) -> RewardView:
    reward = load(app, Reward, reward_id)
    principal.ensure_can_read(reward.lineage)
    return RewardView(
        reward_id=reward.id,
        unit_id=reward.unit_id,
        unit_path=reward.unit_path,
        name=reward.name,
        description=reward.description,
        cost_points=reward.cost_points,
        stock=reward.stock,
        delisted=reward.delisted,
        version=reward.version,
    )


class SpentLot(ReadModel):
    lot_id: UUID
    points: int


class RedemptionView(ReadModel):
    redemption_id: UUID
    volunteer_id: UUID
    reward_id: UUID
    unit_id: UUID
    quantity: int
    points: int
    spent_lots: list[SpentLot]
    status: RedemptionStatus
    version: int


def get_redemption(
    app: CivicApplication, principal: Principal, redemption_id: UUID
) -> RedemptionView:
    redemption = load(app, Redemption, redemption_id)
    principal.ensure_can_read(redemption.lineage)
    return RedemptionView(
        redemption_id=redemption.id,
        volunteer_id=redemption.volunteer_id,
        reward_id=redemption.reward_id,
        unit_id=redemption.unit_id,
        quantity=redemption.quantity,
        points=redemption.points,
        spent_lots=[SpentLot(lot_id=lot, points=p) for lot, p in redemption.spent],
        status=redemption.status,
        version=redemption.version,
    )
