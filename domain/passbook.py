"""The love passbook (爱心存折): a volunteer's points account.

Points arrive in *lots* (one per award) and leave first-in first-out, so every
point redeemed, adjusted away or expired can be traced to the award it came from.
The balance can never go negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate, name_id, unique_name_id
from domain.errors import ConflictError, RuleViolationError
from domain.points import ExpiryPolicy

# (lot id, points) pairs, oldest lot first, as stored in events
Spend = list[tuple[UUID, int]]


class AwardKind:
    SERVICE = "service"  # a confirmed activity service
    MANUAL = "manual"  # e.g. household civility checks (文明户评比)
    ADJUSTMENT = "adjustment"  # an admin's correction
    CORRECTION = "correction"  # more points for a corrected service record
    WISH = "wish"  # a micro-wish (微心愿) the volunteer fulfilled, confirmed by the unit


@dataclass
class Lot:
    lot_id: UUID
    kind: str
    points: int
    remaining: int
    awarded_at: datetime
    expires_at: datetime | None


class Passbook(CivicAggregate):
    class Opened(CivicAggregate.Created):
        volunteer_id: UUID
        home_path: list[UUID]

    class PointsAwarded(CivicAggregate.Event):
        lot_id: UUID
        kind: str
        points: int
        source_id: UUID
        activity_id: UUID | None
        minutes: int
        reason: str
        awarded_at: datetime
        expires_at: datetime | None

    class PointsDeducted(CivicAggregate.Event):
        """An admin's negative adjustment, spent from the oldest lots."""

        points: int
        spent: Spend
        reason: str
        adjustment_id: UUID

    class PointsRedeemed(CivicAggregate.Event):
        redemption_id: UUID
        points: int
        spent: Spend

    class RedemptionRefunded(CivicAggregate.Event):
        redemption_id: UUID
        points: int
        restored: Spend
        reason: str

    class PointsExpired(CivicAggregate.Event):
        points: int
        expired: Spend
        as_of: datetime

    class CorrectionDebited(CivicAggregate.Event):
        """Fewer points for a corrected service record, spent from the oldest lots.
        ``service_at`` is the original service's business time (the period the
        difference counts in); ``minutes`` the (negative) change of service time."""

        points: int
        spent: Spend
        reason: str
        correction_id: UUID
        activity_id: UUID
        minutes: int
        service_at: datetime

    @staticmethod
    def create_id(volunteer_id: UUID) -> UUID:
        return name_id("passbook", volunteer_id)

    @classmethod
    def open_for(cls, volunteer_id: UUID, home_path: list[UUID]) -> Passbook:
        return cls._create(
            cls.Opened,
            id=cls.create_id(volunteer_id),
            volunteer_id=volunteer_id,
            home_path=home_path,
        )

    @event(Opened)
    def __init__(self, volunteer_id: UUID, home_path: list[UUID]) -> None:
        self.volunteer_id = volunteer_id
        self.home_path = list(home_path)
        self.lots: dict[UUID, Lot] = {}
        self.sources: set[UUID] = set()
        self.redemptions: dict[UUID, Spend] = {}
        self.earned = 0
        self.earned_minutes = 0
        self._balance = 0  # the sum of every lot's ``remaining``, kept as they change

    # -- queries -----------------------------------------------------------------

    @property
    def balance(self) -> int:
        return self._balance

    def has_award_for(self, source_id: UUID) -> bool:
        return source_id in self.sources

    def open_lots(self) -> list[Lot]:
        """Lots with points left, oldest first (the spending order)."""
        return sorted(
            (lot for lot in self.lots.values() if lot.remaining > 0),
            key=lambda lot: (lot.awarded_at, str(lot.lot_id)),
        )

    # -- awards ------------------------------------------------------------------

    def award(
        self,
        *,
        points: int,
        kind: str,
        source_id: UUID,
        reason: str,
        now: datetime,
        policy: ExpiryPolicy,
        activity_id: UUID | None = None,
        minutes: int = 0,
    ) -> UUID:
        """Award points once per source (a confirmation, a manual award's id)."""
        if source_id in self.sources:
            raise ConflictError("points were already awarded for this", code="already-awarded")
        if points < 0:
            raise RuleViolationError("awards cannot be negative", code="bad-points")
        lot_id = unique_name_id("lot", self.id, source_id)
        self._award(
            lot_id=lot_id,
            kind=kind,
            points=points,
            source_id=source_id,
            activity_id=activity_id,
            minutes=minutes,
            reason=reason,
            awarded_at=now,
            expires_at=policy.expires_at(now),
        )
        return lot_id

    @event(PointsAwarded)
    def _award(
        self,
        lot_id: UUID,
        kind: str,
        points: int,
        source_id: UUID,
        activity_id: UUID | None,
        minutes: int,
        reason: str,
        awarded_at: datetime,
        expires_at: datetime | None,
    ) -> None:
        self.sources.add(source_id)
        self.lots[lot_id] = Lot(lot_id, kind, points, points, awarded_at, expires_at)
        self._balance += points
        if kind in (AwardKind.SERVICE, AwardKind.CORRECTION):
            self.earned += points
            self.earned_minutes += minutes

    def deduct(self, *, points: int, reason: str, adjustment_id: UUID, now: datetime) -> None:
        """A negative adjustment by an admin, with a reason."""
        if adjustment_id in self.sources:
            raise ConflictError("this adjustment was already recorded", code="already-awarded")
        self.expire_due(now)
        spent = self._plan_spend(points)
        self._deduct(points=points, spent=spent, reason=reason, adjustment_id=adjustment_id)

    @event(PointsDeducted)
    def _deduct(self, points: int, spent: Spend, reason: str, adjustment_id: UUID) -> None:
        self.sources.add(adjustment_id)
        self._apply_spend(spent, -1)

    def debit_correction(
        self,
        *,
        points: int,
        correction_id: UUID,
        activity_id: UUID,
        minutes: int,
        service_at: datetime,
        reason: str,
        now: datetime,
    ) -> None:
        """Take back the points a corrected service record no longer earns. Refused
        (``insufficient-points``) when the volunteer has already spent them."""
        if correction_id in self.sources:
            raise ConflictError("this correction was already recorded", code="already-awarded")
        self.expire_due(now)
        spent = self._plan_spend(points)
        self._debit_correction(
            points=points,
            spent=spent,
            reason=reason,
            correction_id=correction_id,
            activity_id=activity_id,
            minutes=minutes,
            service_at=service_at,
        )

    @event(CorrectionDebited)
    def _debit_correction(
        self,
        points: int,
        spent: Spend,
        reason: str,
        correction_id: UUID,
        activity_id: UUID,
        minutes: int,
        service_at: datetime,
    ) -> None:
        self.sources.add(correction_id)
        self._apply_spend(spent, -1)
        self.earned -= points
        self.earned_minutes += minutes

    # -- redemption --------------------------------------------------------------

    def plan_redemption(self, points: int, now: datetime) -> Spend:
        """Which lots a redemption of ``points`` would spend, oldest first (no change)."""
        return self._plan_spend(points, now=now)

    def redeem(self, *, redemption_id: UUID, points: int, now: datetime) -> Spend:
        if redemption_id in self.redemptions:
            raise ConflictError("this redemption was already debited", code="already-redeemed")
        self.expire_due(now)
        spent = self._plan_spend(points)
        self._redeem(redemption_id=redemption_id, points=points, spent=spent)
        return spent

    @event(PointsRedeemed)
    def _redeem(self, redemption_id: UUID, points: int, spent: Spend) -> None:
        self.redemptions[redemption_id] = spent
        self._apply_spend(spent, -1)

    def refund(self, *, redemption_id: UUID, reason: str) -> None:
        spent = self.redemptions.get(redemption_id)
        if spent is None:
            raise ConflictError("no such redemption on this passbook", code="not-redeemed")
        points = sum(p for _, p in spent)
        self._refund(redemption_id=redemption_id, points=points, restored=spent, reason=reason)

    @event(RedemptionRefunded)
    def _refund(self, redemption_id: UUID, points: int, restored: Spend, reason: str) -> None:
        del self.redemptions[redemption_id]
        self._apply_spend(restored, +1)

    # -- expiry ------------------------------------------------------------------

    def due_for_expiry(self, now: datetime) -> Spend:
        return [
            (lot.lot_id, lot.remaining)
            for lot in self.open_lots()
            if lot.expires_at is not None and lot.expires_at <= now
        ]

    def expire_due(self, now: datetime) -> int:
        """Record the expiry of every lot past its expiry date; returns points expired."""
        expired = self.due_for_expiry(now)
        if not expired:
            return 0
        points = sum(p for _, p in expired)
        self._expire(points=points, expired=expired, as_of=now)
        return points

    @event(PointsExpired)
    def _expire(self, points: int, expired: Spend, as_of: datetime) -> None:
        self._apply_spend(expired, -1)

    # -- helpers -----------------------------------------------------------------

    def _plan_spend(self, points: int, now: datetime | None = None) -> Spend:
        if points <= 0:
            raise RuleViolationError("points must be positive", code="bad-points")
        lots = [
            lot
            for lot in self.open_lots()
            if now is None or lot.expires_at is None or lot.expires_at > now
        ]
        available = sum(lot.remaining for lot in lots)
        if points > available:
            raise ConflictError(
                f"the balance is {available} points, {points} needed",
                code="insufficient-points",
            )
        spent: Spend = []
        left = points
        for lot in lots:
            take = min(lot.remaining, left)
            spent.append((lot.lot_id, take))
            left -= take
            if left == 0:
                break
        return spent

    def _apply_spend(self, spend: Spend, sign: int) -> None:
        for lot_id, points in spend:
            self.lots[lot_id].remaining += sign * points
            self._balance += sign * points
