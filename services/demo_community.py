"""The demo's community work: micro-wishes at stations, venture philanthropy calls,
and a charity fund per institute.

Called by the demo generator once its network and volunteers exist; it draws from
a random generator of its own (seeded from the demo's seed), so adding it changed
none of the demo's other choices. Like the rest of the demo it simulates what
the domain will decide (a fund's balance, a call's remaining budget, who may
claim a wish on which day) so that loading the plan refuses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from domain.funds import Fund, PurposeKind, SourceKind
from services import commands as c

if TYPE_CHECKING:
    from datetime import datetime


class _Unit(Protocol):
    id: UUID
    code: str
    short: str
    volunteers: list[int]


class _Person(Protocol):
    id: UUID
    registered: int


class _Plan(Protocol):
    """What the demo generator offers this module."""

    SETUP: int
    AWARD: int
    SETTLE: int
    days: int

    def demo_id(self, *parts: object) -> UUID: ...
    def emit(self, day: int, phase: int, command: c.Command) -> None: ...
    def tick(self, day: int) -> datetime: ...


WISHES = (
    ("一个新书包", "小学三年级学生，书包已经破旧"),
    ("一件冬季棉衣", "独居老人，冬天衣物单薄"),
    ("一套课外读物", "留守儿童，喜欢看书"),
    ("一台电饭煲", "低保户家庭，电饭煲坏了"),
    ("一双运动鞋", "初中生，参加学校运动会"),
    ("一个助行器", "腿脚不便的老人"),
    ("一盏护眼台灯", "高三学生，晚上学习"),
    ("一床新棉被", "困难家庭，过冬所需"),
)
MEMBER_CLAIMANTS = ("区税务局机关党支部", "区人民医院党委", "江北实验中学党支部", "区总工会")
RELEASE_REASONS = ("临时出差，无法按时完成", "联系不上居民，另请他人认领")
CANCEL_REASONS = ("居民已搬离本社区", "亲属已帮助解决")
DONORS = ("爱心企业", "辖区商户", "热心居民", "社会组织")
PROJECTS = (
    ("长者助餐服务", "阳光社会工作服务中心"),
    ("四点半课堂", "青年志愿者协会"),
    ("社区邻里节", "和美社区服务中心"),
    ("心理关爱热线", "心晴心理服务社"),
    ("垃圾分类小管家", "绿色家园环保协会"),
    ("残疾人就业帮扶", "助残志愿服务队"),
    ("非遗手工传承", "巧手姐妹手工坊"),
)
REVIEWERS = ("评审专家甲", "评审专家乙", "评审专家丙")
YUAN = 100  # fen


@dataclass
class _Fund:
    id: UUID
    unit: _Unit
    balance: int = 0
    movements: int = 0


def plan_community(
    g: _Plan,
    center: _Unit,
    institutes: Sequence[_Unit],
    stations: Sequence[_Unit],
    people: Sequence[_Person],
    seed: int,
) -> None:
    """Emit the community commands into the demo plan ``g``."""
    rng = Random(seed * 7919 + 6)  # noqa: S311 - deterministic demo data, not cryptography
    _funds(g, rng, institutes)
    _wishes(g, rng, stations, people)
    _venture_call(g, rng, center, "center", budget_yuan=300_000, first_day=3)
    if institutes:
        _venture_call(g, rng, institutes[0], "institute", budget_yuan=80_000, first_day=40)


# -- charity funds ------------------------------------------------------------------------


def _funds(g: _Plan, rng: Random, institutes: Sequence[_Unit]) -> None:
    for institute in institutes:
        fund = _Fund(Fund.create_id(institute.id), institute)
        g.emit(0, g.SETUP, c.OpenFund(unit_id=institute.id, title=f"{institute.short}社区慈善基金"))
        for day in range(0, g.days, 30):
            for _ in range(rng.randint(1, 3)):
                amount = rng.randrange(200, 5_000) * YUAN
                _receive(g, fund, day, amount, SourceKind.DONATION, "月度爱心捐赠", rng)
            if (day // 30) % 3 == 1:  # a charity sale of residents' handicrafts each quarter
                amount = rng.randrange(300, 1_500) * YUAN + rng.randrange(100)
                _receive(g, fund, day, amount, SourceKind.CHARITY_SALE, "手工艺品义卖", rng)
            # the month's meal subsidies for low-income elderly: never more than the balance
            elderly = rng.randint(8, 30)
            subsidy = min(elderly * 150 * YUAN, fund.balance * 3 // 4)
            if subsidy > 0 and day + 1 < g.days:
                fund.movements += 1
                fund.balance -= subsidy
                g.emit(
                    day + 1,
                    g.AWARD,
                    c.DisburseMoney(
                        fund_id=fund.id,
                        amount_fen=subsidy,
                        purpose_kind=PurposeKind.MEAL_SUBSIDY,
                        purpose="低收入老人助餐补贴",
                        approved_by=f"{institute.short}街道办事处分管领导",
                        beneficiaries=elderly,
                        movement_id=g.demo_id("fund", institute.code, fund.movements),
                    ),
                )


def _receive(
    g: _Plan, fund: _Fund, day: int, amount: int, kind: SourceKind, purpose: str, rng: Random
) -> None:
    fund.movements += 1
    fund.balance += amount
    g.emit(
        day,
        g.AWARD,
        c.ReceiveMoney(
            fund_id=fund.id,
            amount_fen=amount,
            source_kind=kind,
            purpose=purpose,
            donor=rng.choice(DONORS),
            movement_id=g.demo_id("fund", fund.unit.code, fund.movements),
        ),
    )


# -- micro-wishes -------------------------------------------------------------------------


def _wishes(g: _Plan, rng: Random, stations: Sequence[_Unit], people: Sequence[_Person]) -> None:
    count = max(4, len(people) // 25)
    for n in range(count):
        station = rng.choice(stations)
        day = rng.randrange(max(g.days - 8, 1))
        title, description = rng.choice(WISHES)
        wish = g.demo_id("wish", n)
        g.emit(
            day,
            g.AWARD,
            c.PostWish(
                wish_id=wish,
                unit_id=station.id,
                title=title,
                description=description,
                resident_ref=f"{station.code}-档案-{rng.randrange(1, 400):03d}",
                points=rng.choice((0, 5, 10, 10, 20)),
            ),
        )
        roll = rng.random()
        if roll < 0.1:
            g.emit(day + 2, g.SETTLE, c.CancelWish(wish_id=wish, reason=rng.choice(CANCEL_REASONS)))
            continue
        if roll < 0.2:  # still open at the end of the period
            continue
        claim_day = day + 1
        if rng.random() < 0.15:  # a first claimant withdraws
            g.emit(claim_day, g.AWARD, _claim(wish, station, people, claim_day, rng))
            g.emit(
                claim_day, g.SETTLE, c.ReleaseWish(wish_id=wish, reason=rng.choice(RELEASE_REASONS))
            )
            claim_day += 1
        g.emit(claim_day, g.AWARD, _claim(wish, station, people, claim_day, rng))
        if roll < 0.3:  # claimed, not yet done
            continue
        g.emit(claim_day + 2, g.AWARD, c.FulfilWish(wish_id=wish, note="心愿物品已送到居民手中"))
        if roll < 0.4:  # fulfilled, awaiting the unit's confirmation
            continue
        g.emit(claim_day + 3, g.SETTLE, c.ConfirmWish(wish_id=wish, note="回访确认"))


def _claim(
    wish: UUID, station: _Unit, people: Sequence[_Person], day: int, rng: Random
) -> c.ClaimWish:
    """A volunteer of the station registered before ``day``, else a party member."""
    local = [people[i] for i in station.volunteers if people[i].registered < day]
    if local and rng.random() < 0.75:
        return c.ClaimWish(wish_id=wish, volunteer_id=rng.choice(local).id)
    return c.ClaimWish(wish_id=wish, claimant_ref=rng.choice(MEMBER_CLAIMANTS))


# -- venture philanthropy calls -------------------------------------------------------------


def _venture_call(
    g: _Plan, rng: Random, unit: _Unit, label: str, *, budget_yuan: int, first_day: int
) -> None:
    if first_day + 1 >= g.days:
        return
    call = g.demo_id("venture", label)
    budget = budget_yuan * YUAN
    deadline_day = first_day + 21
    g.emit(
        first_day,
        g.SETUP,
        c.OpenVentureCall(
            call_id=call,
            unit_id=unit.id,
            title=f"{unit.short}公益创投大赛",
            description="围绕为老服务、青少年成长、社区治理征集公益项目",
            budget_fen=budget,
            deadline=g.tick(deadline_day).replace(hour=15, minute=59),  # 23:59 local
        ),
    )
    chosen = rng.sample(PROJECTS, k=rng.randint(4, 6))
    averages: list[tuple[float, UUID, int]] = []
    for n, (title, organisation) in enumerate(chosen):
        submit_day = first_day + 1 + rng.randrange(18)
        if submit_day >= g.days:
            continue
        project = g.demo_id("venture", label, "project", n)
        requested = rng.randrange(budget_yuan // 6, budget_yuan // 2) * YUAN
        g.emit(
            submit_day,
            g.AWARD,
            c.SubmitProject(
                call_id=call,
                project_id=project,
                title=title,
                organisation=organisation,
                requested_fen=requested,
                summary=f"{organisation}申报：{title}",
            ),
        )
        scores = [rng.randint(60, 98) for _ in REVIEWERS]
        review_day = deadline_day + 2
        if review_day >= g.days:
            continue
        for reviewer, score in zip(REVIEWERS, scores, strict=True):
            g.emit(
                review_day,
                g.AWARD,
                c.ScoreProject(call_id=call, project_id=project, reviewer=reviewer, score=score),
            )
        averages.append((sum(scores) / len(scores), project, requested))
    fund_day = deadline_day + 5
    if fund_day >= g.days:
        return
    remaining = budget
    funded: list[UUID] = []
    for _, project, requested in sorted(averages, key=lambda a: (-a[0], str(a[1]))):
        amount = min(requested, remaining)
        if amount >= requested // 2 and amount > 0:
            remaining -= amount
            funded.append(project)
            g.emit(
                fund_day,
                g.SETTLE,
                c.FundProject(
                    call_id=call, project_id=project, amount_fen=amount, reason="评审通过"
                ),
            )
        else:
            g.emit(
                fund_day,
                g.SETTLE,
                c.DeclineProject(call_id=call, project_id=project, reason="评分靠后，预算不足"),
            )
    _deliver(g, rng, call, funded, fund_day)


def _deliver(g: _Plan, rng: Random, call: UUID, funded: list[UUID], fund_day: int) -> None:
    """Milestones a month apart, acceptance, then the published results."""
    accept_day = fund_day + 75
    for project in funded:
        for k, title in enumerate(("项目启动", "中期报告")):
            if fund_day + 30 * (k + 1) >= g.days:
                break
            g.emit(
                fund_day + 30 * (k + 1),
                g.AWARD,
                c.ReportMilestone(call_id=call, project_id=project, title=title, note="按计划推进"),
            )
        if accept_day < g.days:
            g.emit(
                accept_day,
                g.AWARD,
                c.AcceptProject(
                    call_id=call,
                    project_id=project,
                    final_score=rng.randint(70, 96),
                    evaluation="服务成效明显，居民满意度高",
                ),
            )
    if accept_day + 1 < g.days:
        g.emit(
            accept_day + 1,
            g.SETTLE,
            c.PublishVentureResults(call_id=call, summary=f"资助{len(funded)}个项目，均已结项"),
        )
