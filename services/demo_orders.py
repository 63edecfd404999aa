"""The demo network's teams, service menus and service orders.

Called by the demo generator (:mod:`services.demo`) once volunteers exist: it
forms the district's 1 general corps (总队), 8 standing detachments (常设分队) and
22 specialised teams (专业队) plus a team at each station with enough volunteers,
publishes service menus at the center, the institutes and those stations, and
sends a few hundred orders round the 点单→审单→派单→接单→评单→晒单 loop: some
rejected, some passed down, some declined and dispatched again, some taken
first-come, most completed and rated, a few showcased, and those placed near the
end of the period left open (so overdue when the demo is read later).

Deterministic: its own ``Random`` (seeded from the demo's seed, so the rest of
the plan is unchanged) and ``uuid5`` ids. Commands run at the day's tick, one
step a day or more apart, so each step lands after the one before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random
from typing import Protocol
from uuid import UUID

from domain.categories import Category
from domain.orders import Channel
from domain.teams import TeamKind
from domain.units import UnitTier
from services import commands as c

ORDERS_PER_MONTH = 25
DETACHMENTS = (
    "理论宣讲",
    "文化文艺",
    "科普服务",
    "卫生健康",
    "法律服务",
    "助老助残",
    "生态环保",
    "平安建设",
)
SPECIALISED = 22
MENU: dict[Category, tuple[str, ...]] = {
    Category.ELDERLY_DISABLED: ("上门理发", "陪同就医", "助餐送餐", "居家清洁"),
    Category.HEALTH: ("上门量血压", "健康咨询", "康复指导"),
    Category.LEGAL_AID: ("法律咨询", "调解邻里纠纷"),
    Category.CONVENIENCE: ("家电维修", "代缴代办", "磨刀修伞"),
    Category.SCIENCE: ("智能手机教学", "防诈骗讲解"),
    Category.CULTURE_SPORTS: ("文艺演出进小区", "书法课"),
    Category.THEORY: ("政策宣讲进家门",),
    Category.ENVIRONMENT: ("垃圾分类指导",),
    Category.CIVILITY: ("家风家训宣讲",),
}
REJECT_REASONS = ("不在服务范围内", "重复下单", "居民已取消需求")
DECLINE_REASONS = ("本周人手不足", "队员时间冲突", "需要专业资质")
COMMENTS = ("服务很周到", "志愿者很耐心", "准时上门，谢谢", "还不错", "下次还找你们")
ELDERS = ("阿姨", "大爷", "奶奶", "爷爷")


class Unit(Protocol):
    id: UUID
    code: str
    short: str
    tier: UnitTier
    volunteers: list[int]

    @property
    def parent(self) -> Unit | None: ...


class Person(Protocol):
    id: UUID
    registered: int


class Plan(Protocol):
    """What this module needs of the demo generator."""

    days: int
    SETUP: int
    ATTEND: int

    def demo_id(self, *parts: object) -> UUID: ...

    def emit(self, day: int, phase: int, command: c.Command) -> None: ...


@dataclass
class _Team:
    id: UUID
    unit: Unit
    members: list[UUID] = field(default_factory=list)


@dataclass
class _Item:
    id: UUID
    unit: Unit
    first_come: bool


class _Orders:
    def __init__(self, plan: Plan, seed: int) -> None:
        self.plan = plan
        self.rng = Random(f"orders-{seed}")  # noqa: S311 - demo data, not secrets
        self.phase = plan.ATTEND

    def emit(self, day: int, command: c.Command) -> bool:
        """Emit ``command`` on ``day`` if the day is within the demo period."""
        if day >= self.plan.days:
            return False
        self.plan.emit(day, self.phase, command)
        return True

    def setup(self, command: c.Command) -> None:
        self.plan.emit(-1, self.phase, command)

    # -- teams -------------------------------------------------------------------------

    def team(
        self,
        unit: Unit,
        pool: Sequence[UUID],
        name: str,
        kind: TeamKind,
        parent: _Team | None = None,
        specialty: Category | None = None,
        size: int = 4,
    ) -> _Team | None:
        if not pool:
            return None
        chosen = self.rng.sample(list(pool), min(size, len(pool)))
        team = _Team(self.plan.demo_id("team", unit.code, name), unit, chosen)
        self.setup(
            c.FormTeam(
                team_id=team.id,
                unit_id=unit.id,
                name=name,
                kind=kind,
                parent_team_id=parent.id if parent is not None else None,
                leader_id=chosen[0],
                specialty=specialty,
            )
        )
        for member in chosen[1:]:
            self.setup(c.JoinTeam(team_id=team.id, volunteer_id=member, reason="首批队员"))
        return team

    def teams(
        self,
        center: Unit,
        institutes: Sequence[Unit],
        stations: Sequence[Unit],
        people: Sequence[Person],
    ) -> tuple[dict[UUID, _Team], dict[UUID, list[_Team]]]:
        """The corps, detachments and specialised teams; one team per station with
        at least three founding volunteers. Returns station teams by station and
        specialised teams by institute."""

        def founders(unit: Unit) -> list[UUID]:
            return [people[v].id for v in unit.volunteers if people[v].registered < 0]

        everyone = [p.id for p in people if p.registered < 0]
        corps = self.team(
            center, everyone, "江北区新时代文明实践志愿服务总队", TeamKind.CORPS, size=8
        )
        if corps is None:
            return {}, {}
        detachments = [
            self.team(center, everyone, f"{field_}志愿服务分队", TeamKind.DETACHMENT, corps)
            for field_ in DETACHMENTS
        ]
        pools = {
            i.id: [
                p.id
                for s in stations
                if s.parent is i
                for p in map(people.__getitem__, s.volunteers)
                if p.registered < 0
            ]
            for i in institutes
        }
        by_institute: dict[UUID, list[_Team]] = {}
        categories = list(MENU)
        for n in range(SPECIALISED):
            institute = institutes[n % len(institutes)]
            specialty = categories[n % len(categories)]
            parent = detachments[n % len(detachments)] if n % 3 else corps
            unit, pool = (
                (institute, pools[institute.id]) if pools[institute.id] else (center, everyone)
            )
            team = self.team(
                unit,
                pool,
                f"{unit.short}{specialty.name.lower()}专业队{n + 1}",
                TeamKind.SPECIALISED,
                parent,
                specialty,
            )
            if team is not None and unit is institute:
                by_institute.setdefault(institute.id, []).append(team)
        by_station: dict[UUID, _Team] = {}
        for station in stations:
            pool = founders(station)
            if len(pool) >= 3:
                team = self.team(station, pool, f"{station.short}志愿服务队", TeamKind.TEAM)
                if team is not None:
                    by_station[station.id] = team
        for team in [corps, *(d for d in detachments if d is not None)]:  # some move on
            for member in team.members[1:]:
                if self.rng.random() < 0.15:
                    self.emit(
                        self.rng.randrange(self.plan.days),
                        c.LeaveTeam(team_id=team.id, volunteer_id=member, reason="工作调动"),
                    )
        return by_station, by_institute

    # -- menus -------------------------------------------------------------------------

    def menu(self, unit: Unit, count: int) -> list[_Item]:
        items = []
        for k in range(count):
            category = self.rng.choice(list(MENU))
            title = self.rng.choice(MENU[category])
            item = _Item(self.plan.demo_id("menu", unit.code, k), unit, self.rng.random() < 0.2)
            self.setup(
                c.AddMenuItem(
                    item_id=item.id,
                    unit_id=unit.id,
                    category=category,
                    title=title,
                    description=f"{unit.short}{title}志愿服务，居民可在线点单。",
                    points_per_hour=self.rng.choice((8, 10, 12)),
                    first_come=item.first_come,
                    deadline_minutes={"review": 12 * 60} if k == 0 else None,
                )
            )
            items.append(item)
        return items

    # -- orders ------------------------------------------------------------------------

    def orders(
        self,
        months: int,
        by_station: dict[UUID, _Team],
        by_institute: dict[UUID, list[_Team]],
        stations: Sequence[Unit],
    ) -> None:
        served = [s for s in stations if s.id in by_station]
        if not served:
            return
        institutes = {s.parent.id: s.parent for s in served if s.parent is not None}
        institute_menus = {i: self.menu(unit, 3) for i, unit in institutes.items()}
        station_menus = {s.id: self.menu(s, 2) for s in served}
        for n in range(ORDERS_PER_MONTH * months):
            station = self.rng.choice(served)
            assert station.parent is not None  # noqa: S101 - stations have institutes
            at_institute = self.rng.random() < 0.4
            menu = institute_menus[station.parent.id] if at_institute else station_menus[station.id]
            item = self.rng.choice(menu)
            specialised = by_institute.get(station.parent.id, [])
            team = (
                self.rng.choice(specialised)
                if at_institute and specialised and self.rng.random() < 0.5
                else by_station[station.id]
            )
            self.order(n, self.rng.randrange(self.plan.days), item, station, team)

    def order(self, n: int, day: int, item: _Item, station: Unit, team: _Team) -> None:
        rng = self.rng
        order_id = self.plan.demo_id("order", n)
        resident = rng.random() < 0.7
        ref = f"demo-resident-{rng.randrange(5000)}" if resident else None
        self.emit(
            day,
            c.PlaceOrder(
                order_id=order_id,
                menu_item_id=item.id,
                channel=Channel.RESIDENT if resident else Channel.STAFF,
                resident_ref=ref,
                resident_name="刘" + rng.choice(ELDERS) if rng.random() < 0.5 else None,
                details="" if resident else "电话预约",
            ),
        )
        steps: list[tuple[int, c.Command]] = []
        day += rng.choice((0, 1, 1, 2))
        if rng.random() < 0.08:
            steps.append((day, c.RejectOrder(order_id=order_id, reason=rng.choice(REJECT_REASONS))))
            self._run(steps)
            return
        take = item.first_come or rng.random() < 0.05
        steps.append((day, c.ApproveOrder(order_id=order_id, open_to_teams=take or None)))
        if item.unit.tier != UnitTier.STATION and team.unit is station:
            day += rng.choice((0, 1))
            steps.append(
                (
                    day,
                    c.PassOrderDown(order_id=order_id, unit_id=station.id, reason="由社区就近服务"),
                )
            )
        day += rng.choice((0, 1))
        if take:
            steps.append((day, c.TakeOrder(order_id=order_id, team_id=team.id)))
        else:
            steps.append((day, c.DispatchOrder(order_id=order_id, team_id=team.id)))
            if rng.random() < 0.1:
                day += 1
                steps.append(
                    (
                        day,
                        c.DeclineOrder(
                            order_id=order_id, team_id=team.id, reason=rng.choice(DECLINE_REASONS)
                        ),
                    )
                )
                day += rng.choice((0, 1))
                steps.append((day, c.DispatchOrder(order_id=order_id, team_id=team.id)))
            day += rng.choice((0, 1))
            steps.append((day, c.AcceptOrder(order_id=order_id, team_id=team.id)))
        day += rng.choice((1, 1, 2, 3))
        volunteers = rng.sample(team.members, rng.randint(1, min(3, len(team.members))))
        steps.append(
            (
                day,
                c.CompleteOrder(
                    order_id=order_id,
                    team_id=team.id,
                    services=[
                        c.ServiceLine(volunteer_id=v, hours=Decimal(rng.choice((1, 1.5, 2, 3))))
                        for v in volunteers
                    ],
                    people_served=rng.randint(1, 3),
                ),
            )
        )
        if rng.random() < 0.8:
            day += rng.choice((0, 1, 2))
            steps.append(
                (
                    day,
                    c.RateOrder(
                        order_id=order_id,
                        stars=rng.choice((3, 4, 4, 5, 5, 5)),
                        comment=rng.choice(COMMENTS),
                        resident_ref=ref,
                    ),
                )
            )
            if rng.random() < 0.12:
                day += rng.randint(1, 5)
                steps.append(
                    (
                        day,
                        c.ShowcaseOrder(
                            order_id=order_id, story=f"{station.short}志愿者上门服务，居民点赞。"
                        ),
                    )
                )
        self._run(steps)

    def _run(self, steps: list[tuple[int, c.Command]]) -> None:
        for day, command in steps:
            if not self.emit(day, command):
                return  # the rest lies beyond the demo period: the order stays open


def plan_orders(
    plan: Plan,
    seed: int,
    months: int,
    center: Unit,
    institutes: Sequence[Unit],
    stations: Sequence[Unit],
    people: Sequence[Person],
) -> None:
    """Add the teams, menus and orders to ``plan``."""
    orders = _Orders(plan, seed)
    by_station, by_institute = orders.teams(center, institutes, stations, people)
    orders.menu(center, 2)
    orders.orders(months, by_station, by_institute, stations)
