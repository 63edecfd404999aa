"""The residents' service-order loop at the service layer (hypothesis stateful): random
sequences of 点单→审单→派单→接单→评单→晒单 commands through ``CivicApplication.execute``
and ``execute_batch``, by principals of every role, on a small network (a center; an
institute with two stations; a sibling institute with one station; a team per station
and one at the institute; menu items at the institutes and a station).

A model predicts every outcome: which commands succeed (and how many events each
records), and the exact refusal code of the others. After every step the event store
is read back, independently of the aggregates: each order's status history follows
only the allowed transitions; an order is with at most one team at a time, and only
a team within the handling unit's subtree, active when it got the order; passing
down only goes to a lower unit; completion names members of the team, within the
time since it took the order on, and awards each volunteer once; a rating comes once,
only after completion, never from another resident nor after erasure; a showcase
once; residents' personal data never reaches the store in clear. The store, the
aggregates and the order query must agree with the model; a refusal records nothing;
a retried idempotency key records nothing and answers what it answered first.

The domain has no cancellation of orders (an order is rejected at review, or
declined back to the queue by a team): the machine covers those instead.
"""

# ruff: noqa: PLR0911 - each planner mirrors its handler: one return per refusal

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from domain.base import name_id
from domain.errors import DomainError
from domain.orders import OrderDeadlines, ServiceOrder
from domain.passbook import Passbook
from domain.teams import Team
from infra.settings import Settings
from infra.vault import ERASED, is_token
from services import application as application_module
from services import commands as c
from services import order_queries as oq
from services.application import BatchItem, CivicApplication
from services.bootstrap import build_application
from services.principals import SYSTEM, ForbiddenError, Principal, Role
from tests.conftest import resident_id
from tests.unit.property_machine import CommandMachine, Keyed, can_write, code_of, hours
from tests.unit.property_settings import PROPERTY_SETTINGS

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UNKNOWN = UUID("00000000-0000-4000-8000-00000000beef")  # an id nothing has
ORGANIZER_FACTOR = Fraction(4, 5)  # completion hours are organizer-entered
# the network's step deadlines, in minutes (OrderDeadlines' defaults, restated)
DEFAULT_DEADLINES = {
    "review": 24 * 60,
    "dispatch": 24 * 60,
    "accept": 24 * 60,
    "complete": 7 * 1440,
}
DEADLINES = OrderDeadlines()

PLACED, APPROVED, REJECTED = "placed", "approved", "rejected"
DISPATCHED, IN_PROGRESS, COMPLETED = "dispatched", "in_progress", "completed"
VAULT_FIELDS = {
    "ref": "resident_ref",
    "name": "resident_name",
    "phone": "resident_phone",
    "address": "address",
}
STEP = {PLACED: "review", APPROVED: "dispatch", DISPATCHED: "accept", IN_PROGRESS: "complete"}

# every event of an order: the statuses it may follow and the status it leaves
TRANSITIONS: dict[type[Any], tuple[frozenset[str], str | None]] = {
    ServiceOrder.Approved: (frozenset({PLACED}), APPROVED),
    ServiceOrder.Rejected: (frozenset({PLACED}), REJECTED),
    ServiceOrder.PassedDown: (frozenset({APPROVED}), APPROVED),
    ServiceOrder.Dispatched: (frozenset({APPROVED}), DISPATCHED),
    ServiceOrder.TakenByTeam: (frozenset({APPROVED}), IN_PROGRESS),
    ServiceOrder.AcceptedByTeam: (frozenset({DISPATCHED}), IN_PROGRESS),
    ServiceOrder.DeclinedByTeam: (frozenset({DISPATCHED}), APPROVED),
    ServiceOrder.Completed: (frozenset({IN_PROGRESS}), COMPLETED),
    ServiceOrder.Rated: (frozenset({COMPLETED}), COMPLETED),
    ServiceOrder.Showcased: (frozenset({COMPLETED}), COMPLETED),
    ServiceOrder.ResidentDataErased: (frozenset(STEP) | {REJECTED, COMPLETED}, None),
}

Result = dict[str, Any]
Lines = list[tuple[UUID, int]]


def points_for(minutes: int, points_per_hour: int) -> int:
    return int(Fraction(minutes, 60) * points_per_hour * ORGANIZER_FACTOR)


def window(since: datetime | None, now: datetime) -> int:
    return 0 if since is None else int((now - since).total_seconds() // 60)


def can_read(principal: Principal, lineage: list[UUID]) -> bool:
    return principal.role in (Role.ADMIN, Role.AUDITOR) or principal.unit_id in lineage


# -- the model ------------------------------------------------------------------------


@dataclass
class MItem:
    lineage: list[UUID]
    points_per_hour: int
    first_come: bool
    title: str
    deadlines: dict[str, int] | None = None
    withdrawn: bool = False


@dataclass
class MTeam:
    lineage: list[UUID]
    leader: UUID
    members: set[UUID]
    disbanded: bool = False


@dataclass
class MOrder:
    unit_path: list[UUID]
    points_per_hour: int
    deadlines: dict[str, int] | None
    open_to_teams: bool
    channel: str
    resident: dict[str, str | None]  # plaintext: ref, name, phone, address
    placed_at: datetime
    handling_path: list[UUID] = field(default_factory=list)
    status: str = PLACED
    team: UUID | None = None
    declines: int = 0
    reject_reason: str | None = None
    step_since: datetime | None = None
    reviewed_at: datetime | None = None
    first_dispatched_at: datetime | None = None
    dispatched_at: datetime | None = None
    accepted_at: datetime | None = None
    completed_at: datetime | None = None
    services: Lines = field(default_factory=list)
    people_served: int = 0
    stars: int | None = None
    comment: str | None = None
    story: str | None = None
    photos: list[str] = field(default_factory=list)
    erased: bool = False
    events: int = 1

    def __post_init__(self) -> None:
        self.handling_path = list(self.unit_path)
        self.step_since = self.placed_at

    def due_at(self) -> datetime | None:
        step = STEP.get(self.status)
        if step is None:
            return None
        minutes = (self.deadlines or {}).get(step, DEFAULT_DEADLINES[step])
        assert self.step_since is not None
        return self.step_since + timedelta(minutes=minutes)


@dataclass
class Expect:
    """What a command should do: its refusal code, or how many events it records and
    what it changes in the model (given the command's result)."""

    error: str | None = None
    events: int = 0
    apply: Callable[[Result], None] = lambda _: None


def refused(code: str) -> Expect:
    return Expect(error=code)


# -- the store, read back without the aggregates ----------------------------------------


@dataclass
class LOrder:
    unit_path: list[UUID]
    handling_path: list[UUID]
    open_to_teams: bool
    has_resident_ref: bool
    status: str = PLACED
    history: list[str] = field(default_factory=lambda: [PLACED])
    team: UUID | None = None
    accepted_at: datetime | None = None
    last_at: datetime | None = None
    declines: int = 0
    services: Lines = field(default_factory=list)
    stars: int | None = None
    story: str | None = None
    erased: bool = False
    events: int = 1
    sealed: dict[str, str | None] = field(default_factory=dict)  # the stored tokens


@dataclass
class Ledger:
    """Orders, teams and service awards, folded from the stored events in store order;
    each event is checked against the rules as it is folded."""

    orders: dict[UUID, LOrder] = field(default_factory=dict)
    teams: dict[UUID, MTeam] = field(default_factory=dict)
    awards: dict[tuple[UUID, UUID], tuple[int, int]] = field(default_factory=dict)
    personal: set[str] = field(default_factory=set)  # plaintexts that must never be stored
    cursor: int = 0

    def follow(self, app: CivicApplication) -> list[Any]:
        new = app.recorder.select_notifications(self.cursor + 1, 10_000)
        events = [app.mapper.to_domain_event(n) for n in new]
        for n, event in zip(new, events, strict=True):
            self.cursor = n.id
            for value in vars(event).values():
                assert not (isinstance(value, str) and value in self.personal), (event, value)
            self._fold(event)
        return events

    def _fold(self, e: Any) -> None:
        oid = e.originator_id
        if isinstance(e, Team.Formed):
            self.teams[oid] = MTeam(list(e.unit_path), e.leader_id, {e.leader_id})
        elif isinstance(e, Team.MemberJoined):
            assert e.volunteer_id not in self.teams[oid].members
            self.teams[oid].members.add(e.volunteer_id)
        elif isinstance(e, Team.MemberLeft):
            self.teams[oid].members.remove(e.volunteer_id)
        elif isinstance(e, Team.Disbanded):
            assert not self.teams[oid].disbanded
            self.teams[oid].disbanded = True
        elif isinstance(e, Passbook.PointsAwarded):
            key = (oid, e.source_id)
            assert key not in self.awards, "awarded twice for one source"
            self.awards[key] = (e.points, e.minutes)
        elif isinstance(e, ServiceOrder.Placed):
            assert oid not in self.orders
            for value in (e.resident_ref, e.resident_name, e.resident_phone, e.address):
                assert value is None or is_token(value), "personal data stored in clear"
            self.orders[oid] = LOrder(
                list(e.unit_path), list(e.unit_path), e.first_come, e.resident_ref is not None
            )
            self.orders[oid].last_at = e.at
            self.orders[oid].sealed = {
                "ref": e.resident_ref,
                "name": e.resident_name,
                "phone": e.resident_phone,
                "address": e.address,
            }
        elif type(e) in TRANSITIONS:
            self._transition(self.orders[oid], e)

    def _transition(self, o: LOrder, e: Any) -> None:  # noqa: PLR0912, PLR0915 - per event
        sources, target = TRANSITIONS[type(e)]
        assert o.status in sources, f"{type(e).__name__} after {o.status}"
        at = getattr(e, "at", None)
        if at is not None:
            assert o.last_at is not None and at >= o.last_at, "time ran backwards"
            o.last_at = at
        if isinstance(e, ServiceOrder.Approved):
            o.open_to_teams = e.open_to_teams
        elif isinstance(e, ServiceOrder.PassedDown):
            deeper = list(e.unit_path)
            assert deeper[: len(o.handling_path)] == o.handling_path, "passed sideways"
            assert len(deeper) > len(o.handling_path), "passed to the same unit or up"
            o.handling_path = deeper
        elif isinstance(e, ServiceOrder.Dispatched | ServiceOrder.TakenByTeam):
            assert o.team is None, "an order with two teams"
            team = self.teams[e.team_id]
            assert not team.disbanded, "given to a disbanded team"
            assert o.handling_path[-1] in e.team_path == team.lineage, "outside the subtree"
            if isinstance(e, ServiceOrder.TakenByTeam):
                assert o.open_to_teams, "taken while not open to teams"
                o.accepted_at = e.at
            o.team = e.team_id
        elif isinstance(e, ServiceOrder.AcceptedByTeam):
            assert e.team_id == o.team
            o.accepted_at = e.at
        elif isinstance(e, ServiceOrder.DeclinedByTeam):
            assert e.team_id == o.team
            o.team = None
            o.declines += 1
        elif isinstance(e, ServiceOrder.Completed):
            assert e.team_id == o.team
            services = [(UUID(str(v)), int(m)) for v, m in e.services]
            volunteers = [v for v, _ in services]
            assert volunteers and len(set(volunteers)) == len(volunteers)
            members = self.teams[e.team_id].members
            for v, m in services:
                assert v in members, "a non-member served"
                assert 0 < m <= window(o.accepted_at, e.at), "more time than was taken"
            o.services = services
        elif isinstance(e, ServiceOrder.Rated):
            assert o.stars is None, "rated twice"
            assert 1 <= e.stars <= 5
            assert not (o.erased and o.has_resident_ref), "rated after erasure"
            o.stars = e.stars
        elif isinstance(e, ServiceOrder.Showcased):
            assert o.story is None, "showcased twice"
            assert e.story.strip() and len(e.photo_links) <= 9
            o.story = e.story
        elif isinstance(e, ServiceOrder.ResidentDataErased):
            assert not o.erased, "erased twice"
            o.erased = True
        if target is not None:
            o.status = target
            if target != o.history[-1]:
                o.history.append(target)
        o.events += 1


# -- the machine ----------------------------------------------------------------------

# principals 0-1 the admin; 2 and 10 the institute's unit admin; 3 the institute's
# ordering app (service); 4 and 11 station 1's unit admin; 5 station 1's kiosk
# (service); 6 station 2's unit admin (a sibling station); 7 the sibling institute's
# unit admin; 8 an auditor; 9 the center's unit admin (reaches all, is no admin)
principal_ix = st.integers(min_value=0, max_value=11)
order_ix = st.integers(min_value=0, max_value=21)
team_ix = st.integers(min_value=0, max_value=7)
volunteer_ix = st.integers(min_value=0, max_value=6)
unit_ix = st.integers(min_value=0, max_value=6)
item_ix = st.integers(min_value=0, max_value=9)
quarter_hours = st.integers(min_value=1, max_value=8).map(lambda n: 15 * n)  # to 2 hours
RESIDENT_REFS = ("wx-1", "wx-2")
BATCH_KINDS = (
    "place",
    "approve",
    "reject",
    "pass_down",
    "dispatch",
    "take",
    "accept",
    "decline",
    "complete",
    "rate",
    "showcase",
)
batch_item = st.tuples(
    st.sampled_from(BATCH_KINDS),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    st.sampled_from(["none", "none", "fresh", "repeat-same", "repeat-different", "stored"]),
)
# the status an order should have for each step, when a rule looks for one
WANTS = {
    "approve": {PLACED},
    "reject": {PLACED},
    "pass_down": {APPROVED},
    "dispatch": {APPROVED},
    "take": {APPROVED},
    "accept": {DISPATCHED},
    "decline": {DISPATCHED},
    "complete": {IN_PROGRESS},
    "rate": {COMPLETED},
    "showcase": {COMPLETED},
    "erase": {PLACED, APPROVED, REJECTED, DISPATCHED, IN_PROGRESS, COMPLETED},
}


class OrdersMachine(CommandMachine):
    def __init__(self) -> None:
        super().__init__("civic-orders-")
        self.orders: dict[UUID, MOrder] = {}
        self.items: dict[UUID, MItem] = {}
        self.teams: dict[UUID, MTeam] = {}
        self.awards: dict[tuple[UUID, UUID], tuple[int, int]] = {}
        self.ledger = Ledger()

    # -- set-up ------------------------------------------------------------------------

    @initialize(first_come=st.tuples(st.booleans(), st.booleans()))
    def open_network(self, first_come: tuple[bool, bool]) -> None:
        self.now = NOW
        app = self.app = build_application(
            Settings(data_dir=self.tmp, organizer_hours_factor="4/5")
        )
        app.clock = lambda: self.now

        def unit(code: str, tier: str, parent: UUID | None = None) -> UUID:
            cmd = c.OpenUnit(code=code, name=code, tier=tier, parent_id=parent)
            return UUID(app.execute(cmd, SYSTEM).result["unit_id"])

        center = unit("c", "center")
        inst, sibling = unit("i", "institute", center), unit("j", "institute", center)
        s1, s2 = unit("s1", "station", inst), unit("s2", "station", inst)
        s3 = unit("s3", "station", sibling)
        self.lineage = {
            center: [center],
            inst: [center, inst],
            sibling: [center, sibling],
            s1: [center, inst, s1],
            s2: [center, inst, s2],
            s3: [center, sibling, s3],
        }
        self.unit_ids = [center, inst, sibling, s1, s2, s3]
        self.principals = [
            SYSTEM,
            Principal("k-i", "institute admin", Role.UNIT_ADMIN, inst),
            Principal("k-app", "ordering app", Role.SERVICE, inst),
            Principal("k-s1", "station 1 admin", Role.UNIT_ADMIN, s1),
            Principal("k-s1-kiosk", "station 1 kiosk", Role.SERVICE, s1),
            Principal("k-s2", "station 2 admin", Role.UNIT_ADMIN, s2),
            Principal("k-j", "sibling institute admin", Role.UNIT_ADMIN, sibling),
            Principal("k-audit", "auditor", Role.AUDITOR),
            Principal("k-c", "center admin", Role.UNIT_ADMIN, center),
        ]
        self.volunteers: dict[UUID, list[UUID]] = {}
        for n, station in enumerate((s1, s1, s2, s3, s1)):
            register = c.RegisterVolunteer(
                home_station_id=station,
                name=f"志愿者{n}",
                phone="13800000000",
                id_number=resident_id(700 + n),
            )
            vid = UUID(app.execute(register, SYSTEM).result["volunteer_id"])
            self.volunteers[vid] = self.lineage[station]
        self.volunteer_ids = list(self.volunteers)
        v = self.volunteer_ids
        for unit_id, kind, leader, others in (
            (s1, "team", v[0], [v[1]]),
            (s2, "team", v[2], []),
            (inst, "corps", v[1], [v[2]]),
            (s3, "team", v[3], []),
        ):
            form = c.FormTeam(unit_id=unit_id, name="助老服务队", kind=kind, leader_id=leader)
            tid = UUID(app.execute(form, SYSTEM).result["team_id"])
            for other in others:
                app.execute(c.JoinTeam(team_id=tid, volunteer_id=other), SYSTEM)
            self.teams[tid] = MTeam(self.lineage[unit_id], leader, {leader, *others})
        self.team_ids = list(self.teams)
        for unit_id, pph, fc, deadlines in (
            (inst, 10, first_come[0], None),
            (inst, 20, first_come[1], {"accept": 45}),
            (s1, 15, False, None),
            (s3, 10, True, None),
        ):
            self.add_item(SYSTEM, unit_id, pph, fc, deadlines)
        self.ledger.personal = {*RESIDENT_REFS, "刘奶奶", "13900000001", "幸福里3号"}
        self.ledger.follow(app)
        for i, who in ((0, 0), (1, 1), (2, 5)):  # a few orders to begin with
            self.place_one(0, i, who)

    # -- helpers -------------------------------------------------------------------------

    def principal(self, n: int) -> Principal:
        return self.principals[(0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 3)[n % 12]]

    def order(self, n: int, wants: str | None = None) -> UUID:
        """An order: 20 is an id nothing has, 21 a team's (not an order); otherwise,
        given a step, preferably one whose status suits it."""
        if n % 22 == 20 or not self.orders:
            return UNKNOWN
        if n % 22 == 21:
            return self.team_ids[0]
        ids = list(self.orders)
        if wants is not None and n % 4 != 0:
            suits = [o for o in ids if self.orders[o].status in WANTS[wants]]
            ids = suits or ids
        return ids[-1 - n % 22 % len(ids)]

    def team_for(self, n: int, oid: UUID) -> UUID:
        """0-3 the teams, 4 an id nothing has, 5-7 the order's team if it has one."""
        n %= 8
        if n == 4:
            return UNKNOWN
        o = self.orders.get(oid)
        if n >= 5 and o is not None and o.team is not None:
            return o.team
        return self.team_ids[n % len(self.team_ids)]

    def volunteer(self, n: int) -> UUID:
        return UNKNOWN if n % 7 == 6 else self.volunteer_ids[n % 7 % len(self.volunteer_ids)]

    def unit(self, n: int) -> UUID:
        return UNKNOWN if n % 7 == 6 else self.unit_ids[n % 7]

    def item(self, n: int) -> UUID:
        ids = list(self.items)
        if n % 10 == 9:
            return UNKNOWN
        if n % 10 == 8:
            return self.team_ids[0]  # not a menu item
        return ids[n % 10 % len(ids)]

    def lines_for(self, oid: UUID, tid: UUID, picks: list[tuple[int, int]]) -> Lines:
        """Service lines: mostly the team's members, for mostly possible minutes."""
        team = self.teams.get(tid)
        # in registration order: server-chosen ids differ from run to run
        members = [v for v in self.volunteer_ids if team is not None and v in team.members]
        o = self.orders.get(oid)
        room = window(o.accepted_at if o else None, self.now)
        lines: Lines = []
        for who, n in picks:
            v = members[who % len(members)] if who % 4 != 3 and members else self.volunteer(who)
            if n % 3 != 2 and room >= 15:  # within the time since the team took it on
                lines.append((v, 15 * (1 + n % min(8, room // 15))))
            elif room < 24 * 60:  # more than that
                lines.append((v, 15 * (room // 15 + 1 + n % 2)))
            else:
                lines.append((v, 15 * (1 + n % 8)))
        return lines

    def add_item(
        self,
        p: Principal,
        unit_id: UUID,
        pph: int,
        first_come: bool,
        deadlines: dict[str, int] | None = None,
    ) -> None:
        item_id = self.fresh("item")
        command = c.AddMenuItem(
            item_id=item_id,
            unit_id=unit_id,
            category="elderly_disabled",
            title=f"上门服务{pph}",
            points_per_hour=pph,
            first_come=first_come,
            deadline_minutes=deadlines,
        )
        lineage = self.lineage.get(unit_id)
        if lineage is None:
            expect = refused("not-found")
        elif not can_write(p, lineage):
            expect = refused("forbidden")
        else:

            def add(_: Result) -> None:
                self.items[item_id] = MItem(
                    lineage, pph, first_come, f"上门服务{pph}", deadlines and dict(deadlines)
                )

            expect = Expect(events=1, apply=add)
        self.run(command, p, expect)

    def taken(self, some_id: UUID) -> bool:
        """Whether an aggregate of any type has this id."""
        return (
            some_id in self.orders
            or some_id in self.items
            or some_id in self.teams
            or some_id in self.volunteers
            or some_id in self.lineage
        )

    # -- what each command should do -------------------------------------------------------

    def plan_place(
        self,
        p: Principal,
        item_id: UUID,
        channel: str,
        resident: dict[str, str | None],
        order_id: UUID | None,
    ) -> Expect:
        item = self.items.get(item_id)
        if item is None:
            return refused("not-found")
        if not can_write(p, item.lineage):
            return refused("forbidden")
        if order_id is not None and self.taken(order_id):
            return refused("order-exists")
        if item.withdrawn:
            return refused("item-withdrawn")
        if channel == "resident" and resident["ref"] is None:
            return refused("resident-ref-required")
        now = self.now

        def place(result: Result) -> None:
            oid = order_id or UUID(result["order_id"])
            self.orders[oid] = MOrder(
                list(item.lineage),
                item.points_per_hour,
                item.deadlines,
                item.first_come,
                channel,
                dict(resident),
                now,
            )

        return Expect(events=1, apply=place)

    def plan_review(
        self, p: Principal, oid: UUID, approve: bool, open_to_teams: bool | None
    ) -> Expect:
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        if not can_write(p, o.handling_path):
            return refused("forbidden")
        if o.status != PLACED:
            return refused("already-reviewed")
        now = self.now

        def review(_: Result) -> None:
            o.status = APPROVED if approve else REJECTED
            if approve and open_to_teams is not None:
                o.open_to_teams = open_to_teams
            if not approve:
                o.reject_reason = "不在服务范围"
            o.reviewed_at = o.step_since = now
            o.events += 1

        return Expect(events=1, apply=review)

    def plan_pass_down(self, p: Principal, oid: UUID, unit_id: UUID) -> Expect:
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        if not can_write(p, o.handling_path):
            return refused("forbidden")
        lineage = self.lineage.get(unit_id)
        if lineage is None:
            return refused("not-found")
        if o.status != APPROVED:
            return refused("wrong-status")
        if o.handling_path[-1] not in lineage[:-1]:
            return refused("not-a-lower-unit")
        now = self.now

        def pass_down(_: Result) -> None:
            o.handling_path = list(lineage)
            o.step_since = now
            o.events += 1

        return Expect(events=1, apply=pass_down)

    def plan_give(self, p: Principal, oid: UUID, tid: UUID, take: bool) -> Expect:
        """Dispatch (by the handling unit) or take (by the team's unit, first come)."""
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        if not take and not can_write(p, o.handling_path):
            return refused("forbidden")
        team = self.teams.get(tid)
        if team is None:
            return refused("not-found")
        if take and not can_write(p, team.lineage):
            return refused("forbidden")
        if o.status != APPROVED:
            return refused("wrong-status")
        if take and not o.open_to_teams:
            return refused("not-open-to-teams")
        if team.disbanded:
            return refused("team-disbanded")
        if o.handling_path[-1] not in team.lineage:
            return refused("team-outside-subtree")
        now = self.now

        def give(_: Result) -> None:
            o.status = IN_PROGRESS if take else DISPATCHED
            o.team = tid
            o.dispatched_at = o.step_since = now
            if take:
                o.accepted_at = now
            if o.first_dispatched_at is None:
                o.first_dispatched_at = now
            o.events += 1

        return Expect(events=1, apply=give)

    def plan_answer(self, p: Principal, oid: UUID, tid: UUID, accept: bool) -> Expect:
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        team = self.teams.get(tid)
        if team is None:
            return refused("not-found")
        if not can_write(p, team.lineage):
            return refused("forbidden")
        if o.status != DISPATCHED:
            return refused("wrong-status")
        if tid != o.team:
            return refused("not-dispatched-to-team")
        now = self.now

        def answer(_: Result) -> None:
            if accept:
                o.status = IN_PROGRESS
                o.accepted_at = now
            else:
                o.status, o.team = APPROVED, None
                o.declines += 1
            o.step_since = now
            o.events += 1

        return Expect(events=1, apply=answer)

    def plan_complete(self, p: Principal, oid: UUID, tid: UUID, lines: Lines) -> Expect:
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        team = self.teams.get(tid)
        if team is None:
            return refused("not-found")
        if not can_write(p, team.lineage):
            return refused("forbidden")
        if any(v not in self.volunteers for v, _ in lines):
            return refused("not-found")  # the volunteer's passbook
        if o.status == COMPLETED:
            return refused("already-completed")
        if o.status != IN_PROGRESS:
            return refused("wrong-status")
        if tid != o.team:
            return refused("not-assigned-to-team")
        if len({v for v, _ in lines}) != len(lines):
            return refused("duplicate-volunteer")
        room = window(o.accepted_at, self.now)
        for v, minutes in lines:
            if v not in team.members:
                return refused("not-a-member")
            if minutes > room:
                return refused("hours-exceed-window")
        now = self.now

        def complete(_: Result) -> None:
            o.status = COMPLETED
            o.services = list(lines)
            o.people_served = 2
            o.completed_at = o.step_since = now
            o.events += 1
            for v, minutes in lines:
                source = name_id("order-service", oid, v)
                awarded = (points_for(minutes, o.points_per_hour), minutes)
                self.awards[(Passbook.create_id(v), source)] = awarded

        return Expect(events=1 + len(lines), apply=complete)

    def plan_rate(self, p: Principal, oid: UUID, stars: int, ref: str | None) -> Expect:
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        if not can_write(p, o.unit_path):
            return refused("forbidden")
        if o.status != COMPLETED:
            return refused("not-completed")
        if o.stars is not None:
            return refused("already-rated")
        if o.resident["ref"] is not None and o.erased:
            return refused("resident-erased")
        if o.resident["ref"] is not None and ref != o.resident["ref"]:
            return refused("not-the-resident")

        def rate(_: Result) -> None:
            o.stars, o.comment = stars, "准时"
            o.events += 1

        return Expect(events=1, apply=rate)

    def plan_showcase(self, p: Principal, oid: UUID, photos: list[str]) -> Expect:
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        if not can_write(p, o.unit_path) or p.role not in (Role.ADMIN, Role.UNIT_ADMIN):
            return refused("forbidden")
        if o.status != COMPLETED:
            return refused("not-completed")
        if o.story is not None:
            return refused("already-showcased")

        def showcase(_: Result) -> None:
            o.story, o.photos = "理发后老人很开心", list(photos)
            o.events += 1

        return Expect(events=1, apply=showcase)

    def plan_erase(self, p: Principal, oid: UUID) -> Expect:
        if p.role != Role.ADMIN:
            return refused("forbidden")
        o = self.orders.get(oid)
        if o is None:
            return refused("not-found")
        if o.erased:
            return refused("resident-erased")

        def erase(_: Result) -> None:
            o.erased = True
            o.events += 1

        return Expect(events=1, apply=erase)

    def plan_team(self, p: Principal, tid: UUID, vid: UUID, kind: str) -> Expect:
        team = self.teams.get(tid)
        if team is None:
            return refused("not-found")
        if not can_write(p, team.lineage):
            return refused("forbidden")
        if kind == "join" and vid not in self.volunteers:
            return refused("not-found")
        if team.disbanded:
            return refused("team-disbanded")
        if kind == "join":
            if vid in team.members:
                return refused("already-a-member")
            if team.lineage[-1] not in self.volunteers[vid]:
                return refused("outside-team-unit")
            return Expect(events=1, apply=lambda _: team.members.add(vid))
        if kind == "leave":
            if vid not in team.members:
                return refused("not-a-member")
            if vid == team.leader:
                return refused("leader-cannot-leave")
            return Expect(events=1, apply=lambda _: team.members.remove(vid))
        return Expect(events=1, apply=lambda _: setattr(team, "disbanded", True))

    def plan_item(self, p: Principal, item_id: UUID, withdraw: bool) -> Expect:
        item = self.items.get(item_id)
        if item is None:
            return refused("not-found")
        if not can_write(p, item.lineage):
            return refused("forbidden")
        if item.withdrawn:
            return refused("item-withdrawn")
        if withdraw:
            return Expect(events=1, apply=lambda _: setattr(item, "withdrawn", True))
        return Expect(events=1, apply=lambda _: setattr(item, "first_come", not item.first_come))

    # -- commands from draws ----------------------------------------------------------------

    def place_command(
        self, item_id: UUID, channel: str, who: int, order_id: UUID | None
    ) -> tuple[c.Command, dict[str, str | None]]:
        resident: dict[str, str | None] = {
            "ref": None if who % 3 == 2 else RESIDENT_REFS[who % 2],
            "name": "刘奶奶" if who % 2 == 0 else None,
            "phone": "13900000001" if who % 4 < 2 else None,
            "address": "幸福里3号" if who % 5 != 4 else None,
        }
        command = c.PlaceOrder(
            order_id=order_id,
            menu_item_id=item_id,
            channel=channel,
            resident_ref=resident["ref"],
            resident_name=resident["name"],
            resident_phone=resident["phone"],
            address=resident["address"],
            details="需要上门",
        )
        return command, resident

    def rate_ref(self, oid: UUID, how: int) -> str | None:
        o = self.orders.get(oid)
        if how % 3 == 0 or o is None:
            return None if how % 6 == 0 else "wx-9"
        return o.resident["ref"] or RESIDENT_REFS[how % 2]

    def order_command(
        self,
        p: Principal,
        kind: str,
        a: int,
        b: int,
        order_id: UUID | None = None,
        oid: UUID | None = None,
    ) -> tuple[c.Command, Expect]:
        """The command of kind ``kind`` drawn from ``a`` and ``b`` (on order ``oid``, or
        one drawn from ``a``), and its expectation."""
        command: c.Command
        if kind == "place":
            item_id = self.item(a)
            channel = "resident" if b % 2 == 0 else "staff"
            command, resident = self.place_command(item_id, channel, b // 2, order_id)
            return command, self.plan_place(p, item_id, channel, resident, order_id)
        oid = self.order(a, kind) if oid is None else oid
        if kind in ("approve", "reject"):
            if kind == "approve":
                open_ = (None, True, False)[b % 3]
                command = c.ApproveOrder(order_id=oid, note="已回访", open_to_teams=open_)
                return command, self.plan_review(p, oid, True, open_)
            command = c.RejectOrder(order_id=oid, reason="不在服务范围")
            return command, self.plan_review(p, oid, False, None)
        if kind == "pass_down":
            unit_id = self.unit(b)
            command = c.PassOrderDown(order_id=oid, unit_id=unit_id, reason="就近服务")
            return command, self.plan_pass_down(p, oid, unit_id)
        tid = self.team_for(b, oid)
        if kind in ("dispatch", "take"):
            take = kind == "take"
            command = (
                c.TakeOrder(order_id=oid, team_id=tid)
                if take
                else c.DispatchOrder(order_id=oid, team_id=tid)
            )
            return command, self.plan_give(p, oid, tid, take)
        if kind in ("accept", "decline"):
            accept = kind == "accept"
            command = (
                c.AcceptOrder(order_id=oid, team_id=tid)
                if accept
                else c.DeclineOrder(order_id=oid, team_id=tid, reason="人手不足")
            )
            return command, self.plan_answer(p, oid, tid, accept)
        if kind == "complete":
            picks = [(a // 2 + 7 * i, b // 8 + 5 * i) for i in range(1 + b // 8 % 2)]
            lines = self.lines_for(oid, tid, picks)
            command = c.CompleteOrder(
                order_id=oid,
                team_id=tid,
                services=[c.ServiceLine(volunteer_id=v, hours=hours(m)) for v, m in lines],
                people_served=2,
                note="已完成",
            )
            return command, self.plan_complete(p, oid, tid, lines)
        if kind == "rate":
            stars, ref = 1 + b % 5, self.rate_ref(oid, b // 5)
            command = c.RateOrder(order_id=oid, stars=stars, comment="准时", resident_ref=ref)
            return command, self.plan_rate(p, oid, stars, ref)
        if kind == "showcase":
            photos = [f"https://example.org/p/{i}.jpg" for i in range(b % 4)]
            command = c.ShowcaseOrder(
                order_id=oid,
                story="理发后老人很开心",
                photo_links=photos,
            )
            return command, self.plan_showcase(p, oid, photos)
        assert kind == "erase"
        command = c.EraseOrderResidentData(order_id=oid, reason="居民要求删除")
        return command, self.plan_erase(p, oid)

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
        expect.apply(result.result)
        if "order_id" in result.result:  # an order's command answers its new status
            o = self.orders[UUID(result.result["order_id"])]
            assert result.result["status"] == o.status
        new = self.ledger.follow(app)
        assert {e.actor for e in new} == {p.actor}
        if key is not None:
            self.keyed[(p.key_id, key)] = Keyed(command, p, result.result, result.position, False)

    def step(self, kind: str, p: int, a: int, b: int, keyed: bool = False) -> None:
        principal = self.principal(p)
        command, expect = self.order_command(principal, kind, a, b)
        self.run(command, principal, expect, self.key(keyed))

    # -- rules ----------------------------------------------------------------------------

    @rule(
        p=principal_ix,
        i=item_ix,
        resident=st.booleans(),
        who=st.integers(0, 59),
        id_mode=st.sampled_from(["server", "fresh", "fresh", "existing", "taken"]),
        keyed=st.booleans(),
    )
    def place(self, p: int, i: int, resident: bool, who: int, id_mode: str, keyed: bool) -> None:
        """点单: a resident through the app (their reference), or staff for them."""
        order_id: UUID | None = None
        if id_mode == "fresh":
            order_id = self.fresh("order")
        elif id_mode == "existing":
            order_id = list(self.orders)[-1] if self.orders else self.fresh("order")
        elif id_mode == "taken":  # another aggregate's id: a volunteer's
            order_id = self.volunteer_ids[who % len(self.volunteer_ids)]
        principal = self.principal(p)
        command, expect = self.order_command(
            principal, "place", i, who * 2 + (0 if resident else 1), order_id
        )
        self.run(command, principal, expect, self.key(keyed))

    @rule(p=st.sampled_from([0, 3, 5]), i=st.integers(0, 3), who=st.integers(0, 59))
    def place_one(self, p: int, i: int, who: int) -> None:
        """The common case, more often: the app, a kiosk or the admin orders an item of
        the network's menu for a resident, with a fresh id."""
        principal = self.principal(p)
        draw = 6 * who  # the resident channel, with the resident's reference
        command, expect = self.order_command(principal, "place", i, draw, self.fresh("order"))
        self.run(command, principal, expect)

    @rule(
        p=principal_ix,
        k=order_ix,
        open_=st.integers(0, 3),
        approve=st.booleans(),
        keyed=st.booleans(),
    )
    def review(self, p: int, k: int, open_: int, approve: bool, keyed: bool) -> None:
        """审单: approve into the queue (open to teams: the item's default, yes or no), or
        reject with a reason."""
        self.step("approve" if approve else "reject", p, k, open_, keyed)

    @rule(p=principal_ix, k=order_ix, u=unit_ix)
    def pass_down(self, p: int, k: int, u: int) -> None:
        self.step("pass_down", p, k, u)

    @rule(p=principal_ix, k=order_ix, t=team_ix, take=st.booleans(), keyed=st.booleans())
    def give(self, p: int, k: int, t: int, take: bool, keyed: bool) -> None:
        """派单 by the handling unit, or a team takes an order open to teams."""
        self.step("take" if take else "dispatch", p, k, t, keyed)

    @rule(p=principal_ix, k=order_ix, t=team_ix, accept=st.booleans(), keyed=st.booleans())
    def answer(self, p: int, k: int, t: int, accept: bool, keyed: bool) -> None:
        """接单, or decline: back to the queue."""
        self.step("accept" if accept else "decline", p, k, t, keyed)

    @rule(p=principal_ix, k=order_ix, b=st.integers(0, 40), keyed=st.booleans())
    def complete(self, p: int, k: int, b: int, keyed: bool) -> None:
        """The team reports who served and for how long (``b``: the team and the lines)."""
        self.step("complete", p, k, b, keyed)

    @rule(p=principal_ix, k=order_ix, b=st.integers(0, 40), keyed=st.booleans())
    def rate(self, p: int, k: int, b: int, keyed: bool) -> None:
        """评单: the resident who ordered (when the order names one), 1-5 stars."""
        self.step("rate", p, k, b, keyed)

    @rule(p=principal_ix, k=order_ix, photos=st.integers(0, 3))
    def showcase(self, p: int, k: int, photos: int) -> None:
        """晒单: an admin or a unit admin of the receiving unit's line."""
        self.step("showcase", p, k, photos)

    @rule(p=st.sampled_from([0, 0, 2, 3, 9]), k=order_ix, keyed=st.booleans())
    def erase(self, p: int, k: int, keyed: bool) -> None:
        self.step("erase", p, k, 0, keyed)

    @rule(k=order_ix, t=team_ix, b=st.integers(0, 5), steps=st.integers(1, 8))
    def advance(self, k: int, t: int, b: int, steps: int) -> None:
        """The admin moves an order a few natural steps on (the loop runs to its end);
        a team takes an hour or two before it reports completion."""
        oid = self.order(k, "erase")
        for _ in range(steps):
            self.advance_one(oid, t, b)

    def advance_one(self, oid: UUID, t: int, b: int) -> None:
        """One natural step, by the admin, with an input that suits it when there is
        one (a team within the subtree, a lower unit, the resident's reference)."""
        o = self.orders.get(oid)
        if o is None:
            return
        teams = [
            n
            for n, tid in enumerate(self.team_ids)
            if not self.teams[tid].disbanded and o.handling_path[-1] in self.teams[tid].lineage
        ]
        lower = [n for n, u in enumerate(self.unit_ids) if self.lineage[u][:-1] == o.handling_path]
        if o.status == PLACED:
            kind, draw = ("reject", 0) if t == 7 else ("approve", b)
        elif o.status == APPROVED and lower and t % 3 == 0:
            kind, draw = "pass_down", lower[b % len(lower)]
        elif o.status == APPROVED:
            kind = "take" if o.open_to_teams and t % 2 else "dispatch"
            draw = teams[b % len(teams)] if teams else t
        elif o.status == DISPATCHED:
            kind, draw = ("decline" if t >= 6 else "accept"), 5  # the order's team
        elif o.status == IN_PROGRESS:
            kind, draw = "complete", 5 + 8 * b
            if window(o.accepted_at, self.now) < 120:
                self.now += timedelta(minutes=60 + 15 * b)
        elif o.status == COMPLETED and t > 3:
            return  # rated and showcased by the rules, now and then
        elif o.status == COMPLETED and o.stars is None:
            kind, draw = "rate", 5 + b % 5  # the resident's own reference
        elif o.status == COMPLETED and o.story is None:
            kind, draw = "showcase", b
        else:
            return
        command, expect = self.order_command(SYSTEM, kind, 0, draw, oid=oid)
        self.run(command, SYSTEM, expect)

    @rule(
        p=principal_ix,
        t=team_ix,
        v=volunteer_ix,
        kind=st.sampled_from(["join", "join", "leave", "leave", "disband"]),
    )
    def team_change(self, p: int, t: int, v: int, kind: str) -> None:
        """Members join and leave; a team is disbanded (it gets no more orders)."""
        principal, tid, vid = self.principal(p), self.team_for(t, UNKNOWN), self.volunteer(v)
        command: c.Command
        if kind == "join":
            command = c.JoinTeam(team_id=tid, volunteer_id=vid)
        elif kind == "leave":
            command = c.LeaveTeam(team_id=tid, volunteer_id=vid, reason="搬家")
        else:
            command = c.DisbandTeam(team_id=tid, reason="解散")
        self.run(command, principal, self.plan_team(principal, tid, vid, kind))

    @rule(p=principal_ix, i=item_ix, kind=st.sampled_from(["add", "withdraw", "revise"]))
    def menu(self, p: int, i: int, kind: str) -> None:
        """Add an item, withdraw one, or revise whether teams may take its orders
        first-come (orders placed before keep what they were placed with)."""
        if kind == "add":
            self.add_item(self.principal(p), self.unit(i), 10, i % 2 == 0)
            return
        withdraw = kind == "withdraw"
        principal, item_id = self.principal(p), self.item(i)
        item = self.items.get(item_id)
        command: c.Command
        if withdraw:
            command = c.WithdrawMenuItem(item_id=item_id, reason="停止服务")
        else:
            command = c.ReviseMenuItem(
                item_id=item_id,
                category="elderly_disabled",
                title=item.title if item else "x",
                points_per_hour=item.points_per_hour if item else 10,
                first_come=not item.first_come if item else True,
                deadline_minutes=item.deadlines if item else None,
                reason="调整",
            )
        self.run(command, principal, self.plan_item(principal, item_id, withdraw))

    @rule(p=principal_ix, k=order_ix)
    def read(self, p: int, k: int) -> None:
        """Staff read an order if they reach the unit handling it or the one that
        received it."""
        principal, oid = self.principal(p), self.order(k)
        o = self.orders.get(oid)
        try:
            view = oq.get_order(self.application, principal, oid, DEADLINES)
        except (DomainError, ForbiddenError) as exc:
            expected = (
                "not-found"
                if o is None
                else None
                if can_read(principal, o.handling_path) or can_read(principal, o.unit_path)
                else "forbidden"
            )
            assert code_of(exc) == expected
            return
        assert o is not None
        assert can_read(principal, o.handling_path) or can_read(principal, o.unit_path)
        assert view.order_id == oid

    @rule(minutes=st.sampled_from([1, 20, 45, 90, 240, 1500]))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(k=st.integers(0, 50), variant=st.sampled_from(["same", "different", "other-key"]))
    def retry_a_key(self, k: int, variant: str) -> None:
        """Same key, same command: the first answer, nothing recorded. Same key, another
        command: refused, nothing recorded. The auditor's key of that name is another
        key: the command runs for the auditor, who may not write."""
        if not self.keyed:
            return
        app = self.application
        (_, key), keyed = list(self.keyed.items())[k % len(self.keyed)]
        head = app.head()
        if variant == "same":
            again = app.execute(keyed.command, keyed.principal, key)
            assert again.replayed and again.result == keyed.result
            assert keyed.position is not None and again.position is not None
            if keyed.in_batch:
                assert again.position >= keyed.position
            else:
                assert again.position == keyed.position
        elif variant == "different":
            other = c.ApproveOrder(order_id=UNKNOWN)
            with pytest.raises(application_module.IdempotencyMismatchError):
                app.execute(other, keyed.principal, key)
        else:
            auditor = self.principals[7]
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
        expected: list[tuple[str, Expect | int]] = []  # ("run", Expect) | ("follow", i)...
        keys_in_batch: dict[str, int] = {}
        stored = {k: v for (kid, k), v in self.keyed.items() if kid == principal.key_id}
        for kind, a, b, key_mode in items:
            order_id = self.fresh("order") if kind == "place" else None
            command, expect = self.order_command(principal, kind, a, b, order_id)
            key: str | None = None
            if key_mode == "fresh":
                key = self.key(True)
            elif key_mode in ("repeat-same", "repeat-different") and keys_in_batch:
                key = list(keys_in_batch)[a % len(keys_in_batch)]
                leader = keys_in_batch[key]
                if key_mode == "repeat-same":
                    command = batch[leader].command
                batch.append(BatchItem(command, key))
                if key in stored:
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
                same = command == keyed.command
                expected.append(("replay" if same else "mismatch", 0))
                keys_in_batch.setdefault(key, len(batch) - 1)
                continue
            if key is not None:
                keys_in_batch[key] = len(batch)
            # predicted in order: later items see what earlier ones (are to) do
            if expect.error is None:
                expect.apply({})
            batch.append(BatchItem(command, key))
            expected.append(("run", expect))

        self.run_batch(principal, batch, expected)
        new = self.ledger.follow(app)
        assert {e.actor for e in new} <= {principal.actor}

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        self.ledger.follow(self.application)  # nothing unaccounted for since the last step
        assert set(self.ledger.orders) == set(self.orders)
        for oid, o in self.orders.items():
            lo = self.ledger.orders[oid]
            assert (lo.status, lo.team, lo.handling_path, lo.declines) == (
                o.status,
                o.team,
                o.handling_path,
                o.declines,
            ), oid
            assert (lo.stars, lo.story, lo.erased, lo.services) == (
                o.stars,
                o.story,
                o.erased,
                o.services,
            )
            assert lo.events == o.events
            for name, token in lo.sealed.items():  # erasure leaves the seals unreadable
                plain = o.resident[name]
                if token is None:
                    assert plain is None
                else:
                    opened = self.application.vault.open(oid, VAULT_FIELDS[name], token)
                    assert opened == (None if o.erased else plain), (name, opened)
            if o.status == REJECTED:
                assert lo.history == [PLACED, REJECTED]
            # with a team exactly while dispatched, in progress or completed
            assert (lo.team is None) == (lo.status in (PLACED, APPROVED, REJECTED))
        for tid, team in self.teams.items():
            lt = self.ledger.teams[tid]
            assert (lt.members, lt.disbanded) == (team.members, team.disbanded)
        assert self.ledger.awards == self.awards  # each volunteer once per order, exactly

    @invariant()
    def aggregates_and_queries_agree(self) -> None:
        app = self.application
        for oid, o in self.orders.items():
            cached: Any = app.repository.get(oid)
            assert (cached.status.value, cached.version) == (o.status, o.events)
            assert (cached.team_id, cached.handling_path, cached.open_to_teams) == (
                o.team,
                o.handling_path,
                o.open_to_teams,
            )
            assert (cached.stars, cached.story, cached.resident_erased) == (
                o.stars,
                o.story,
                o.erased,
            )
            view = oq.get_order(app, SYSTEM, oid, DEADLINES)
            assert view.status.value == o.status
            assert (view.unit_path, view.handling_path) == (o.unit_path, o.handling_path)
            assert view.handling_unit_id == o.handling_path[-1]
            assert (view.team_id, view.declines, view.open_to_teams) == (
                o.team,
                o.declines,
                o.open_to_teams,
            )
            assert (view.reject_reason, view.channel, view.version) == (
                o.reject_reason,
                o.channel,
                o.events,
            )
            assert (view.placed_at, view.reviewed_at, view.dispatched_at) == (
                o.placed_at,
                o.reviewed_at,
                o.dispatched_at,
            )
            assert (view.accepted_at, view.completed_at) == (o.accepted_at, o.completed_at)
            assert view.due_at == o.due_at()
            due = o.due_at()
            assert view.overdue == (due is not None and self.now > due)
            assert [(s.volunteer_id, s.minutes) for s in view.services] == o.services
            assert (view.stars, view.comment, view.story, view.photo_links) == (
                o.stars,
                o.comment,
                o.story,
                o.photos,
            )
            shown = {
                k: None if v is None else ERASED if o.erased else v for k, v in o.resident.items()
            }
            assert (view.resident_ref, view.resident_name) == (shown["ref"], shown["name"])
            assert (view.resident_phone, view.address) == (shown["phone"], shown["address"])
            assert view.resident_erased == o.erased

            def minutes(start: datetime | None, end: datetime | None) -> int | None:
                return None if start is None or end is None else window(start, end)

            assert view.timers.to_review == minutes(o.placed_at, o.reviewed_at)
            assert view.timers.to_dispatch == minutes(o.reviewed_at, o.first_dispatched_at)
            assert view.timers.to_accept == minutes(o.dispatched_at, o.accepted_at)
            assert view.timers.to_complete == minutes(o.placed_at, o.completed_at)
        for vid in self.volunteers:
            passbook: Any = app.get(Passbook.create_id(vid))
            earned = sum(p for (pid, _), (p, _) in self.awards.items() if pid == passbook.id)
            assert passbook.balance == earned
        for tid, team in self.teams.items():
            aggregate: Any = app.get(tid)
            assert (set(aggregate.members), aggregate.disbanded) == (team.members, team.disbanded)


OrdersMachine.TestCase.settings = PROPERTY_SETTINGS
TestOrdersProperties = OrdersMachine.TestCase
