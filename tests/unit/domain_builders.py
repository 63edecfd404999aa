"""Small builders for domain scenarios (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.activities import Activity
from domain.categories import Category
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import Volunteer

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def network() -> tuple[PracticeUnit, PracticeUnit, PracticeUnit]:
    center = PracticeUnit.open(code="c", name="中心", tier=UnitTier.CENTER, parent=None)
    institute = PracticeUnit.open(code="i", name="所", tier=UnitTier.INSTITUTE, parent=center)
    station = PracticeUnit.open(code="s", name="站", tier=UnitTier.STATION, parent=institute)
    return center, institute, station


def volunteer(station: PracticeUnit, n: int = 1) -> Volunteer:
    return Volunteer.register(
        document_digest=f"digest-{n}",
        document_masked="110***********002X",
        home_station=station,
        name=f"志愿者{n}",
        phone="13800000000",
    )


def activity(
    unit: PracticeUnit, *, capacity: int = 2, hour_cap_minutes: int | None = None
) -> Activity:
    return Activity.publish(
        unit=unit,
        title="关爱空巢老人上门服务",
        category=Category.ELDERLY_DISABLED,
        starts_at=T0 + timedelta(days=1),
        ends_at=T0 + timedelta(days=1, hours=3),
        location="社区服务中心",
        capacity=capacity,
        points_per_hour=10,
        hour_cap_minutes=hour_cap_minutes,
    )
