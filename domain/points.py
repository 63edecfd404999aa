"""Points rules (积分规则): how confirmed service becomes points, and when points expire.

Pure functions of their inputs, so the same rule replays history deterministically
(and a proposed rule can be replayed as a what-if).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from zoneinfo import ZoneInfo

from domain.categories import Category


class HoursSource(StrEnum):
    CHECKIN = "checkin"  # measured by check-in and check-out
    ORGANIZER = "organizer"  # entered afterwards by the organizer


@dataclass(frozen=True)
class PointsRule:
    """points = floor(minutes / 60 × points_per_hour × source factor × category factor)."""

    source_factors: dict[HoursSource, Fraction] = field(
        default_factory=lambda: {
            HoursSource.CHECKIN: Fraction(1),
            HoursSource.ORGANIZER: Fraction(4, 5),
        }
    )
    category_factors: dict[Category, Fraction] = field(default_factory=dict)
    max_minutes_per_service: int | None = None

    def points_for(
        self,
        *,
        minutes: int,
        points_per_hour: int,
        source: HoursSource,
        category: Category,
    ) -> int:
        if self.max_minutes_per_service is not None:
            minutes = min(minutes, self.max_minutes_per_service)
        factor = self.source_factors.get(source, Fraction(1)) * self.category_factors.get(
            category, Fraction(1)
        )
        return int(Fraction(minutes, 60) * points_per_hour * factor)


class ExpiryKind(StrEnum):
    NEVER = "never"
    END_OF_YEAR = "end_of_year"  # points expire when the year they were earned in ends
    DAYS = "days"  # points expire N days after they were awarded


@dataclass(frozen=True)
class ExpiryPolicy:
    kind: ExpiryKind = ExpiryKind.NEVER
    days: int | None = None
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.kind == ExpiryKind.DAYS and (self.days is None or self.days <= 0):
            msg = "an N-days expiry policy needs a positive number of days"
            raise ValueError(msg)

    def expires_at(self, awarded_at: datetime) -> datetime | None:
        if self.kind == ExpiryKind.NEVER:
            return None
        if self.kind == ExpiryKind.DAYS:
            return awarded_at + timedelta(days=self.days or 0)
        local = awarded_at.astimezone(ZoneInfo(self.timezone))
        return datetime(local.year + 1, 1, 1, tzinfo=ZoneInfo(self.timezone))
