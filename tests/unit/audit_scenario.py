"""A small district with a year of history for the audit-and-replay tests, recorded
through the application (commands, handlers, the real event store) with a settable
clock, so every event's recording time is known.

    center C ── institute I ── stations S1, S2

Volunteers: wang (S1), li (S1), zhao (S2). In March 2026 (Shanghai time) wang and
li serve at a S1 activity (2 h and 3 h measured, 10 points/hour), zhao at a S2
activity (organizer-entered 2 h: 16 points); wang gets a manual award; in April
wang redeems a 25-point reward (spending his service lot, then part of the manual
one) and li redeems one that is then cancelled (refunded). Balances after April:
wang 30 - 25 = 5, li 30, zhao 16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from services import commands as c
from services.application import CivicApplication
from services.principals import SYSTEM, Principal

ID_NUMBERS = ["11010519491231002X", "440524188001010014", "110101199003074477"]

# 2026-03-10 09:00 Shanghai
MARCH = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
APRIL = datetime(2026, 4, 15, 2, 0, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@dataclass
class District:
    app: CivicApplication
    units: dict[str, UUID] = field(default_factory=dict)
    volunteers: dict[str, UUID] = field(default_factory=dict)
    activities: dict[str, UUID] = field(default_factory=dict)
    rewards: dict[str, UUID] = field(default_factory=dict)
    redemptions: dict[str, UUID] = field(default_factory=dict)
    now: datetime = MARCH - timedelta(days=9)

    def at(self, when: datetime) -> District:
        self.now = when
        self.app.clock = lambda: when
        return self

    def run(self, command: c.Command, principal: Principal = SYSTEM) -> dict[str, Any]:
        return self.app.execute(command, principal).result

    def build(self) -> District:
        self.at(self.now)
        center = self.run(c.OpenUnit(code="C", name="中心", tier="center"))["unit_id"]
        institute = self.run(c.OpenUnit(code="I", name="所", tier="institute", parent_id=center))[
            "unit_id"
        ]
        self.units.update(center=UUID(center), institute=UUID(institute))
        for code in ("S1", "S2"):
            unit = self.run(c.OpenUnit(code=code, name=code, tier="station", parent_id=institute))
            self.units[code] = UUID(unit["unit_id"])
        for n, (name, station) in enumerate((("wang", "S1"), ("li", "S1"), ("zhao", "S2"))):
            result = self.run(
                c.RegisterVolunteer(
                    home_station_id=self.units[station],
                    name=name,
                    phone="13800000000",
                    id_number=ID_NUMBERS[n],
                )
            )
            self.volunteers[name] = UUID(result["volunteer_id"])
        self.march()
        self.april()
        return self

    def publish(self, key: str, station: str, starts: datetime) -> UUID:
        result = self.run(
            c.PublishActivity(
                unit_id=self.units[station],
                title=f"活动{key}",
                category="environment",
                starts_at=starts,
                ends_at=starts + timedelta(hours=4),
                location="广场",
                capacity=10,
                points_per_hour=10,
            )
        )
        self.activities[key] = UUID(result["activity_id"])
        return self.activities[key]

    def march(self) -> None:
        self.at(MARCH - timedelta(days=2))
        a = self.publish("march_s1", "S1", MARCH)
        b = self.publish("march_s2", "S2", MARCH + timedelta(days=1))
        for name in ("wang", "li"):
            self.run(c.SignUp(activity_id=a, volunteer_id=self.volunteers[name]))
        self.run(c.SignUp(activity_id=b, volunteer_id=self.volunteers["zhao"]))
        wang, li = self.volunteers["wang"], self.volunteers["li"]
        self.at(MARCH)
        for v in (wang, li):
            self.run(c.CheckIn(activity_id=a, volunteer_id=v))
        self.at(MARCH + timedelta(minutes=120))
        self.run(c.CheckOut(activity_id=a, volunteer_id=wang))
        self.at(MARCH + timedelta(minutes=180))
        self.run(c.CheckOut(activity_id=a, volunteer_id=li))
        self.at(MARCH + timedelta(hours=5))
        for v in (wang, li):
            self.run(c.ConfirmService(activity_id=a, volunteer_id=v))
        self.at(MARCH + timedelta(days=1, hours=5))
        self.run(
            c.ConfirmService(activity_id=b, volunteer_id=self.volunteers["zhao"], hours=Decimal(2))
        )
        self.at(MARCH + timedelta(days=3))
        self.run(
            c.AwardPoints(volunteer_id=self.volunteers["wang"], points=10, reason="文明户评比")
        )

    def april(self) -> None:
        self.at(APRIL - timedelta(days=1))
        reward = self.run(
            c.ListReward(unit_id=self.units["S1"], name="洗衣液", cost_points=25, stock=5)
        )
        self.rewards["soap"] = UUID(reward["reward_id"])
        self.at(APRIL)
        result = self.run(
            c.Redeem(volunteer_id=self.volunteers["wang"], reward_id=self.rewards["soap"])
        )
        self.redemptions["wang"] = UUID(result["redemption_id"])
        self.at(APRIL + timedelta(hours=1))
        result = self.run(
            c.Redeem(volunteer_id=self.volunteers["li"], reward_id=self.rewards["soap"])
        )
        self.redemptions["li"] = UUID(result["redemption_id"])
        self.at(APRIL + timedelta(hours=2))
        self.run(c.CancelRedemption(redemption_id=self.redemptions["li"], reason="不要了"))
