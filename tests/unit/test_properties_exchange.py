"""The points exchange at the service layer (hypothesis stateful): random sequences of
commands through ``CivicApplication.execute`` and ``execute_batch``, by principals of
every role, on a small network (a center, an institute, two stations, three
volunteers, a reward per station with a little stock, an activity whose services are
confirmed and corrected).

A model predicts every outcome: which commands succeed (and how many events each
records), and the exact refusal code of the others. After every step the event store
is read back, independently of the aggregates, and must agree with the model and
with the queries: no balance below zero at any point of the history, the balance is
the sum of the lots and awarded − deducted − redeemed + refunded − expired − debited;
no stock below zero, and stock + open reservations + fulfilled = everything stocked;
each redemption reserves once and is refunded and released once at most (exactly
when cancelled, to the lots it spent); a refusal records nothing; a retried
idempotency key records nothing and answers what it answered the first time.

The plain tests at the end pin single edges: cancel after fulfil, fulfil after
cancel, cancelling twice, delisted rewards, suspended volunteers, racing for the last
item in one batch, and client-chosen ids that another aggregate already has.
"""

# ruff: noqa: PLR0911 - each planner mirrors its handler: one return per refusal

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from domain.base import name_id
from domain.errors import DomainError
from domain.passbook import Passbook
from domain.points import ExpiryKind, ExpiryPolicy
from domain.redemptions import Redemption
from domain.rewards import Reward
from infra.settings import Settings
from services import application as application_module
from services import commands as c
from services import queries as q
from services.application import BatchItem, CivicApplication, ItemOutcome
from services.bootstrap import build_application
from services.principals import SYSTEM, ForbiddenError, Principal, Role
from tests.conftest import resident_id
from tests.unit.property_machine import CommandMachine, Keyed, can_write, code_of, hours
from tests.unit.property_settings import PROPERTY_SETTINGS

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POINTS_PER_HOUR = 20
ACTIVITY_MINUTES = 180
ORGANIZER_FACTOR = Fraction(4, 5)  # services are confirmed with organizer-entered hours
UNKNOWN = UUID("00000000-0000-4000-8000-00000000dead")  # an id nothing has
Spend = list[tuple[UUID, int]]


def points_for(minutes: int) -> int:
    return int(Fraction(minutes, 60) * POINTS_PER_HOUR * ORGANIZER_FACTOR)


# -- the model ------------------------------------------------------------------------


@dataclass
class MLot:
    points: int
    remaining: int
    awarded_at: datetime
    expires_at: datetime | None


@dataclass
class MPassbook:
    volunteer_id: UUID
    home: list[UUID]
    lots: dict[UUID, MLot] = field(default_factory=dict)
    sources: set[UUID] = field(default_factory=set)
    earned: int = 0
    suspended: bool = False
    confirmed_minutes: int | None = None  # the service at the network's activity
    service_at: datetime | None = None  # when it was confirmed (its award's time)

    @property
    def id(self) -> UUID:
        return Passbook.create_id(self.volunteer_id)

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots.values())

    def open_lots(self) -> list[UUID]:
        return [
            lot_id
            for lot_id, lot in sorted(
                self.lots.items(), key=lambda item: (item[1].awarded_at, str(item[0]))
            )
            if lot.remaining > 0
        ]

    def _due(self, lot: MLot, now: datetime) -> bool:
        return lot.expires_at is not None and lot.expires_at <= now

    def due(self, now: datetime) -> Spend:
        return [
            (lot_id, self.lots[lot_id].remaining)
            for lot_id in self.open_lots()
            if self._due(self.lots[lot_id], now)
        ]

    def usable(self, now: datetime) -> int:
        return self.balance - sum(p for _, p in self.due(now))

    def plan(self, points: int, now: datetime) -> Spend:
        """First in, first out, over the lots not yet due to expire."""
        spent: Spend = []
        left = points
        for lot_id in self.open_lots():
            lot = self.lots[lot_id]
            if self._due(lot, now) or left == 0:
                continue
            take = min(lot.remaining, left)
            spent.append((lot_id, take))
            left -= take
        assert left == 0, "planned beyond the usable balance"
        return spent

    def award(self, source: UUID, points: int, at: datetime, policy: ExpiryPolicy) -> None:
        self.sources.add(source)
        lot_id = name_id("lot", self.id, source)
        self.lots[lot_id] = MLot(points, points, at, policy.expires_at(at))

    def expire(self, now: datetime) -> int:
        """Expire what is due; the number of events that records (0 or 1)."""
        due = self.due(now)
        self.apply(due, -1)
        return 1 if due else 0

    def apply(self, spend: Spend, sign: int) -> None:
        for lot_id, points in spend:
            self.lots[lot_id].remaining += sign * points


@dataclass
class MReward:
    lineage: list[UUID]
    cost: int
    stock: int
    stocked: int  # listed + every restock
    delisted: bool = False


@dataclass
class MRedemption:
    volunteer_id: UUID
    reward_id: UUID
    quantity: int
    points: int
    spent: Spend
    lineage: list[UUID]
    status: str = "requested"


@dataclass
class MCorrection:
    volunteer_id: UUID
    minutes: int
    status: str = "requested"


@dataclass
class Expect:
    """What a command should do: its refusal code, or how many events it records and
    what it changes in the model."""

    error: str | None = None
    events: int = 0
    apply: Callable[[], None] = lambda: None


def refused(code: str) -> Expect:
    return Expect(error=code)


# -- the store, read back without the aggregates ----------------------------------------


def spend(stored: Any) -> Spend:
    """A stored spend ((lot, points) pairs, as JSON arrays) as the model has it."""
    return [(lot_id, int(points)) for lot_id, points in stored]


@dataclass
class Ledger:
    """Every passbook's lots and totals, every reward's stock and every redemption's
    debits and releases, folded from the stored events in store order."""

    lots: dict[UUID, dict[UUID, list[int]]] = field(default_factory=dict)  # [points, remaining]
    totals: dict[UUID, dict[str, int]] = field(default_factory=dict)
    stock: dict[UUID, int] = field(default_factory=dict)
    stocked: dict[UUID, int] = field(default_factory=dict)
    redeemed: dict[UUID, list[Spend]] = field(default_factory=dict)
    refunded: dict[UUID, list[Spend]] = field(default_factory=dict)
    reserved: dict[UUID, list[int]] = field(default_factory=dict)
    released: dict[UUID, list[int]] = field(default_factory=dict)
    status: dict[UUID, str] = field(default_factory=dict)
    cursor: int = 0

    def balance(self, passbook_id: UUID) -> int:
        t = self.totals[passbook_id]
        return (t["awarded"] - t["deducted"] - t["redeemed"] + t["refunded"] - t["expired"]) - t[
            "debited"
        ]

    def _spend(self, passbook_id: UUID, spend: Spend, sign: int) -> None:
        for lot_id, points in spend:
            lot = self.lots[passbook_id][lot_id]
            lot[1] += sign * points
            assert 0 <= lot[1] <= lot[0], f"lot {lot_id} at {lot[1]} of {lot[0]}"

    def follow(self, app: CivicApplication) -> list[Any]:
        """Fold the events recorded since the last call; returns them."""
        new = app.recorder.select_notifications(self.cursor + 1, 10_000)
        events = [app.mapper.to_domain_event(n) for n in new]
        for n, event in zip(new, events, strict=True):
            self.cursor = n.id
            self._fold(event)
        return events

    def _fold(self, e: Any) -> None:  # noqa: PLR0912 - one branch per event type
        pid = e.originator_id
        if isinstance(e, Passbook.Opened):
            self.lots[pid] = {}
            self.totals[pid] = dict.fromkeys(
                ("awarded", "deducted", "redeemed", "refunded", "expired", "debited"), 0
            )
        elif isinstance(e, Passbook.PointsAwarded):
            assert e.lot_id not in self.lots[pid], "a lot awarded twice"
            self.lots[pid][e.lot_id] = [e.points, e.points]
            self.totals[pid]["awarded"] += e.points
        elif isinstance(e, Passbook.PointsDeducted):
            self._spend(pid, e.spent, -1)
            self.totals[pid]["deducted"] += e.points
            assert sum(p for _, p in e.spent) == e.points
        elif isinstance(e, Passbook.PointsRedeemed):
            self._spend(pid, e.spent, -1)
            self.totals[pid]["redeemed"] += e.points
            self.redeemed.setdefault(e.redemption_id, []).append(spend(e.spent))
            assert sum(p for _, p in e.spent) == e.points
        elif isinstance(e, Passbook.RedemptionRefunded):
            self._spend(pid, e.restored, +1)
            self.totals[pid]["refunded"] += e.points
            self.refunded.setdefault(e.redemption_id, []).append(spend(e.restored))
        elif isinstance(e, Passbook.PointsExpired):
            self._spend(pid, e.expired, -1)
            self.totals[pid]["expired"] += e.points
        elif isinstance(e, Passbook.CorrectionDebited):
            self._spend(pid, e.spent, -1)
            self.totals[pid]["debited"] += e.points
        elif isinstance(e, Reward.Listed):
            self.stock[pid] = self.stocked[pid] = e.stock
        elif isinstance(e, Reward.Restocked):
            self.stock[pid] += e.quantity
            self.stocked[pid] += e.quantity
        elif isinstance(e, Reward.StockReserved):
            self.stock[pid] -= e.quantity
            self.reserved.setdefault(e.redemption_id, []).append(e.quantity)
        elif isinstance(e, Reward.StockReleased):
            self.stock[pid] += e.quantity
            self.released.setdefault(e.redemption_id, []).append(e.quantity)
        elif isinstance(e, Redemption.Requested):
            self.status[pid] = "requested"
        elif isinstance(e, Redemption.Fulfilled):
            self.status[pid] = "fulfilled"
        elif isinstance(e, Redemption.Cancelled):
            self.status[pid] = "cancelled"
        if pid in self.totals:  # never below zero, at any point of the history
            assert self.balance(pid) >= 0, f"passbook {pid} went to {self.balance(pid)}"
            assert self.balance(pid) == sum(lot[1] for lot in self.lots[pid].values())
        if pid in self.stock:
            assert self.stock[pid] >= 0, f"reward {pid} went to {self.stock[pid]}"


# -- the machine ----------------------------------------------------------------------

# indexes, mostly of things that exist: 9 (20 for redemptions and corrections) is an id
# nothing has; principals 0-4 are the admin, 5-6 station 1's key, 7 station 2's key,
# 8 the institute's unit admin, 9 an auditor
volunteer_ix = st.integers(min_value=0, max_value=9)
reward_ix = st.integers(min_value=0, max_value=9)
principal_ix = st.integers(min_value=0, max_value=9)
pick_ix = st.integers(min_value=0, max_value=20)
quarter_hours = st.integers(min_value=1, max_value=13).map(lambda n: 15 * n)  # to 195 minutes
BATCH_KINDS = ("award", "adjust", "redeem", "cancel", "fulfil", "restock", "expire", "confirm")
batch_item = st.tuples(
    st.sampled_from(BATCH_KINDS),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=80),
    st.sampled_from(["none", "fresh", "repeat-same", "repeat-different", "stored"]),
)


class ExchangeMachine(CommandMachine):
    def __init__(self) -> None:
        super().__init__("civic-exchange-")
        self.redemptions: dict[UUID, MRedemption] = {}
        self.corrections: dict[UUID, MCorrection] = {}
        self.award_ids: list[UUID] = []
        self.ledger = Ledger()

    # -- set-up ------------------------------------------------------------------------

    @initialize(
        expiry_days=st.one_of(st.none(), st.integers(min_value=3, max_value=40)),
        costs=st.tuples(st.integers(1, 25), st.integers(1, 25)),
        stocks=st.tuples(st.integers(0, 4), st.integers(0, 4)),
        starting=st.lists(st.integers(0, 60), min_size=3, max_size=3),
        served=st.one_of(st.none(), quarter_hours),
    )
    def open_network(
        self,
        expiry_days: int | None,
        costs: tuple[int, int],
        stocks: tuple[int, int],
        starting: list[int],
        served: int | None,
    ) -> None:
        self.now = NOW
        settings = Settings(
            data_dir=self.tmp,
            expiry=ExpiryKind.NEVER if expiry_days is None else ExpiryKind.DAYS,
            expiry_days=expiry_days,
            organizer_hours_factor="4/5",
        )
        self.policy = settings.expiry_policy
        app = self.app = build_application(settings)
        app.clock = lambda: self.now

        def unit(code: str, tier: str, parent: UUID | None = None) -> UUID:
            cmd = c.OpenUnit(code=code, name=code, tier=tier, parent_id=parent)
            return UUID(app.execute(cmd, SYSTEM).result["unit_id"])

        center = unit("c", "center")
        institute = unit("i", "institute", center)
        s1, s2 = unit("s1", "station", institute), unit("s2", "station", institute)
        self.lineage = {s1: [center, institute, s1], s2: [center, institute, s2]}
        self.principals = [
            SYSTEM,
            Principal("k-s1", "s1 kiosk", Role.SERVICE, s1),
            Principal("k-s2", "s2 kiosk", Role.SERVICE, s2),
            Principal("k-i", "institute admin", Role.UNIT_ADMIN, institute),
            Principal("k-a", "auditor", Role.AUDITOR),
        ]
        self.passbooks: list[MPassbook] = []
        for n, station in enumerate((s1, s1, s2)):
            register = c.RegisterVolunteer(
                home_station_id=station,
                name=f"志愿者{n}",
                phone="13800000000",
                id_number=resident_id(900 + n),
            )
            vid = UUID(app.execute(register, SYSTEM).result["volunteer_id"])
            self.passbooks.append(MPassbook(vid, self.lineage[station]))
        self.rewards: dict[UUID, MReward] = {}
        self.reward_ids: list[UUID] = []
        for station, cost, stock in zip((s1, s2), costs, stocks, strict=True):
            listing = c.ListReward(unit_id=station, name="大米", cost_points=cost, stock=stock)
            rid = UUID(app.execute(listing, SYSTEM).result["reward_id"])
            self.rewards[rid] = MReward(self.lineage[station], cost, stock, stock)
            self.reward_ids.append(rid)
        publish = c.PublishActivity(
            unit_id=s1,
            title="关爱空巢老人",
            category="elderly_disabled",
            starts_at=NOW + timedelta(hours=1),
            ends_at=NOW + timedelta(hours=1, minutes=ACTIVITY_MINUTES),
            location="社区服务中心",
            capacity=5,
            points_per_hour=POINTS_PER_HOUR,
        )
        self.activity_id = UUID(app.execute(publish, SYSTEM).result["activity_id"])
        self.activity_lineage = self.lineage[s1]
        for pb in self.passbooks:
            app.execute(
                c.SignUp(activity_id=self.activity_id, volunteer_id=pb.volunteer_id), SYSTEM
            )
        self.now = NOW + timedelta(hours=5)  # the activity is over: services can be confirmed
        self.ledger.follow(app)
        for pb, points in zip(self.passbooks, starting, strict=True):
            if points:
                award_id = self.fresh("award")
                command = c.AwardPoints(
                    volunteer_id=pb.volunteer_id, points=points, reason="开户", award_id=award_id
                )
                self.run(
                    command, SYSTEM, self.plan_award(SYSTEM, pb.volunteer_id, points, award_id)
                )

    # -- helpers -------------------------------------------------------------------------

    def principal(self, n: int) -> Principal:
        return self.principals[(0, 0, 0, 0, 0, 1, 1, 2, 3, 4)[n % 10]]

    def volunteer(self, n: int) -> UUID:
        return UNKNOWN if n % 10 == 9 else self.passbooks[n % 10 % 3].volunteer_id

    def book(self, vid: UUID) -> MPassbook | None:
        return next((pb for pb in self.passbooks if pb.volunteer_id == vid), None)

    def reward(self, n: int) -> UUID:
        return UNKNOWN if n % 10 == 9 else self.reward_ids[-1 - n % 10 % len(self.reward_ids)]

    def redemption(self, n: int) -> UUID:
        ids = list(self.redemptions)  # the latest first
        return UNKNOWN if n % 21 == 20 or not ids else ids[-1 - n % 21 % len(ids)]

    def correction(self, n: int) -> UUID:
        ids = list(self.corrections)
        return UNKNOWN if n % 21 == 20 or not ids else ids[-1 - n % 21 % len(ids)]

    # -- what each command should do -------------------------------------------------------

    def plan_award(self, p: Principal, vid: UUID, points: int, award_id: UUID) -> Expect:
        pb = self.book(vid)
        if pb is None:
            return refused("not-found")
        if not can_write(p, pb.home):
            return refused("forbidden")
        if award_id in pb.sources:
            return refused("already-awarded")
        return Expect(events=1, apply=lambda: pb.award(award_id, points, self.now, self.policy))

    def plan_adjust(self, p: Principal, vid: UUID, delta: int, adjustment_id: UUID) -> Expect:
        pb = self.book(vid)
        if p.role != Role.ADMIN:
            return refused("forbidden")
        if pb is None:
            return refused("not-found")
        if delta == 0:
            return refused("bad-points")
        if adjustment_id in pb.sources:
            return refused("already-awarded")
        if delta > 0:
            return Expect(
                events=1, apply=lambda: pb.award(adjustment_id, delta, self.now, self.policy)
            )
        if pb.usable(self.now) < -delta:
            return refused("insufficient-points")
        plan = pb.plan(-delta, self.now)

        def deduct() -> None:
            pb.expire(self.now)
            pb.apply(plan, -1)
            pb.sources.add(adjustment_id)

        return Expect(events=1 + (1 if pb.due(self.now) else 0), apply=deduct)

    def plan_expire(self, p: Principal, vid: UUID) -> Expect:
        pb = self.book(vid)
        if pb is None:
            return refused("not-found")
        if not can_write(p, pb.home):
            return refused("forbidden")
        if not pb.due(self.now):
            return refused("nothing-to-expire")

        def expire() -> None:
            pb.expire(self.now)

        return Expect(events=1, apply=expire)

    def plan_list(self, p: Principal, station: UUID, cost: int, stock: int, rid: UUID) -> Expect:
        if not can_write(p, self.lineage[station]):
            return refused("forbidden")

        def list_() -> None:
            self.rewards[rid] = MReward(self.lineage[station], cost, stock, stock)
            self.reward_ids.append(rid)

        return Expect(events=1, apply=list_)

    def plan_restock(self, p: Principal, rid: UUID, quantity: int) -> Expect:
        reward = self.rewards.get(rid)
        if reward is None:
            return refused("not-found")
        if not can_write(p, reward.lineage):
            return refused("forbidden")
        if reward.delisted:
            return refused("delisted")

        def restock() -> None:
            reward.stock += quantity
            reward.stocked += quantity

        return Expect(events=1, apply=restock)

    def plan_delist(self, p: Principal, rid: UUID) -> Expect:
        reward = self.rewards.get(rid)
        if reward is None:
            return refused("not-found")
        if not can_write(p, reward.lineage):
            return refused("forbidden")
        if reward.delisted:
            return refused("delisted")
        return Expect(events=1, apply=lambda: setattr(reward, "delisted", True))

    def plan_redeem(
        self, p: Principal, vid: UUID, rid: UUID, quantity: int, redemption_id: UUID
    ) -> Expect:
        reward = self.rewards.get(rid)
        pb = self.book(vid)
        if reward is None:
            return refused("not-found")
        if not can_write(p, reward.lineage):
            return refused("forbidden")
        if pb is None:
            return refused("not-found")
        if not can_write(p, pb.home):  # another subtree's passbook, even at one's own reward
            return refused("forbidden")
        if redemption_id in self.redemptions:
            return refused("redemption-exists")
        if pb.suspended:
            return refused("volunteer-suspended")
        if reward.delisted:
            return refused("delisted")
        if quantity > reward.stock:
            return refused("out-of-stock")
        points = reward.cost * quantity
        if pb.usable(self.now) < points:
            return refused("insufficient-points")
        plan = pb.plan(points, self.now)
        expiring = 1 if pb.due(self.now) else 0

        def redeem() -> None:
            pb.expire(self.now)
            pb.apply(plan, -1)
            reward.stock -= quantity
            self.redemptions[redemption_id] = MRedemption(
                vid, rid, quantity, points, plan, reward.lineage
            )

        return Expect(events=3 + expiring, apply=redeem)

    def plan_fulfil(self, p: Principal, redemption_id: UUID) -> Expect:
        r = self.redemptions.get(redemption_id)
        if r is None:
            return refused("not-found")
        if not can_write(p, r.lineage):
            return refused("forbidden")
        if r.status != "requested":
            return refused("not-open")
        return Expect(events=1, apply=lambda: setattr(r, "status", "fulfilled"))

    def plan_cancel(self, p: Principal, redemption_id: UUID) -> Expect:
        r = self.redemptions.get(redemption_id)
        if r is None:
            return refused("not-found")
        if not can_write(p, r.lineage):
            return refused("forbidden")
        if r.status != "requested":
            return refused("not-open")
        pb = self.book(r.volunteer_id)
        assert pb is not None

        def cancel() -> None:
            pb.apply(r.spent, +1)  # back to the very lots, even ones past their expiry
            self.rewards[r.reward_id].stock += r.quantity
            r.status = "cancelled"

        return Expect(events=3, apply=cancel)

    def plan_status(self, p: Principal, vid: UUID, suspend: bool) -> Expect:
        pb = self.book(vid)
        if pb is None:
            return refused("not-found")
        if not can_write(p, pb.home):
            return refused("forbidden")
        if pb.suspended == suspend:
            return refused("already-suspended" if suspend else "not-suspended")
        return Expect(events=1, apply=lambda: setattr(pb, "suspended", suspend))

    def plan_confirm(self, p: Principal, vid: UUID, minutes: int) -> Expect:
        if not can_write(p, self.activity_lineage):
            return refused("forbidden")
        pb = self.book(vid)
        if pb is None:
            return refused("not-found")
        if pb.confirmed_minutes is not None:
            return refused("already-confirmed")
        if minutes > ACTIVITY_MINUTES:
            return refused("hours-exceed-attendance")

        def confirm() -> None:
            pb.confirmed_minutes, pb.service_at = minutes, self.now
            source = name_id("confirmation", self.activity_id, vid)
            pb.award(source, points_for(minutes), self.now, self.policy)
            pb.earned += points_for(minutes)

        return Expect(events=2, apply=confirm)

    def plan_request_correction(
        self, p: Principal, vid: UUID, minutes: int, correction_id: UUID
    ) -> Expect:
        pb = self.book(vid)
        if pb is None:
            return refused("not-found")
        if not (can_write(p, self.activity_lineage) or can_write(p, pb.home)):
            return refused("forbidden")
        if correction_id in self.corrections:
            return refused("correction-exists")
        if pb.confirmed_minutes is None:
            return refused("not-confirmed")
        if minutes > ACTIVITY_MINUTES:
            return refused("hours-exceed-attendance")
        if minutes == pb.confirmed_minutes:
            return refused("unchanged")
        return Expect(
            events=1,
            apply=lambda: self.corrections.__setitem__(correction_id, MCorrection(vid, minutes)),
        )

    def plan_decide(self, p: Principal, correction_id: UUID, approve: bool) -> Expect:
        corr = self.corrections.get(correction_id)
        if corr is None:
            return refused("not-found")
        if p.role not in (Role.ADMIN, Role.UNIT_ADMIN) or not can_write(p, self.activity_lineage):
            return refused("forbidden")
        pb = self.book(corr.volunteer_id)
        assert pb is not None and pb.confirmed_minutes is not None
        # approval checks the record before the request's state: a request whose minutes
        # the record already says (it was approved, or another one said so) is unchanged
        if approve and corr.minutes == pb.confirmed_minutes:
            return refused("unchanged")
        if corr.status != "requested":
            return refused("correction-decided")
        if not approve:
            return Expect(events=1, apply=lambda: setattr(corr, "status", "rejected"))
        delta = points_for(corr.minutes) - points_for(pb.confirmed_minutes)
        service_at = pb.service_at
        assert service_at is not None
        events = 2
        plan: Spend = []
        if delta > 0:
            events += 1
        elif delta < 0:
            if pb.usable(self.now) < -delta:
                return refused("insufficient-points")
            plan = pb.plan(-delta, self.now)
            events += 1 + (1 if pb.due(self.now) else 0)

        def decide() -> None:
            corr.status = "approved"
            pb.confirmed_minutes = corr.minutes
            pb.earned += delta
            if delta > 0:  # back-dated to the service: its period, its expiry
                pb.award(correction_id, delta, service_at, self.policy)
            elif delta < 0:
                pb.expire(self.now)
                pb.apply(plan, -1)
                pb.sources.add(correction_id)

        return Expect(events=events, apply=decide)

    # -- running commands ---------------------------------------------------------------

    def run(self, command: c.Command, p: Principal, expect: Expect, key: str | None = None) -> None:
        app = self.application
        head = app.head()
        try:
            result = app.execute(command, p, key)
        except (DomainError, ForbiddenError) as exc:
            assert expect.error == code_of(exc), f"{command!r} refused {code_of(exc)}: {exc}"
            assert app.head() == head, "a refused command recorded events"
            return
        assert expect.error is None, f"{command!r} succeeded, expected {expect.error}"
        assert not result.replayed
        assert app.head() == head + expect.events, (command, app.head() - head, expect.events)
        assert result.position == app.head()
        expect.apply()
        new = self.ledger.follow(app)
        assert {e.actor for e in new} == {p.actor}
        if key is not None:
            self.keyed[(p.key_id, key)] = Keyed(command, p, result.result, result.position, False)

    # -- rules ----------------------------------------------------------------------------

    @rule(
        p=principal_ix,
        v=volunteer_ix,
        points=st.integers(1, 40),
        reuse=st.booleans(),
        keyed=st.booleans(),
    )
    def award(self, p: int, v: int, points: int, reuse: bool, keyed: bool) -> None:
        award_id = self.award_ids[-1] if reuse and self.award_ids else self.fresh("award")
        self.award_ids.append(award_id)
        vid, principal = self.volunteer(v), self.principal(p)
        command = c.AwardPoints(
            volunteer_id=vid, points=points, reason="文明户评比", award_id=award_id
        )
        self.run(
            command, principal, self.plan_award(principal, vid, points, award_id), self.key(keyed)
        )

    @rule(
        p=st.sampled_from([0, 0, 8]),
        v=volunteer_ix,
        delta=st.integers(-60, 40),
        keyed=st.booleans(),
    )
    def adjust(self, p: int, v: int, delta: int, keyed: bool) -> None:
        adjustment_id, vid, principal = (
            self.fresh("adjustment"),
            self.volunteer(v),
            self.principal(p),
        )
        command = c.AdjustPoints(
            volunteer_id=vid, delta=delta, reason="更正", adjustment_id=adjustment_id
        )
        self.run(
            command,
            principal,
            self.plan_adjust(principal, vid, delta, adjustment_id),
            self.key(keyed),
        )

    @rule(p=principal_ix, v=volunteer_ix)
    def expire(self, p: int, v: int) -> None:
        vid, principal = self.volunteer(v), self.principal(p)
        self.run(c.ExpirePoints(volunteer_id=vid), principal, self.plan_expire(principal, vid))

    @rule(p=principal_ix, r=reward_ix, quantity=st.integers(1, 3))
    def restock(self, p: int, r: int, quantity: int) -> None:
        rid, principal = self.reward(r), self.principal(p)
        self.run(
            c.RestockReward(reward_id=rid, quantity=quantity),
            principal,
            self.plan_restock(principal, rid, quantity),
        )

    @rule(p=principal_ix, r=reward_ix)
    def delist(self, p: int, r: int) -> None:
        rid, principal = self.reward(r), self.principal(p)
        self.run(
            c.DelistReward(reward_id=rid, reason="下架"),
            principal,
            self.plan_delist(principal, rid),
        )

    @rule(
        p=principal_ix,
        v=volunteer_ix,
        r=reward_ix,
        quantity=st.integers(1, 2),
        reuse=st.booleans(),
        keyed=st.booleans(),
    )
    def redeem(self, p: int, v: int, r: int, quantity: int, reuse: bool, keyed: bool) -> None:
        existing = list(self.redemptions)
        redemption_id = existing[-1] if reuse and existing else self.fresh("redemption")
        vid, rid, principal = self.volunteer(v), self.reward(r), self.principal(p)
        command = c.Redeem(
            volunteer_id=vid, reward_id=rid, quantity=quantity, redemption_id=redemption_id
        )
        expect = self.plan_redeem(principal, vid, rid, quantity, redemption_id)
        self.run(command, principal, expect, self.key(keyed))

    @rule(p=principal_ix, v=volunteer_ix, r=reward_ix)
    def redeem_one(self, p: int, v: int, r: int) -> None:
        """The common case, more often: one item, a fresh id."""
        self.redeem(p, v, r, quantity=1, reuse=False, keyed=False)

    @rule(p=principal_ix, second=st.booleans(), cost=st.integers(1, 25), stock=st.integers(0, 3))
    def list_reward(self, p: int, second: bool, cost: int, stock: int) -> None:
        station, principal, rid = (
            list(self.lineage)[second],
            self.principal(p),
            self.fresh("reward"),
        )
        command = c.ListReward(
            reward_id=rid, unit_id=station, name="食用油", cost_points=cost, stock=stock
        )
        self.run(command, principal, self.plan_list(principal, station, cost, stock, rid))

    @precondition(lambda self: bool(self.redemptions))
    @rule(p=principal_ix, k=pick_ix)
    def fulfil(self, p: int, k: int) -> None:
        rid, principal = self.redemption(k), self.principal(p)
        self.run(
            c.FulfilRedemption(redemption_id=rid, note="已领取"),
            principal,
            self.plan_fulfil(principal, rid),
        )

    @precondition(lambda self: bool(self.redemptions))
    @rule(p=principal_ix, k=pick_ix, keyed=st.booleans())
    def cancel(self, p: int, k: int, keyed: bool) -> None:
        rid, principal = self.redemption(k), self.principal(p)
        self.run(
            c.CancelRedemption(redemption_id=rid, reason="不要了"),
            principal,
            self.plan_cancel(principal, rid),
            self.key(keyed),
        )

    @rule(p=principal_ix, v=volunteer_ix, suspend=st.booleans())
    def suspend_or_reinstate(self, p: int, v: int, suspend: bool) -> None:
        vid, principal = self.volunteer(v), self.principal(p)
        command: c.Command = (
            c.SuspendVolunteer(volunteer_id=vid, reason="暂停")
            if suspend
            else c.ReinstateVolunteer(volunteer_id=vid, reason="恢复")
        )
        self.run(command, principal, self.plan_status(principal, vid, suspend))

    @rule(p=principal_ix, v=volunteer_ix, minutes=quarter_hours)
    def confirm(self, p: int, v: int, minutes: int) -> None:
        vid, principal = self.volunteer(v), self.principal(p)
        command = c.ConfirmService(
            activity_id=self.activity_id, volunteer_id=vid, hours=hours(minutes)
        )
        self.run(command, principal, self.plan_confirm(principal, vid, minutes))

    @rule(p=principal_ix, v=volunteer_ix, minutes=quarter_hours)
    def request_correction(self, p: int, v: int, minutes: int) -> None:
        correction_id, vid, principal = (
            self.fresh("correction"),
            self.volunteer(v),
            self.principal(p),
        )
        command = c.RequestServiceCorrection(
            correction_id=correction_id,
            activity_id=self.activity_id,
            volunteer_id=vid,
            hours=hours(minutes),
            reason="少记了时长",
        )
        self.run(
            command, principal, self.plan_request_correction(principal, vid, minutes, correction_id)
        )

    @precondition(lambda self: bool(self.corrections))
    @rule(p=principal_ix, k=pick_ix, approve=st.booleans())
    def decide_correction(self, p: int, k: int, approve: bool) -> None:
        cid, principal = self.correction(k), self.principal(p)
        command: c.Command = (
            c.ApproveServiceCorrection(correction_id=cid, note="核实")
            if approve
            else c.RejectServiceCorrection(correction_id=cid, reason="不符")
        )
        self.run(command, principal, self.plan_decide(principal, cid, approve))

    @rule(hours_=st.integers(1, 15 * 24))
    def time_passes(self, hours_: int) -> None:
        self.now += timedelta(hours=hours_)

    @precondition(lambda self: bool(self.keyed))
    @rule(k=st.integers(0, 50), variant=st.sampled_from(["same", "different", "other-key"]))
    def retry_a_key(self, k: int, variant: str) -> None:
        """Same key, same command: the first answer, nothing recorded. Same key, another
        command: refused, nothing recorded. Another caller's key of the same name is
        another key (the command runs, or is refused, on its own)."""
        app = self.application
        (_, key), keyed = list(self.keyed.items())[k % len(self.keyed)]
        head = app.head()
        if variant == "same":
            again = app.execute(keyed.command, keyed.principal, key)
            assert again.replayed and again.result == keyed.result
            assert keyed.position is not None and again.position is not None
            if keyed.in_batch:  # see test_a_replayed_batch_item_answers_its_own_position
                assert again.position >= keyed.position
            else:
                assert again.position == keyed.position
            assert app.head() == head
        elif variant == "different":
            other = c.AwardPoints(
                volunteer_id=self.volunteer(0),
                points=1,
                reason="另一个请求",
                award_id=self.fresh("award"),
            )
            with pytest.raises(application_module.IdempotencyMismatchError):
                app.execute(other, keyed.principal, key)
            assert app.head() == head
        else:  # the auditor's key of that name has never been used: the command runs
            auditor = self.principals[4]
            if keyed.principal is auditor:
                return
            with pytest.raises(ForbiddenError):
                app.execute(keyed.command, auditor, key)
            assert app.head() == head

    @rule(p=principal_ix, items=st.lists(batch_item, min_size=2, max_size=6))
    def batch(self, p: int, items: list[tuple[str, int, int, str]]) -> None:
        """Items run in order, one transaction: each refused item leaves no trace, each
        good one records exactly its events, contiguous and in order; a key repeated in
        the batch answers its first item's outcome (or is refused for another command)."""
        principal = self.principal(p)
        app = self.application
        batch: list[BatchItem] = []
        expected: list[tuple[str, Expect | int]] = []  # ("run", Expect) | ("follow", index)
        keys_in_batch: dict[str, int] = {}
        stored = {k: v for (kid, k), v in self.keyed.items() if kid == principal.key_id}
        for kind, a, b, key_mode in items:
            command, expect = self.batch_command(principal, kind, a, b)
            key: str | None = None
            if key_mode == "fresh":
                key = self.key(True)
            elif key_mode in ("repeat-same", "repeat-different") and keys_in_batch:
                key = list(keys_in_batch)[a % len(keys_in_batch)]
                leader = keys_in_batch[key]
                if key_mode == "repeat-same":
                    command = batch[leader].command
                batch.append(BatchItem(command, key))
                if key in stored:  # answered from the store, whatever came first
                    same = command == stored[key].command
                    expected.append(("replay" if same else "mismatch", 0))
                else:
                    expected.append(("follow", leader))
                continue
            elif key_mode == "stored" and stored:
                key, keyed = list(stored.items())[a % len(stored)]
                if b % 2 == 0:
                    command = keyed.command
                batch.append(BatchItem(command, key))
                same = command == keyed.command  # another command may happen to be equal
                expected.append(("replay" if same else "mismatch", 0))
                keys_in_batch.setdefault(key, len(batch) - 1)
                continue
            if key is not None:
                keys_in_batch[key] = len(batch)
            # predicted in order: later items see what earlier ones (are to) do
            if expect.error is None:
                expect.apply()
            batch.append(BatchItem(command, key))
            expected.append(("run", expect))

        self.run_batch(principal, batch, expected)
        new = self.ledger.follow(app)
        assert {e.actor for e in new} <= {principal.actor}

    def batch_command(self, p: Principal, kind: str, a: int, b: int) -> tuple[c.Command, Expect]:
        vid, rid = self.volunteer(a), self.reward(b)
        if kind == "award":
            award_id = self.fresh("award")
            command: c.Command = c.AwardPoints(
                volunteer_id=vid, points=b % 30 + 1, reason="评比", award_id=award_id
            )
            return command, self.plan_award(p, vid, b % 30 + 1, award_id)
        if kind == "adjust":
            adjustment_id, delta = self.fresh("adjustment"), b - 50
            command = c.AdjustPoints(
                volunteer_id=vid, delta=delta, reason="更正", adjustment_id=adjustment_id
            )
            return command, self.plan_adjust(p, vid, delta, adjustment_id)
        if kind == "redeem":
            redemption_id = self.fresh("redemption")
            command = c.Redeem(volunteer_id=vid, reward_id=rid, redemption_id=redemption_id)
            return command, self.plan_redeem(p, vid, rid, 1, redemption_id)
        if kind == "cancel":
            red = self.redemption(b)
            return c.CancelRedemption(redemption_id=red, reason="取消"), self.plan_cancel(p, red)
        if kind == "fulfil":
            red = self.redemption(b)
            return c.FulfilRedemption(redemption_id=red), self.plan_fulfil(p, red)
        if kind == "restock":
            quantity = a % 3 + 1
            command = c.RestockReward(reward_id=rid, quantity=quantity)
            return command, self.plan_restock(p, rid, quantity)
        if kind == "expire":
            return c.ExpirePoints(volunteer_id=vid), self.plan_expire(p, vid)
        minutes = 15 * (b % 13 + 1)
        command = c.ConfirmService(
            activity_id=self.activity_id, volunteer_id=vid, hours=hours(minutes)
        )
        return command, self.plan_confirm(p, vid, minutes)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        app = self.application
        self.ledger.follow(app)  # nothing unaccounted for since the last step
        for pb in self.passbooks:
            lots = self.ledger.lots[pb.id]
            assert {k: tuple(v) for k, v in lots.items()} == {
                k: (lot.points, lot.remaining) for k, lot in pb.lots.items()
            }
            assert self.ledger.balance(pb.id) == pb.balance
        for rid, reward in self.rewards.items():
            assert self.ledger.stock[rid] == reward.stock >= 0
            assert self.ledger.stocked[rid] == reward.stocked
        for red_id, r in self.redemptions.items():
            assert self.ledger.status[red_id] == r.status
            assert self.ledger.redeemed[red_id] == [r.spent]  # debited once
            assert self.ledger.reserved[red_id] == [r.quantity]  # reserved once
            cancelled = r.status == "cancelled"
            assert self.ledger.refunded.get(red_id, []) == ([r.spent] if cancelled else [])
            assert self.ledger.released.get(red_id, []) == ([r.quantity] if cancelled else [])

    @invariant()
    def aggregates_and_queries_agree(self) -> None:
        app = self.application
        for pb in self.passbooks:
            for passbook in (app.get(pb.id), app.repository.get(pb.id)):  # store, cache
                assert passbook.balance == sum(lot.remaining for lot in passbook.lots.values())
                assert passbook.balance == pb.balance >= 0
                assert {
                    k: (lot.remaining, lot.awarded_at, lot.expires_at)
                    for k, lot in passbook.lots.items()
                } == {
                    k: (lot.remaining, lot.awarded_at, lot.expires_at) for k, lot in pb.lots.items()
                }
            view = q.get_passbook(app, SYSTEM, pb.volunteer_id)
            assert view.balance == pb.balance == view.statement[-1].balance_after
            assert all(line.balance_after >= 0 for line in view.statement)
            assert [lot.lot_id for lot in view.open_lots] == pb.open_lots()  # spending order
            assert view.points_due_to_expire == sum(p for _, p in pb.due(self.now))
            assert view.earned_points == pb.earned
        for rid, reward in self.rewards.items():
            view_r = q.get_reward(app, SYSTEM, rid)
            assert (view_r.stock, view_r.delisted) == (reward.stock, reward.delisted)
            open_ = sum(
                r.quantity
                for r in self.redemptions.values()
                if r.reward_id == rid and r.status == "requested"
            )
            fulfilled = sum(
                r.quantity
                for r in self.redemptions.values()
                if r.reward_id == rid and r.status == "fulfilled"
            )
            assert view_r.stock + open_ + fulfilled == reward.stocked
        for red_id, r in self.redemptions.items():
            view_d = q.get_redemption(app, SYSTEM, red_id)
            assert (view_d.status.value, view_d.points) == (r.status, r.points)


ExchangeMachine.TestCase.settings = PROPERTY_SETTINGS
TestExchangeProperties = ExchangeMachine.TestCase


# -- plain scenarios ----------------------------------------------------------------------


@dataclass
class Net:
    app: CivicApplication
    station: UUID
    volunteers: list[UUID]

    def reward(self, cost: int = 10, stock: int = 1) -> UUID:
        cmd = c.ListReward(unit_id=self.station, name="食用油", cost_points=cost, stock=stock)
        return UUID(self.app.execute(cmd, SYSTEM).result["reward_id"])

    def award(self, vid: UUID, points: int) -> None:
        self.app.execute(c.AwardPoints(volunteer_id=vid, points=points, reason="评比"), SYSTEM)

    def redeem(self, vid: UUID, rid: UUID) -> UUID:
        result = self.app.execute(c.Redeem(volunteer_id=vid, reward_id=rid), SYSTEM).result
        return UUID(result["redemption_id"])

    def balance(self, vid: UUID) -> int:
        return int(self.app.get(Passbook.create_id(vid)).balance)

    def stock(self, rid: UUID) -> int:
        return int(self.app.get(rid).stock)

    def refused(self, command: c.Command, code: str, p: Principal = SYSTEM) -> None:
        head = self.app.head()
        with pytest.raises((DomainError, ForbiddenError)) as err:
            self.app.execute(command, p)
        assert code_of(err.value) == code
        assert self.app.head() == head


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    # conflicts retry at once: a test that ends in "too many conflicts" stays fast
    monkeypatch.setattr(application_module, "BACKOFF_SECONDS", 0.0)
    app = build_application(Settings(data_dir=tmp_path))
    app.clock = lambda: NOW
    center = app.execute(c.OpenUnit(code="c", name="中心", tier="center"), SYSTEM)
    institute = app.execute(
        c.OpenUnit(code="i", name="所", tier="institute", parent_id=center.result["unit_id"]),
        SYSTEM,
    )
    station = UUID(
        app.execute(
            c.OpenUnit(code="s", name="站", tier="station", parent_id=institute.result["unit_id"]),
            SYSTEM,
        ).result["unit_id"]
    )
    volunteers = [
        UUID(
            app.execute(
                c.RegisterVolunteer(
                    home_station_id=station,
                    name=f"志愿者{n}",
                    phone="13800000000",
                    id_number=resident_id(800 + n),
                ),
                SYSTEM,
            ).result["volunteer_id"]
        )
        for n in range(3)
    ]
    yield Net(app, station, volunteers)
    app.close()


def test_cancel_after_fulfil_is_refused_and_records_nothing(net: Net) -> None:
    v, rid = net.volunteers[0], net.reward(cost=10, stock=2)
    net.award(v, 25)
    red = net.redeem(v, rid)
    net.app.execute(c.FulfilRedemption(redemption_id=red), SYSTEM)
    net.refused(c.CancelRedemption(redemption_id=red, reason="晚了"), "not-open")
    assert (net.balance(v), net.stock(rid)) == (15, 1)


def test_fulfil_after_cancel_and_a_second_cancel_are_refused(net: Net) -> None:
    v, rid = net.volunteers[0], net.reward(cost=10, stock=1)
    net.award(v, 25)
    red = net.redeem(v, rid)
    net.app.execute(c.CancelRedemption(redemption_id=red, reason="不要了"), SYSTEM)
    assert (net.balance(v), net.stock(rid)) == (25, 1)  # restored once
    net.refused(c.FulfilRedemption(redemption_id=red), "not-open")
    net.refused(c.CancelRedemption(redemption_id=red, reason="再来一次"), "not-open")
    assert (net.balance(v), net.stock(rid)) == (25, 1)  # and only once
    # the same two cancels in one batch: the second is refused, the first lands alone
    red = net.redeem(v, rid)
    cancel = c.CancelRedemption(redemption_id=red, reason="不要了")
    outcomes = net.app.execute_batch([BatchItem(cancel), BatchItem(cancel)], SYSTEM)
    assert [o.ok for o in outcomes] == [True, False]
    assert code_of(outcomes[1].error) == "not-open"
    assert (net.balance(v), net.stock(rid)) == (25, 1)


def test_a_delisted_reward_cannot_be_redeemed_but_open_redemptions_still_cancel(net: Net) -> None:
    v, rid = net.volunteers[0], net.reward(cost=10, stock=3)
    net.award(v, 40)
    red = net.redeem(v, rid)
    net.app.execute(c.DelistReward(reward_id=rid, reason="过期"), SYSTEM)
    net.refused(c.Redeem(volunteer_id=v, reward_id=rid), "delisted")
    net.refused(c.RestockReward(reward_id=rid, quantity=1), "delisted")
    net.app.execute(c.CancelRedemption(redemption_id=red, reason="下架"), SYSTEM)
    assert (net.balance(v), net.stock(rid)) == (40, 3)


def test_a_suspended_volunteer_cannot_redeem_until_reinstated(net: Net) -> None:
    v, rid = net.volunteers[0], net.reward(cost=10, stock=1)
    net.award(v, 10)
    net.app.execute(c.SuspendVolunteer(volunteer_id=v, reason="核查"), SYSTEM)
    net.refused(c.Redeem(volunteer_id=v, reward_id=rid), "volunteer-suspended")
    assert (net.balance(v), net.stock(rid)) == (10, 1)
    net.app.execute(c.ReinstateVolunteer(volunteer_id=v, reason="核查完毕"), SYSTEM)
    net.redeem(v, rid)
    assert (net.balance(v), net.stock(rid)) == (0, 0)


def test_racing_for_the_last_item_in_one_batch_and_across_batches(net: Net) -> None:
    rid = net.reward(cost=10, stock=1)
    for v in net.volunteers:
        net.award(v, 30)
    head = net.app.head()
    outcomes = net.app.execute_batch(
        [BatchItem(c.Redeem(volunteer_id=v, reward_id=rid)) for v in net.volunteers], SYSTEM
    )
    assert [code_of(o.error) for o in outcomes] == [None, "out-of-stock", "out-of-stock"]
    assert net.app.head() == head + 3  # debit, reservation, redemption: the winner's only
    assert [net.balance(v) for v in net.volunteers] == [20, 30, 30]
    # many batches submitted at once (one group on the single writer): one winner
    net.app.execute(c.RestockReward(reward_id=rid, quantity=1), SYSTEM)
    barrier = threading.Barrier(len(net.volunteers) * 2)
    results: list[list[ItemOutcome]] = []

    def go(v: UUID) -> None:
        barrier.wait()
        results.append(
            net.app.execute_batch([BatchItem(c.Redeem(volunteer_id=v, reward_id=rid))], SYSTEM)
        )

    threads = [threading.Thread(target=go, args=(v,)) for v in net.volunteers * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(str(code_of(r[0].error)) for r in results)
    assert codes == ["None"] + ["out-of-stock"] * 5
    assert net.stock(rid) == 0
    assert sum(net.balance(v) for v in net.volunteers) == 20 + 30 + 30 - 10


def test_a_repeated_key_in_one_batch_answers_once_and_refuses_another_command(net: Net) -> None:
    v = net.volunteers[0]
    award = c.AwardPoints(volunteer_id=v, points=5, reason="评比")
    other = c.AwardPoints(volunteer_id=v, points=6, reason="评比")
    head = net.app.head()
    outcomes = net.app.execute_batch(
        [BatchItem(award, "k1"), BatchItem(award, "k1"), BatchItem(other, "k1")], SYSTEM
    )
    assert [(o.ok, o.replayed) for o in outcomes] == [(True, False), (True, True), (False, False)]
    assert isinstance(outcomes[2].error, application_module.IdempotencyMismatchError)
    assert outcomes[1].result == outcomes[0].result
    assert net.app.head() == head + 1
    assert net.balance(v) == 5


def test_a_replayed_batch_item_answers_its_own_position(net: Net) -> None:
    """A retried key answers the original response: the position it returned first
    (here the first of two items of one batch), not the batch's last position."""
    v, w = net.volunteers[0], net.volunteers[1]
    items = [
        BatchItem(c.AwardPoints(volunteer_id=v, points=5, reason="评比"), "first"),
        BatchItem(c.AwardPoints(volunteer_id=w, points=5, reason="评比"), "second"),
    ]
    first = net.app.execute_batch(items, SYSTEM)
    again = net.app.execute_batch(items, SYSTEM)
    assert [o.replayed for o in again] == [True, True]
    assert [o.result for o in again] == [o.result for o in first]
    assert [o.position for o in again] == [o.position for o in first]


@pytest.mark.parametrize("kind", ["redeem", "list_reward", "request_correction"])
def test_a_client_chosen_id_another_aggregate_has_is_refused_alone(net: Net, kind: str) -> None:
    """A client-chosen id that an aggregate of another type already has (here the
    volunteer's own id) is refused like any taken id (409), at once, and the good
    items of its batch still commit."""
    v = net.volunteers[0]
    net.award(v, 50)
    rid = net.reward(cost=5, stock=3)
    taken = v  # a Volunteer's id
    if kind == "redeem":
        bad: c.Command = c.Redeem(volunteer_id=v, reward_id=rid, redemption_id=taken)
    elif kind == "list_reward":
        bad = c.ListReward(reward_id=taken, unit_id=net.station, name="米", cost_points=1, stock=1)
    else:
        activity = UUID(
            net.app.execute(
                c.PublishActivity(
                    unit_id=net.station,
                    title="宣讲",
                    category="theory",
                    starts_at=NOW + timedelta(hours=1),
                    ends_at=NOW + timedelta(hours=3),
                    location="广场",
                    capacity=3,
                    points_per_hour=10,
                ),
                SYSTEM,
            ).result["activity_id"]
        )
        net.app.execute(c.SignUp(activity_id=activity, volunteer_id=v), SYSTEM)
        net.app.clock = lambda: NOW + timedelta(hours=4)
        net.app.execute(
            c.ConfirmService(activity_id=activity, volunteer_id=v, hours=Decimal(1)), SYSTEM
        )
        bad = c.RequestServiceCorrection(
            correction_id=taken,
            activity_id=activity,
            volunteer_id=v,
            hours=Decimal(2),
            reason="少记",
        )
    good = c.AwardPoints(volunteer_id=net.volunteers[1], points=3, reason="评比")
    head = net.app.head()
    outcomes = net.app.execute_batch([BatchItem(good), BatchItem(bad)], SYSTEM)
    assert code_of(outcomes[1].error) in {"redemption-exists", "reward-exists", "correction-exists"}
    assert outcomes[0].ok, f"the good item failed too: {outcomes[0].error!r}"
    assert net.app.head() == head + 1
    assert net.balance(net.volunteers[1]) == 3
