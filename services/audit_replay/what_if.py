"""What-if: replay the history under a proposed points rule and report how each
volunteer's points, balance and rank would change. Writes nothing.

The proposed rule may set a rate per category (points per hour, replacing the
activity's own), a factor per category, the factor for organizer-entered hours,
a cap on the hours credited per service and an expiry policy. Service awards
(and corrections of them) are recomputed from the service record behind them;
manual awards and deductions stay as they were. Points (the leaderboard's
all-time figure: awards less deductions) do not depend on expiry; balances do:
the proposed balance spends the recomputed lots first-in first-out at each
redemption and deduction, expiring lots by the proposed policy, and counts any
spend the lots could not have covered as a shortfall (a redemption that would
have been refused). Balances are as of ``now``, every lot past its expiry
counted as expired.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.activities import Activity
from domain.categories import Category
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryKind, ExpiryPolicy, HoursSource, PointsRule
from projections.envelope import EventEnvelope

TOP: Final = 10


class ExpiryRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ExpiryKind
    days: int | None = Field(default=None, ge=1, le=36_500)

    @model_validator(mode="after")
    def _days_for_days(self) -> ExpiryRule:
        if self.kind == ExpiryKind.DAYS and self.days is None:
            msg = "an N-days expiry needs days"
            raise ValueError(msg)
        return self


class ProposedRule(BaseModel):
    """A points rule to try on the history (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    category_points_per_hour: dict[Category, int] = Field(
        default_factory=dict, description="points per hour by category, replacing the activity's"
    )
    category_factors: dict[Category, Decimal] = Field(
        default_factory=dict, description="a multiplier per category, e.g. 1.5"
    )
    organizer_factor: Decimal | None = Field(
        default=None, ge=0, le=10, description="factor for hours an organizer entered"
    )
    max_hours_per_service: Decimal | None = Field(
        default=None, gt=0, le=168, description="hours credited per service at most"
    )
    expiry: ExpiryRule | None = Field(default=None, description="default: the current policy")

    def points_rule(self, current: PointsRule) -> PointsRule:
        factors = dict(current.source_factors)
        if self.organizer_factor is not None:
            factors[HoursSource.ORGANIZER] = Fraction(self.organizer_factor)
        categories = dict(current.category_factors)
        categories.update({c: Fraction(f) for c, f in self.category_factors.items()})
        cap = current.max_minutes_per_service
        if self.max_hours_per_service is not None:
            cap = int(self.max_hours_per_service * 60)
        return PointsRule(
            source_factors=factors, category_factors=categories, max_minutes_per_service=cap
        )

    def expiry_policy(self, current: ExpiryPolicy) -> ExpiryPolicy:
        if self.expiry is None:
            return current
        return ExpiryPolicy(kind=self.expiry.kind, days=self.expiry.days, timezone=current.timezone)


class Outcome(BaseModel):
    volunteer_id: str
    points_now: int
    points_proposed: int
    points_change: int
    rank_now: int
    rank_proposed: int
    rank_change: int = Field(description="positive: moves up the board")
    balance_now: int
    balance_proposed: int
    shortfall: int = Field(description="points spent that the proposed lots could not cover")


class Totals(BaseModel):
    volunteers: int
    points_now: int
    points_proposed: int
    balance_now: int
    balance_proposed: int
    expired_proposed: int
    shortfall: int
    volunteers_gaining: int
    volunteers_losing: int


class WhatIfReport(BaseModel):
    rule: ProposedRule
    as_of: datetime
    events: int
    totals: Totals
    top_gainers: list[Outcome]
    top_losers: list[Outcome]
    biggest_rank_moves: list[Outcome]
    volunteers: list[Outcome] | None = Field(description="everyone, when asked for")


@dataclass(slots=True)
class _Lot:
    key: tuple[datetime, str]
    expires_at: datetime | None
    remaining: int


@dataclass
class _Book:
    volunteer_id: str
    points_now: int = 0
    points_proposed: int = 0
    minutes: int = 0
    balance_now: int = 0
    lots: list[_Lot] = field(default_factory=list)
    spends: dict[str, list[tuple[_Lot, int]]] = field(default_factory=dict)
    expired: int = 0
    shortfall: int = 0

    def add_lot(self, lot: _Lot) -> None:
        keys = [x.key for x in self.lots]
        self.lots.insert(bisect.bisect(keys, lot.key), lot)

    def expire(self, at: datetime) -> None:
        for lot in self.lots:
            if lot.remaining and lot.expires_at is not None and lot.expires_at <= at:
                self.expired += lot.remaining
                lot.remaining = 0

    def spend(self, points: int, at: datetime) -> list[tuple[_Lot, int]]:
        self.expire(at)
        taken = []
        left = points
        for lot in self.lots:
            if left == 0:
                break
            take = min(lot.remaining, left)
            if take:
                lot.remaining -= take
                taken.append((lot, take))
                left -= take
        self.shortfall += left
        return taken

    @property
    def balance_proposed(self) -> int:
        return sum(lot.remaining for lot in self.lots)


_TOPICS: Final = {
    get_topic(Activity.Published): "published",
    get_topic(Activity.ServiceConfirmed): "confirmed",
    get_topic(Activity.ServiceCorrected): "corrected",
    get_topic(Passbook.Opened): "opened",
    get_topic(Passbook.PointsAwarded): "awarded",
    get_topic(Passbook.PointsDeducted): "deducted",
    get_topic(Passbook.CorrectionDebited): "debited",
    get_topic(Passbook.PointsRedeemed): "redeemed",
    get_topic(Passbook.RedemptionRefunded): "refunded",
    get_topic(Passbook.PointsExpired): "expired",
}


class WhatIf:
    """A fold of the history under a proposed rule (feed it pages of envelopes)."""

    def __init__(self, rule: PointsRule, rates: dict[Category, int], policy: ExpiryPolicy) -> None:
        self.rule = rule
        self.rates = rates
        self.policy = policy
        self.activities: dict[str, tuple[Category, int]] = {}
        self.confirmations: dict[str, tuple[str, str]] = {}  # id -> (activity, source)
        self.corrections: dict[str, tuple[str, str, int, int]] = {}  # activity, source, old, new
        self.books: dict[str, _Book] = {}
        self.events = 0

    def points(self, activity_id: str, source: str, minutes: int) -> int:
        category, rate = self.activities[activity_id]
        return self.rule.points_for(
            minutes=minutes,
            points_per_hour=self.rates.get(category, rate),
            source=HoursSource(source),
            category=category,
        )

    def fold(self, envelopes: Iterable[EventEnvelope]) -> None:
        for e in envelopes:
            self.events += 1
            kind = _TOPICS.get(e.type)
            if kind is not None:
                self._apply(kind, e)

    def _apply(self, kind: str, e: EventEnvelope) -> None:
        p: dict[str, Any] = e.payload
        if kind == "published":
            self.activities[str(e.aggregate_id)] = (Category(p["category"]), p["points_per_hour"])
        elif kind == "confirmed":
            self.confirmations[p["confirmation_id"]] = (str(e.aggregate_id), p["hours_source"])
        elif kind == "corrected":
            _, source = self.confirmations.get(p["confirmation_id"], ("", "organizer"))
            self.corrections[p["correction_id"]] = (
                str(e.aggregate_id),
                source,
                p["old_minutes"],
                p["new_minutes"],
            )
        elif kind == "opened":
            self.books[str(e.aggregate_id)] = _Book(p["volunteer_id"])
        else:
            self._passbook(kind, self.books[str(e.aggregate_id)], p, e.recorded_at)

    def _recomputed(self, p: dict[str, Any]) -> int:
        if p["kind"] == AwardKind.SERVICE and p["source_id"] in self.confirmations:
            activity, source = self.confirmations[p["source_id"]]
            return self.points(activity, source, p["minutes"])
        if p["kind"] == AwardKind.CORRECTION and p["source_id"] in self.corrections:
            activity, source, old, new = self.corrections[p["source_id"]]
            return self.points(activity, source, new) - self.points(activity, source, old)
        return int(p["points"])

    def _passbook(self, kind: str, book: _Book, p: dict[str, Any], at: datetime) -> None:
        if kind == "awarded":
            proposed = self._recomputed(p)
            book.points_now += p["points"]
            book.balance_now += p["points"]
            book.points_proposed += proposed
            if p["kind"] in (AwardKind.SERVICE, AwardKind.CORRECTION):
                book.minutes += p["minutes"]
            awarded_at = datetime.fromisoformat(p["awarded_at"])
            if proposed > 0:
                book.add_lot(
                    _Lot((awarded_at, p["lot_id"]), self.policy.expires_at(awarded_at), proposed)
                )
            elif proposed < 0:
                book.spend(-proposed, at)
        elif kind == "deducted":
            book.points_now -= p["points"]
            book.points_proposed -= p["points"]
            book.balance_now -= p["points"]
            book.spend(p["points"], at)
        elif kind == "debited":
            book.points_now -= p["points"]
            book.balance_now -= p["points"]
            book.minutes += p["minutes"]
            activity, source, old, new = self.corrections.get(p["correction_id"], ("", "", 0, 0))
            proposed = (
                self.points(activity, source, new) - self.points(activity, source, old)
                if activity
                else -p["points"]
            )
            book.points_proposed += proposed
            if proposed < 0:
                book.spend(-proposed, at)
        elif kind == "redeemed":
            book.balance_now -= p["points"]
            book.spends[p["redemption_id"]] = book.spend(p["points"], at)
        elif kind == "refunded":
            book.balance_now += p["points"]
            for lot, points in book.spends.pop(p["redemption_id"], []):
                lot.remaining += points
        elif kind == "expired":
            book.balance_now -= p["points"]  # the proposed policy expires lots itself

    def report(
        self, proposed: ProposedRule, now: datetime, *, top: int = TOP, everyone: bool = False
    ) -> WhatIfReport:
        books = list(self.books.values())
        for book in books:
            book.expire(now)

        def ranks(points: str) -> dict[str, int]:
            order = sorted(books, key=lambda b: (-getattr(b, points), -b.minutes, b.volunteer_id))
            return {b.volunteer_id: i + 1 for i, b in enumerate(order)}

        now_ranks, proposed_ranks = ranks("points_now"), ranks("points_proposed")
        outcomes = [
            Outcome(
                volunteer_id=b.volunteer_id,
                points_now=b.points_now,
                points_proposed=b.points_proposed,
                points_change=b.points_proposed - b.points_now,
                rank_now=now_ranks[b.volunteer_id],
                rank_proposed=proposed_ranks[b.volunteer_id],
                rank_change=now_ranks[b.volunteer_id] - proposed_ranks[b.volunteer_id],
                balance_now=b.balance_now,
                balance_proposed=b.balance_proposed,
                shortfall=b.shortfall,
            )
            for b in books
        ]
        totals = Totals(
            volunteers=len(outcomes),
            points_now=sum(o.points_now for o in outcomes),
            points_proposed=sum(o.points_proposed for o in outcomes),
            balance_now=sum(o.balance_now for o in outcomes),
            balance_proposed=sum(o.balance_proposed for o in outcomes),
            expired_proposed=sum(b.expired for b in books),
            shortfall=sum(o.shortfall for o in outcomes),
            volunteers_gaining=sum(1 for o in outcomes if o.points_change > 0),
            volunteers_losing=sum(1 for o in outcomes if o.points_change < 0),
        )
        by_change = sorted(outcomes, key=lambda o: (-o.points_change, o.volunteer_id))
        return WhatIfReport(
            rule=proposed,
            as_of=now,
            events=self.events,
            totals=totals,
            top_gainers=[o for o in by_change[:top] if o.points_change > 0],
            top_losers=[o for o in reversed(by_change[-top:]) if o.points_change < 0],
            biggest_rank_moves=sorted(
                (o for o in outcomes if o.rank_change),
                key=lambda o: (-abs(o.rank_change), o.volunteer_id),
            )[:top],
            volunteers=sorted(outcomes, key=lambda o: o.rank_proposed) if everyone else None,
        )


def what_if(
    pages: Iterable[Iterable[EventEnvelope]],
    proposed: ProposedRule,
    *,
    current_rule: PointsRule,
    current_expiry: ExpiryPolicy,
    now: datetime,
    top: int = TOP,
    everyone: bool = False,
) -> WhatIfReport:
    fold = WhatIf(
        proposed.points_rule(current_rule),
        dict(proposed.category_points_per_hour),
        proposed.expiry_policy(current_expiry),
    )
    for page in pages:
        fold.fold(page)
    return fold.report(proposed, now, top=top, everyone=everyone)
