"""A deterministic demo network: one district's year of volunteering, as commands.

:func:`generate` is pure: from a :class:`DemoConfig` (seed, size, period) it builds
the whole history as a list of :class:`Step` — a command and the clock time it
runs at — with every random choice drawn from one ``random.Random(seed)``. It
simulates what the domain will decide (who is enrolled or waitlisted, who is
promoted, each passbook's balance, each reward's stock) so that every command is
one the platform accepts: loading a plan should refuse nothing.

:func:`load` feeds a plan to the application in batches (one transaction each),
driving the application's clock through the year so that activities are
published before they start, sign-ups close at the start and confirmations come
after it. Time moves in one tick per day (21:30 local, after the day's last
activity has ended): a batch shares one clock reading, so ticks are the natural
batch boundaries.

Ids are deterministic: units by code, activities, rewards, redemptions and
manual awards by ``uuid5`` of the seed. Volunteer ids are the platform's keyed
hash of the identity number, so they are equal across runs only when the
document secret is (``CIVIC_DOCUMENT_SECRET``); :func:`generate` takes the
secret for that reason.

Business times (activity times, check-in and check-out, ``awarded_at``) follow the
demo clock; the library stamps each event's ``recorded_at`` with the wall clock.
Points are simulated with the points rule passed in (the application's); an
expiry policy that expires points inside the period would make some redemptions
fail, and :func:`load` reports those refusals by code. The default size (3,000
volunteers, twelve months: about 1,100 activities, 13,000 sign-ups and 72,000
events) loads in well under a minute on two cores.
"""

from __future__ import annotations

import calendar
import heapq
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from itertools import groupby
from random import Random
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from domain.base import CIVIC_NAMESPACE
from domain.categories import Category
from domain.points import HoursSource, PointsRule
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import Volunteer, document_digest
from services import commands as c
from services.application import BatchItem, CivicApplication
from services.demo_community import plan_community
from services.demo_orders import plan_orders
from services.principals import SYSTEM, Principal

DEFAULT_START = date(2025, 1, 1)
TICK = clock_time(21, 30)  # every day's commands run at this local time


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# -- the network -------------------------------------------------------------------------

CENTER_CODE = "JB"
CENTER_NAME = "江北区新时代文明实践中心"

# (street or town, is a town) — a town's stations are villages (村), a street's are
# communities (社区)
INSTITUTES: tuple[tuple[str, bool], ...] = (
    ("观音桥街道", False),
    ("华新街街道", False),
    ("五里店街道", False),
    ("江北城街道", False),
    ("石马河街道", False),
    ("大石坝街道", False),
    ("寸滩街道", False),
    ("郭家沱街道", False),
    ("鱼嘴镇", True),
)
STATIONS_PER_INSTITUTE = (16, 14, 15, 13, 14, 12, 12, 13, 14)  # 123 in all

COMMUNITY_STEMS = _words(
    "建新 北城 建北 洋河 松石 桥北 董家溪 玉带山 鲤鱼池 鸿恩寺 兴隆 朝阳 "
    "长安 幸福 和平 团结 花园 滨江 金源 望江 石门 龙湖 紫荆 银杏 荷花 "
    "桂花 竹林 枫林 青龙 白马 黄桷 红岩 云顶 东风 红旗 向阳 光明 永红 "
    "前进 胜利 新华 复兴 民主 友谊 建设 高峰 双溪 三合 五一 七星 九龙 "
    "盘溪 铁山 头塘 唐家沱 郭家湾 沙湾 港城 寸滩 大佛寺 溉澜溪 石子山 "
    "刘家台 劳动 鹞子丘 大庆 新村 华新 嘉陵 北滨 宏帆 海尔 金港 渝澳 "
    "茶园 红土地 观音岩 五简路 江北城 塔坪 保利 金科 融创 华润 万科 东原 "
    "天原 铁路 重钢 长江 明月 翠云 松树桥 杨家坪 凤凰 梨树湾 石盘 双碑 "
    "鱼复 复盛 五宝 园林 果园 渔业 凉亭 桥口 柏树 楠木 梓潼 太平 永安 "
    "安和 和睦 新桥 水口 田坝 石坝 高坪 龙井 龙潭 清溪 白云 金竹 青杠 "
    "香炉山 仙桃"
)

# -- people ------------------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
    "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱"
    "严覃武戴莫孔向汤冉"
)
MALE_GIVEN = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林亮成国建文志峰"
FEMALE_GIVEN = "芳娜敏静丽艳娟霞秀英玲桂兰萍红梅琳燕丹慧莉雪倩婷颖佳欣怡蓉琴洁媛璐晶"
NEUTRAL_GIVEN = "春晓子思雨天嘉新永德海金晨正家兴阳一小云清安"

# Chongqing districts mostly, a few from neighbouring provinces
REGION_CODES = (
    ("500105", 60),  # 江北区
    ("500112", 10),  # 渝北区
    ("500103", 6),  # 渝中区
    ("500106", 5),  # 沙坪坝区
    ("500108", 5),  # 南岸区
    ("500235", 4),  # 云阳县
    ("500236", 3),  # 奉节县
    ("510107", 3),  # 成都市武侯区
    ("420106", 2),  # 武汉市武昌区
    ("520102", 2),  # 贵阳市南明区
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# -- activities --------------------------------------------------------------------------

TITLES: dict[Category, tuple[str, ...]] = {
    Category.THEORY: _words(
        "党的创新理论进社区宣讲 “百姓名嘴”微宣讲 红色故事分享会 "
        "理论政策院坝会 新时代好少年读书会 学习强国使用辅导"
    ),
    Category.CULTURE_SPORTS: _words(
        "社区广场舞展演 邻里文化节志愿服务 全民健身日健步走 "
        "少儿书法公益课 川剧进社区演出协助 农家书屋图书整理"
    ),
    Category.SCIENCE: _words(
        "防范电信诈骗科普讲座 青少年科学小实验 防灾减灾知识宣传 "
        "垃圾分类科普课堂 老年人智能手机培训 科普大篷车进社区"
    ),
    Category.HEALTH: _words(
        "义诊与健康咨询 无偿献血志愿服务 心肺复苏急救培训 "
        "慢病管理健康讲座 眼科义诊进社区 中医养生知识讲座"
    ),
    Category.LEGAL_AID: _words(
        "法律援助咨询日 民法典进社区宣讲 邻里纠纷调解服务 "
        "反家暴法律宣传 农民工讨薪法律咨询 青少年普法课堂"
    ),
    Category.ELDERLY_DISABLED: _words(
        "关爱空巢老人上门服务 助残志愿陪伴 重阳敬老慰问 "
        "高龄老人理发服务 残疾人康复陪护 老年食堂助餐服务"
    ),
    Category.ENVIRONMENT: _words(
        "嘉陵江岸清洁行动 小区垃圾分类督导 植树护绿志愿活动 "
        "河长制巡河护河 “无废社区”旧物回收 清理小广告志愿行动"
    ),
    Category.CONVENIENCE: _words(
        "便民维修服务日 免费磨刀修伞 家电义务维修 医保社保代办服务 爱心理发进社区 疫苗接种秩序维护"
    ),
    Category.CIVILITY: _words(
        "文明交通劝导 文明餐桌光盘行动宣传 移风易俗倡导 "
        "文明养犬宣传 背街小巷环境整治 “最美家庭”评选宣传"
    ),
}
CENTER_PLACES = ("江北嘴中央公园", "鎏嘉码头广场", "观音桥步行街")
PLACES = ("新时代文明实践站", "社区活动室", "文化广场", "小区院坝", "党群服务中心", "居民小区")
INSTITUTE_PLACES = ("新时代文明实践所", "街道文化中心", "滨江公园", "体育场", "便民服务中心")
STARTS = (  # (hour, minute, durations in minutes that end by 21:00)
    (8, 30, (90, 120, 150, 180, 240)),
    (9, 0, (90, 120, 150, 180, 240)),
    (9, 30, (90, 120, 150, 180)),
    (14, 0, (90, 120, 150, 180, 240)),
    (14, 30, (90, 120, 150, 180)),
    (15, 0, (90, 120, 180)),
    (19, 0, (90, 120)),
)
CANCEL_SIGNUP_REASONS = ("临时有事", "身体不适", "工作冲突", "家中有事", "时间冲突")
ACTIVITY_CANCEL_REASONS = ("天气原因取消", "场地临时调整", "报名人数不足")

# -- rewards (公益兑换) ----------------------------------------------------------------------

REWARD_CATALOGUE: tuple[tuple[str, str, int, int, int], ...] = (
    # name, description, cost points, stock low, stock high
    ("大米 5kg", "东北大米一袋", 300, 4, 12),
    ("食用油 5L", "非转基因菜籽油一桶", 400, 3, 10),
    ("洗衣液 2kg", "家庭装洗衣液", 150, 6, 20),
    ("毛巾", "纯棉毛巾两条", 50, 10, 40),
    ("牙膏套装", "牙膏牙刷套装", 80, 8, 30),
    ("保温杯", "不锈钢保温杯", 200, 4, 12),
    ("雨伞", "折叠晴雨伞", 120, 5, 15),
    ("环保购物袋", "可折叠帆布袋", 30, 15, 50),
    ("抽纸一提", "三层抽纸 6 包", 60, 10, 30),
    ("酱油醋组合", "酿造酱油和陈醋各一瓶", 70, 8, 25),
)
REDEMPTION_CANCEL_REASONS = ("志愿者未按时领取", "志愿者更换礼品", "志愿者申请取消")


# -- the plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    volunteers: int = 3000
    months: int = 12
    start: date = DEFAULT_START
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.volunteers < 1:
            msg = "the demo needs at least one volunteer"
            raise ValueError(msg)
        if not 1 <= self.months <= 36:
            msg = "the demo spans 1 to 36 months"
            raise ValueError(msg)


@dataclass(frozen=True)
class Step:
    """One command and the clock reading it runs at."""

    at: datetime
    command: c.Command


@dataclass
class DemoPlan:
    config: DemoConfig
    steps: list[Step]
    counts: Counter[str] = field(default_factory=Counter)

    def batches(self, size: int) -> Iterator[tuple[datetime, list[c.Command]]]:
        """Consecutive steps with the same clock reading, at most ``size`` per batch."""
        for at, group in groupby(self.steps, key=lambda step: step.at):
            commands = [step.command for step in group]
            for i in range(0, len(commands), size):
                yield at, commands[i : i + size]


def resident_id(region: str, birthday: date, sequence: int) -> str:
    """A GB 11643 identity number with its ISO 7064 MOD 11-2 check digit."""
    body = f"{region}{birthday:%Y%m%d}{sequence:03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def _add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    year = d.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass
class _Unit:
    id: UUID
    code: str
    name: str
    short: str
    tier: UnitTier
    parent: _Unit | None = None
    volunteers: list[int] = field(default_factory=list)  # indexes into the volunteer list


@dataclass
class _Person:
    id: UUID
    station: _Unit
    registered: int  # day index (-1: before the demo period)
    weight: float  # how keen: keen volunteers sign up more often


@dataclass
class _Reward:
    id: UUID
    cost: int
    stock: int


@dataclass
class _Activity:
    id: UUID
    unit: _Unit
    day: int
    publish_day: int
    category: Category
    starts_at: datetime
    ends_at: datetime
    capacity: int
    points_per_hour: int
    hour_cap: int | None  # hours
    scanned: bool  # attendance recorded by QR code (else hours entered afterwards)


MIN_REDEEM = 30  # the cheapest gift
REDEEM_CHANCE = 0.012  # per day, for a volunteer who can afford a gift


@dataclass
class _Wallets:
    balance: list[int]
    rich: set[int] = field(default_factory=set)  # who might afford a gift

    def add(self, v: int, points: int) -> None:
        self.balance[v] += points
        if self.balance[v] >= MIN_REDEEM:
            self.rich.add(v)


@dataclass(frozen=True)
class _Pending:
    id: UUID
    volunteer: int
    points: int
    reward: _Reward
    quantity: int
    cancelled: bool


class _Generator:
    """Builds a plan. Days are numbered from ``config.start`` (day −1 sets the
    network up); every command runs at its day's tick, ordered by phase."""

    def __init__(self, config: DemoConfig, document_secret: bytes, points_rule: PointsRule) -> None:
        self.config = config
        self.secret = document_secret
        self.rule = points_rule
        self.rng = Random(config.seed)
        self.tz = ZoneInfo(config.timezone)
        self.end = _add_months(config.start, config.months)
        self.days = (self.end - config.start).days
        self._keyed: list[tuple[int, int, int, c.Command]] = []  # (day, phase, seq, command)
        self._seq = 0
        self._ticks: dict[int, datetime] = {}
        self.counts: Counter[str] = Counter()  # commands by kind
        self._serial: Counter[str] = Counter()  # numbers activities, redemptions
        self.credits: dict[int, list[tuple[int, int]]] = defaultdict(list)  # day -> [(who, pts)]

    # -- ids and time ----------------------------------------------------------------

    def demo_id(self, *parts: object) -> UUID:
        return uuid5(CIVIC_NAMESPACE, "/".join(["demo", str(self.config.seed), *map(str, parts)]))

    def date_of(self, day: int) -> date:
        return self.config.start + timedelta(days=day)

    def local(self, day: int, hour: int, minute: int = 0) -> datetime:
        d = self.date_of(day)
        return datetime(d.year, d.month, d.day, hour, minute, tzinfo=self.tz).astimezone(UTC)

    def tick(self, day: int) -> datetime:
        at = self._ticks.get(day)
        if at is None:
            at = self._ticks[day] = self.local(day, TICK.hour, TICK.minute)
        return at

    def emit(self, day: int, phase: int, command: c.Command) -> None:
        """Run ``command`` at ``day``'s tick; phases order the work within a tick."""
        self._keyed.append((day, phase, self._seq, command))
        self._seq += 1
        self.counts[command.__class__.__name__] += 1

    # -- phases within a day's tick ------------------------------------------------------
    SETUP, REGISTER, SIGNUP, ATTEND, AWARD, RESTOCK, REDEEM, SETTLE = range(8)

    def build(self) -> DemoPlan:
        center, institutes, stations = self.network()
        people = self.people(stations)
        rewards = self.rewards(stations)
        self.profile_updates(people)
        self.activities(center, institutes, stations, people)
        self.awards(people)
        self.redemptions(people, rewards)
        plan_community(self, center, institutes, stations, people, self.config.seed)
        plan_orders(
            self, self.config.seed, self.config.months, center, institutes, stations, people
        )
        self._keyed.sort(key=lambda k: (k[0], k[1], k[2]))
        steps = [Step(self.tick(day), cmd) for day, _, _, cmd in self._keyed]
        counts = Counter(
            {
                "units": 1 + len(institutes) + len(stations),
                "institutes": len(institutes),
                "stations": len(stations),
                "volunteers": len(people),
                "rewards": sum(len(listed) for listed in rewards.values()),
                **{f"cmd:{k}": v for k, v in self.counts.items()},
            }
        )
        counts["activities"] = self.counts["PublishActivity"]
        return DemoPlan(self.config, steps, counts)

    # -- the network -------------------------------------------------------------------

    def network(self) -> tuple[_Unit, list[_Unit], list[_Unit]]:
        center = _Unit(
            PracticeUnit.create_id(CENTER_CODE),
            CENTER_CODE,
            CENTER_NAME,
            "江北区",
            UnitTier.CENTER,
        )
        self.emit(
            -1, self.SETUP, c.OpenUnit(code=center.code, name=center.name, tier=UnitTier.CENTER)
        )
        stems = list(COMMUNITY_STEMS)
        self.rng.shuffle(stems)
        institutes: list[_Unit] = []
        stations: list[_Unit] = []
        for i, ((place, is_town), n_stations) in enumerate(
            zip(INSTITUTES, STATIONS_PER_INSTITUTE, strict=True), start=1
        ):
            code = f"{CENTER_CODE}-{i:02d}"
            institute = _Unit(
                PracticeUnit.create_id(code),
                code,
                f"{place}新时代文明实践所",
                place,
                UnitTier.INSTITUTE,
                center,
            )
            institutes.append(institute)
            self.emit(
                -1,
                self.SETUP,
                c.OpenUnit(
                    code=code, name=institute.name, tier=UnitTier.INSTITUTE, parent_id=center.id
                ),
            )
            for j in range(1, n_stations + 1):
                stem = stems.pop()
                short = stem + ("村" if is_town else "社区")
                scode = f"{code}-{j:02d}"
                station = _Unit(
                    PracticeUnit.create_id(scode),
                    scode,
                    f"{short}新时代文明实践站",
                    short,
                    UnitTier.STATION,
                    institute,
                )
                stations.append(station)
                self.emit(
                    -1,
                    self.SETUP,
                    c.OpenUnit(
                        code=scode, name=station.name, tier=UnitTier.STATION, parent_id=institute.id
                    ),
                )
        return center, institutes, stations

    # -- volunteers ----------------------------------------------------------------------

    def people(self, stations: list[_Unit]) -> list[_Person]:
        rng = self.rng
        # some stations are busier than others
        station_weights = [rng.uniform(0.4, 1.6) for _ in stations]
        regions = [r for r, _ in REGION_CODES]
        region_weights = [w for _, w in REGION_CODES]
        seen: set[str] = set()
        people: list[_Person] = []
        for index in range(self.config.volunteers):
            station = rng.choices(stations, station_weights)[0]
            male = rng.random() < 0.45
            name = rng.choice(SURNAMES) + "".join(
                rng.choice(MALE_GIVEN if male else FEMALE_GIVEN)
                if k == 0 or rng.random() < 0.7
                else rng.choice(NEUTRAL_GIVEN)
                for k in range(rng.choice((1, 2, 2, 2)))
            )
            while True:
                age_days = rng.randint(18 * 366, 75 * 365)
                birthday = self.config.start - timedelta(days=age_days)
                sequence = rng.randrange(0, 999, 2) + (1 if male else 0)  # odd for men
                number = resident_id(rng.choices(regions, region_weights)[0], birthday, sequence)
                if number not in seen:
                    seen.add(number)
                    break
            phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
            registered = -1 if rng.random() < 0.65 else rng.randrange(self.days)
            volunteer_id = Volunteer.create_id(document_digest(self.secret, number))
            people.append(
                _Person(volunteer_id, station, registered, min(rng.paretovariate(1.6), 8.0))
            )
            station.volunteers.append(index)
            self.emit(
                registered,
                self.REGISTER,
                c.RegisterVolunteer(
                    home_station_id=station.id, name=name, phone=phone, id_number=number
                ),
            )
        return people

    def profile_updates(self, people: list[_Person]) -> None:
        for person in people:
            if self.rng.random() < 0.02:
                first = max(person.registered + 1, 0)
                if first >= self.days:
                    continue
                phone = f"1{self.rng.choice('3456789')}{self.rng.randrange(10**9):09d}"
                self.emit(
                    self.rng.randrange(first, self.days),
                    self.REGISTER,
                    c.UpdateVolunteerProfile(
                        volunteer_id=person.id, phone=phone, reason="志愿者更换手机号"
                    ),
                )

    # -- rewards -------------------------------------------------------------------------

    def rewards(self, stations: list[_Unit]) -> dict[UUID, list[_Reward]]:
        rewards: dict[UUID, list[_Reward]] = {}
        for station in stations:
            chosen = self.rng.sample(REWARD_CATALOGUE, self.rng.randint(3, 5))
            listed = []
            for name, description, cost, low, high in chosen:
                reward = _Reward(
                    self.demo_id("reward", station.code, name), cost, self.rng.randint(low, high)
                )
                listed.append(reward)
                self.emit(
                    -1,
                    self.SETUP,
                    c.ListReward(
                        reward_id=reward.id,
                        unit_id=station.id,
                        name=name,
                        description=description,
                        cost_points=cost,
                        stock=reward.stock,
                    ),
                )
            rewards[station.id] = listed
        return rewards

    # -- activities ----------------------------------------------------------------------

    def activities(
        self,
        center: _Unit,
        institutes: list[_Unit],
        stations: list[_Unit],
        people: list[_Person],
    ) -> None:
        rng = self.rng
        by_institute: dict[UUID, list[int]] = defaultdict(list)
        for station in stations:
            assert station.parent is not None  # noqa: S101 - stations have institutes
            by_institute[station.parent.id].extend(station.volunteers)
        everyone = list(range(len(people)))
        for month in range(self.config.months):
            first = (_add_months(self.config.start, month) - self.config.start).days
            last = (_add_months(self.config.start, month + 1) - self.config.start).days
            for station in stations:
                assert station.parent is not None  # noqa: S101
                rate = max(0.15, min(1.5, len(station.volunteers) / 36))
                for _ in range(self._count(rate)):
                    own = station.volunteers
                    others = by_institute[station.parent.id]
                    self.activity(station, rng.randrange(first, last), own, others, people)
            for institute in institutes:
                for _ in range(self._count(0.75)):
                    pool = by_institute[institute.id]
                    self.activity(institute, rng.randrange(first, last), pool, pool, people)
            self.activity(center, rng.randrange(first, last), everyone, everyone, people)

    def _count(self, rate: float) -> int:
        whole = int(rate)
        return whole + (1 if self.rng.random() < rate - whole else 0)

    def activity(
        self,
        unit: _Unit,
        day: int,
        own: Sequence[int],
        others: Sequence[int],
        people: list[_Person],
    ) -> None:
        plan = self.publish(unit, day)
        enrolled = self.sign_ups(plan, own, others, people)
        if self.rng.random() < 0.02:  # called off the evening before
            self.emit(
                day - 1,
                self.SIGNUP,
                c.CancelActivity(
                    activity_id=plan.id, reason=self.rng.choice(ACTIVITY_CANCEL_REASONS)
                ),
            )
            return
        for v in enrolled:
            if self.rng.random() < 0.9:  # one in ten does not come
                self.attend(plan, v, people[v].id)
        if self.rng.random() < 0.9:
            self.emit(day, self.ATTEND, c.CloseActivity(activity_id=plan.id))

    def publish(self, unit: _Unit, day: int) -> _Activity:
        rng = self.rng
        self._serial["activity"] += 1
        category = rng.choice(list(Category))
        hour, minute, durations = rng.choice(STARTS)
        duration = rng.choice(durations)
        starts_at = self.local(day, hour, minute)
        if unit.tier == UnitTier.STATION:
            capacity = rng.choice((5, 6, 8, 10, 12, 15, 20))
            location = unit.short + rng.choice(PLACES)
        elif unit.tier == UnitTier.INSTITUTE:
            capacity = rng.choice((15, 20, 30, 40))
            location = unit.short + rng.choice(INSTITUTE_PLACES)
        else:
            capacity = rng.choice((30, 50, 80))
            location = rng.choice(CENTER_PLACES)
        plan = _Activity(
            id=self.demo_id("activity", self._serial["activity"]),
            unit=unit,
            day=day,
            publish_day=max(-1, day - rng.randint(3, 14)),
            category=category,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=duration),
            capacity=capacity,
            points_per_hour=rng.choice((8, 10, 10, 10, 12, 15)),
            hour_cap=rng.choice((None, None, None, 2, 3)),
            scanned=rng.random() < 0.8,
        )
        self.emit(
            plan.publish_day,
            self.SIGNUP,
            c.PublishActivity(
                activity_id=plan.id,
                unit_id=unit.id,
                title=rng.choice(TITLES[category]),
                category=category,
                starts_at=plan.starts_at,
                ends_at=plan.ends_at,
                location=location,
                capacity=capacity,
                points_per_hour=plan.points_per_hour,
                hour_cap=Decimal(plan.hour_cap) if plan.hour_cap else None,
                description=f"{unit.name}组织的志愿服务活动，欢迎报名参加。",
            ),
        )
        return plan

    def sign_ups(
        self, plan: _Activity, own: Sequence[int], others: Sequence[int], people: list[_Person]
    ) -> list[int]:
        """Emit sign-ups and cancellations (sign-up closes at the start, so the last
        tick is the evening before); return who is enrolled when it starts, in the
        order the domain will have them (waitlisted volunteers move up in turn)."""
        rng = self.rng
        last = plan.day - 1
        eligible = [v for v in own if people[v].registered <= last]
        demand = round(plan.capacity * rng.uniform(0.5, 1.35))
        chosen = self._weighted_sample(eligible, people, min(demand, len(eligible)))
        if plan.unit.tier == UnitTier.STATION:  # a few come from neighbouring stations
            nearby = rng.sample(others, min(len(others), 12))
            outsiders = [v for v in nearby if people[v].registered <= last and v not in chosen]
            extra = self._weighted_sample(outsiders, people, 3)
            chosen += extra[: max(0, demand - len(chosen)) // 3 + rng.randint(0, 1)]
        actions: list[tuple[int, int, bool, int]] = []  # (day, order, is a cancel, who)
        for order, v in enumerate(chosen):
            signup_day = rng.randint(max(plan.publish_day, people[v].registered), last)
            actions.append((signup_day, order, False, v))
            if rng.random() < 0.07:
                actions.append((rng.randint(signup_day, last), len(chosen) + order, True, v))
        actions.sort()
        enrolled: list[int] = []
        waitlist: list[int] = []
        for action_day, _, cancel, v in actions:
            if not cancel:
                (enrolled if len(enrolled) < plan.capacity else waitlist).append(v)
                command: c.Command = c.SignUp(activity_id=plan.id, volunteer_id=people[v].id)
            else:
                if v in enrolled:
                    enrolled.remove(v)
                    if waitlist:
                        enrolled.append(waitlist.pop(0))
                else:
                    waitlist.remove(v)
                command = c.CancelSignup(
                    activity_id=plan.id,
                    volunteer_id=people[v].id,
                    reason=rng.choice(CANCEL_SIGNUP_REASONS),
                )
            self.emit(action_day, self.SIGNUP, command)
        return enrolled

    def attend(self, plan: _Activity, v: int, who: UUID) -> None:
        """Check in and out by QR code (most activities) or have the organizer enter
        the hours afterwards; then the organizer confirms, which awards the points."""
        rng = self.rng
        day = plan.day
        cap_minutes = plan.hour_cap * 60 if plan.hour_cap else None
        hours: Decimal | None = None
        if plan.scanned:
            check_in = plan.starts_at + timedelta(minutes=rng.randint(-30, 15))
            check_out = plan.ends_at + timedelta(minutes=rng.randint(-25, 15))
            self.emit(
                day, self.ATTEND, c.CheckIn(activity_id=plan.id, volunteer_id=who, at=check_in)
            )
            self.emit(
                day, self.ATTEND, c.CheckOut(activity_id=plan.id, volunteer_id=who, at=check_out)
            )
            if rng.random() < 0.02:
                return  # the organizer never confirmed
            minutes = int((check_out - check_in).total_seconds() // 60)
            if cap_minutes is not None and minutes > cap_minutes:
                minutes, hours = cap_minutes, Decimal(cap_minutes) / 60
            source = HoursSource.CHECKIN
        else:
            duration = int((plan.ends_at - plan.starts_at).total_seconds() // 60)
            minutes = (duration // 30) * 30 - rng.choice((0, 0, 30))
            if cap_minutes is not None:
                minutes = min(minutes, cap_minutes)
            minutes = max(minutes, 30)
            hours = Decimal(minutes) / 60
            source = HoursSource.ORGANIZER
        self.emit(
            day,
            self.ATTEND,
            c.ConfirmService(
                activity_id=plan.id,
                volunteer_id=who,
                hours=hours,
                people_served=(
                    rng.randint(0, 25) if plan.category == Category.ELDERLY_DISABLED else 0
                ),
                note="" if source == HoursSource.CHECKIN else "组织者补录时长",
            ),
        )
        points = self.rule.points_for(
            minutes=minutes,
            points_per_hour=plan.points_per_hour,
            source=source,
            category=plan.category,
        )
        self.credits[day].append((v, points))

    def _weighted_sample(self, pool: Sequence[int], people: list[_Person], k: int) -> list[int]:
        """``k`` distinct volunteers, keen ones more likely (Efraimidis–Spirakis)."""
        if k <= 0 or not pool:
            return []
        rng = self.rng
        keyed = ((rng.random() ** (1 / people[v].weight), v) for v in pool)
        return [v for _, v in heapq.nlargest(k, keyed)]

    # -- manual awards (文明户评比) ----------------------------------------------------------

    def awards(self, people: list[_Person]) -> None:
        rng = self.rng
        for month in range(self.config.months):
            if (month + 1) % 3 and month != self.config.months - 1:
                continue
            day = (_add_months(self.config.start, month + 1) - self.config.start).days - 1
            d = self.date_of(day)
            quarter = (d.month - 1) // 3 + 1
            for index, person in enumerate(people):
                if person.registered >= day or rng.random() >= 0.05:
                    continue
                title, points = rng.choice(
                    (("五星文明户", 100), ("四星文明户", 60), ("三星文明户", 30), ("最美家庭", 80))
                )
                self.emit(
                    day,
                    self.AWARD,
                    c.AwardPoints(
                        volunteer_id=person.id,
                        points=points,
                        reason=f"{d.year}年第{quarter}季度文明户评比：{title}",
                        award_id=self.demo_id("award", d.isoformat(), index),
                    ),
                )
                self.credits[day].append((index, points))

    # -- redemptions ---------------------------------------------------------------------

    def redemptions(self, people: list[_Person], rewards: dict[UUID, list[_Reward]]) -> None:
        """Walk the days keeping every passbook's balance and every reward's stock as
        the domain will, so each redemption is affordable and in stock."""
        wallet = _Wallets([0] * len(people))
        settle: dict[int, list[_Pending]] = defaultdict(list)
        for day in range(self.days):
            for v, points in self.credits.get(day, ()):
                wallet.add(v, points)
            if self.date_of(day).day == 1:  # the first of the month: restock what runs low
                self.restock(day, rewards)
            for v in sorted(wallet.rich):
                if wallet.balance[v] < MIN_REDEEM:
                    wallet.rich.discard(v)
                elif self.rng.random() < REDEEM_CHANCE:
                    pending = self.redeem(day, people[v], v, wallet, rewards)
                    if pending is not None:
                        settle[day + self.rng.randint(1, 10)].append(pending)
            for pending in settle.pop(day, ()):
                self.settle(day, pending, wallet)

    def restock(self, day: int, rewards: dict[UUID, list[_Reward]]) -> None:
        for listed in rewards.values():
            for reward in listed:
                if reward.stock < 3:
                    quantity = self.rng.randint(8, 20)
                    reward.stock += quantity
                    self.emit(
                        day,
                        self.RESTOCK,
                        c.RestockReward(reward_id=reward.id, quantity=quantity, reason="月度补货"),
                    )

    def redeem(
        self,
        day: int,
        person: _Person,
        v: int,
        wallet: _Wallets,
        rewards: dict[UUID, list[_Reward]],
    ) -> _Pending | None:
        rng = self.rng
        balance = wallet.balance[v]
        affordable = [r for r in rewards[person.station.id] if r.cost <= balance and r.stock > 0]
        if not affordable:
            return None
        reward = max(affordable, key=lambda r: r.cost + rng.random() * 150)
        two = reward.cost * 2 <= balance and reward.stock >= 2 and rng.random() < 0.15
        quantity = 2 if two else 1
        self._serial["redemption"] += 1
        pending = _Pending(
            self.demo_id("redemption", self._serial["redemption"]),
            v,
            reward.cost * quantity,
            reward,
            quantity,
            cancelled=rng.random() < 0.12,
        )
        wallet.balance[v] -= pending.points
        reward.stock -= quantity
        self.emit(
            day,
            self.REDEEM,
            c.Redeem(
                redemption_id=pending.id,
                volunteer_id=person.id,
                reward_id=reward.id,
                quantity=quantity,
            ),
        )
        return pending

    def settle(self, day: int, pending: _Pending, wallet: _Wallets) -> None:
        """Most gifts are picked up; some redemptions are cancelled and refunded."""
        if pending.cancelled:
            wallet.add(pending.volunteer, pending.points)
            pending.reward.stock += pending.quantity
            reason = self.rng.choice(REDEMPTION_CANCEL_REASONS)
            self.emit(day, self.SETTLE, c.CancelRedemption(redemption_id=pending.id, reason=reason))
        else:
            self.emit(
                day, self.SETTLE, c.FulfilRedemption(redemption_id=pending.id, note="已现场领取")
            )


def generate(
    config: DemoConfig | None = None,
    *,
    document_secret: bytes,
    points_rule: PointsRule | None = None,
) -> DemoPlan:
    """The demo's whole history as timed commands. Pure and deterministic: the same
    config, secret and points rule give the same plan."""
    return _Generator(config or DemoConfig(), document_secret, points_rule or PointsRule()).build()


# -- loading -----------------------------------------------------------------------------


@dataclass
class LoadReport:
    commands: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Step, str]] = field(default_factory=list)  # the first few, to show
    events: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _fixed_clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def load(
    app: CivicApplication,
    plan: DemoPlan,
    *,
    batch_size: int = 1000,
    principal: Principal = SYSTEM,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Execute the plan in batches (one transaction each) with the application's
    clock set to each batch's time; the clock is restored afterwards.

    ``progress`` is called with the number of commands each batch ran.
    """
    report = LoadReport()
    original_clock = app.clock
    head_before = app.head()
    started = time.perf_counter()
    try:
        for at, commands in plan.batches(batch_size):
            app.clock = _fixed_clock(at)
            outcomes = app.execute_batch([BatchItem(cmd) for cmd in commands], principal)
            for cmd, outcome in zip(commands, outcomes, strict=True):
                if outcome.error is not None:
                    code = getattr(outcome.error, "code", type(outcome.error).__name__)
                    report.failed[f"{cmd.__class__.__name__}:{code}"] += 1
                    if len(report.failures) < 20:
                        report.failures.append((Step(at, cmd), str(outcome.error)))
            report.commands += len(commands)
            if progress is not None:
                progress(len(commands))
    finally:
        app.clock = original_clock
    report.seconds = time.perf_counter() - started
    report.events = app.head() - head_before
    return report
