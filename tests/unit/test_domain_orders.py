"""Service menus and the order loop 点单→审单→派单→接单→评单→晒单, every refusal
included, and the timers the loop keeps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import uuid4

import pytest

from domain.base import acting_as
from domain.categories import Category
from domain.errors import ConflictError, RuleViolationError
from domain.orders import Channel, OrderDeadlines, OrderStatus, ServiceOrder
from domain.service_menu import MenuItem
from domain.teams import Team, TeamKind
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import Volunteer
from tests.unit.domain_builders import T0, network, volunteer

H = timedelta(hours=1)


def menu_item(unit: PracticeUnit, **kwargs: object) -> MenuItem:
    return MenuItem.add(
        unit=unit,
        category=Category.ELDERLY_DISABLED,
        title="上门理发",
        description="为行动不便的老人上门理发",
        points_per_hour=10,
        **kwargs,  # type: ignore[arg-type]
    )


def order(item: MenuItem, **kwargs: object) -> ServiceOrder:
    return ServiceOrder.place(
        item=item,
        channel=Channel.RESIDENT,
        resident_ref="wx-openid-1",
        resident_name="刘奶奶",
        resident_phone="13800000009",
        now=T0,
        **kwargs,  # type: ignore[arg-type]
    )


def station_team(station: PracticeUnit, *members: Volunteer) -> Team:
    t = Team.form(unit=station, name="理发服务队", kind=TeamKind.TEAM, leader=members[0], now=T0)
    for m in members[1:]:
        t.join(m, now=T0)
    return t


# -- the menu --------------------------------------------------------------------------


def test_menu_items_are_added_revised_and_withdrawn() -> None:
    _, _, station = network()
    item = menu_item(station, deadline_minutes={"review": 120})
    assert (item.category, item.deadline_minutes) == (Category.ELDERLY_DISABLED, {"review": 120})
    with pytest.raises(ConflictError) as err:
        item.revise(
            category=item.category,
            title=item.title,
            description=item.description,
            points_per_hour=10,
            first_come=False,
            deadline_minutes={"review": 120},
            reason="x",
        )
    assert err.value.code == "unchanged"
    item.revise(
        category=Category.HEALTH,
        title="上门理发与量血压",
        description="",
        points_per_hour=12,
        first_come=True,
        deadline_minutes=None,
        reason="增加服务",
    )
    assert (item.category, item.first_come, item.deadline_minutes) == (Category.HEALTH, True, None)
    item.withdraw("理发师不足")
    with pytest.raises(ConflictError) as err:
        order(item)
    assert err.value.code == "item-withdrawn"
    with pytest.raises(ConflictError):
        item.withdraw("again")


@pytest.mark.parametrize("deadlines", [{"lunch": 30}, {"review": 0}])
def test_menu_deadlines_are_per_step_and_positive(deadlines: dict[str, int]) -> None:
    _, _, station = network()
    with pytest.raises(RuleViolationError) as err:
        menu_item(station, deadline_minutes=deadlines)
    assert err.value.code == "bad-deadlines"


def test_a_resident_order_needs_the_residents_reference_staff_orders_do_not() -> None:
    _, _, station = network()
    item = menu_item(station)
    with pytest.raises(RuleViolationError) as err:
        ServiceOrder.place(item=item, channel=Channel.RESIDENT, now=T0)
    assert err.value.code == "resident-ref-required"
    staff = ServiceOrder.place(item=item, channel=Channel.STAFF, now=T0, details="电话预约")
    assert (staff.status, staff.resident_ref, staff.channel) == (
        OrderStatus.PLACED,
        None,
        Channel.STAFF,
    )


# -- the whole loop --------------------------------------------------------------------


def test_the_whole_loop_with_its_timers() -> None:
    _, institute, station = network()
    leader, member = volunteer(station, 1), volunteer(station, 2)
    team = station_team(station, leader, member)
    o = order(menu_item(institute))
    assert (o.unit_id, o.handling_unit_id) == (institute.id, institute.id)
    with acting_as("key:institute-admin", T0 + H):
        o.approve(now=T0 + H, note="已电话确认")
    o.pass_down(station, reason="由社区就近服务", now=T0 + 2 * H)
    assert (o.status, o.handling_unit_id) == (OrderStatus.APPROVED, station.id)
    o.dispatch(team, now=T0 + 3 * H)
    o.accept(team.id, now=T0 + 4 * H)
    services = o.complete(team, [(leader.id, 90), (member.id, 60)], people_served=1, now=T0 + 6 * H)
    assert [(s.volunteer_id, s.minutes) for s in services] == [(leader.id, 90), (member.id, 60)]
    assert services[0].completion_id == o.completion_id_for(leader.id)
    o.rate(stars=5, comment="师傅手艺好", resident_ref="wx-openid-1", now=T0 + 7 * H)
    o.showcase(
        story="八旬老人在家理了发", photo_links=["https://example.org/1.jpg"], now=T0 + 8 * H
    )
    assert (o.status, o.stars, o.story) == (OrderStatus.COMPLETED, 5, "八旬老人在家理了发")
    assert (o.time_to_review, o.time_to_dispatch, o.time_to_accept, o.time_to_complete) == (
        60,
        120,
        60,
        360,
    )
    events = o.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Placed",
        "Approved",
        "PassedDown",
        "Dispatched",
        "AcceptedByTeam",
        "Completed",
        "Rated",
        "Showcased",
    ]
    approved = events[1]
    assert isinstance(approved, ServiceOrder.Approved)
    assert approved.actor == "key:institute-admin"
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, ServiceOrder)
    assert replayed.services == o.services
    assert replayed.time_to_complete == 360


def test_a_declined_order_returns_to_the_queue_and_can_go_to_another_team() -> None:
    _, _, station = network()
    a, b = volunteer(station, 1), volunteer(station, 2)
    first, second = station_team(station, a), station_team(station, b)
    o = order(menu_item(station))
    o.approve(now=T0)
    o.dispatch(first, now=T0 + H)
    o.decline(first.id, reason="人手不足", now=T0 + 2 * H)
    assert (o.status, o.team_id, o.declines) == (OrderStatus.APPROVED, None, 1)
    assert o.step_since == T0 + 2 * H
    o.dispatch(second, now=T0 + 3 * H)
    o.accept(second.id, now=T0 + 4 * H)
    assert o.time_to_dispatch == 60  # to the first dispatch
    assert o.time_to_accept == 60  # from the last dispatch
    with pytest.raises(ConflictError) as err:
        o.complete(first, [(a.id, 30)], people_served=1, now=T0 + 5 * H)
    assert err.value.code == "not-assigned-to-team"


def test_first_come_orders_are_taken_by_a_team_only_when_open() -> None:
    _, institute, station = network()
    team = station_team(station, volunteer(station))
    closed = order(menu_item(institute))
    closed.approve(now=T0)
    with pytest.raises(ConflictError) as err:
        closed.take(team, now=T0)
    assert err.value.code == "not-open-to-teams"
    by_flag = order(menu_item(institute))
    by_flag.approve(now=T0, open_to_teams=True)
    by_flag.take(team, now=T0 + H)
    assert (by_flag.status, by_flag.team_id, by_flag.accepted_at) == (
        OrderStatus.IN_PROGRESS,
        team.id,
        T0 + H,
    )
    by_item = order(menu_item(institute, first_come=True))
    by_item.approve(now=T0)
    assert by_item.open_to_teams
    with pytest.raises(ConflictError) as err:
        by_flag.take(team, now=T0 + H)  # already taken
    assert err.value.code == "wrong-status"


# -- refusals --------------------------------------------------------------------------


def test_review_happens_once() -> None:
    _, _, station = network()
    o = order(menu_item(station))
    o.reject(reason="不在服务范围内", now=T0 + H)
    assert (o.status, o.reject_reason, o.time_to_review) == (
        OrderStatus.REJECTED,
        "不在服务范围内",
        60,
    )
    attempts: list[Callable[[], object]] = [
        lambda: o.approve(now=T0),
        lambda: o.reject(reason="x", now=T0),
    ]
    for attempt in attempts:
        with pytest.raises(ConflictError) as err:
            attempt()
        assert err.value.code == "already-reviewed"
    with pytest.raises(ConflictError) as err:
        o.dispatch(station_team(station, volunteer(station)), now=T0)
    assert err.value.code == "wrong-status"


def test_an_order_is_not_dispatched_before_review() -> None:
    _, _, station = network()
    o = order(menu_item(station))
    with pytest.raises(ConflictError) as err:
        o.dispatch(station_team(station, volunteer(station)), now=T0)
    assert err.value.code == "wrong-status"


def test_dispatching_outside_the_handling_units_subtree_is_refused() -> None:
    center, institute, station = network()
    other_institute = PracticeUnit.open(
        code="i2", name="所2", tier=UnitTier.INSTITUTE, parent=center
    )
    other_station = PracticeUnit.open(
        code="s2", name="站2", tier=UnitTier.STATION, parent=other_institute
    )
    o = order(menu_item(institute))
    o.approve(now=T0)
    outsider_team = station_team(other_station, volunteer(other_station, 5))
    with pytest.raises(RuleViolationError) as err:
        o.dispatch(outsider_team, now=T0)
    assert err.value.code == "team-outside-subtree"
    corps = Team.form(
        unit=center, name="总队", kind=TeamKind.CORPS, leader=volunteer(station, 6), now=T0
    )
    with pytest.raises(RuleViolationError) as err:  # above the handling unit: outside too
        o.dispatch(corps, now=T0)
    assert err.value.code == "team-outside-subtree"
    o.pass_down(station, reason="就近", now=T0)
    upper_team = Team.form(
        unit=institute, name="所服务队", kind=TeamKind.TEAM, leader=volunteer(station, 7), now=T0
    )
    with pytest.raises(RuleViolationError) as err:  # the station handles it now
        o.dispatch(upper_team, now=T0)
    assert err.value.code == "team-outside-subtree"
    disbanded = station_team(station, volunteer(station, 8))
    disbanded.disband(now=T0, reason="x")
    with pytest.raises(ConflictError) as conflict:
        o.dispatch(disbanded, now=T0)
    assert conflict.value.code == "team-disbanded"


def test_an_order_is_passed_down_only_to_a_lower_unit() -> None:
    center, institute, station = network()
    other_institute = PracticeUnit.open(
        code="i2", name="所2", tier=UnitTier.INSTITUTE, parent=center
    )
    o = order(menu_item(institute))
    o.approve(now=T0)
    for target in (institute, center, other_institute):
        with pytest.raises(RuleViolationError) as err:
            o.pass_down(target, reason="x", now=T0)
        assert err.value.code == "not-a-lower-unit"
    station.close("撤并")
    with pytest.raises(ConflictError) as conflict:
        o.pass_down(station, reason="x", now=T0)
    assert conflict.value.code == "unit-closed"


def test_accepting_or_declining_an_order_not_dispatched_to_ones_team_is_refused() -> None:
    _, _, station = network()
    mine, theirs = (
        station_team(station, volunteer(station, 1)),
        station_team(station, volunteer(station, 2)),
    )
    o = order(menu_item(station))
    o.approve(now=T0)
    with pytest.raises(ConflictError) as err:
        o.accept(mine.id, now=T0)  # not dispatched at all
    assert err.value.code == "wrong-status"
    o.dispatch(theirs, now=T0)
    attempts: list[Callable[[], object]] = [
        lambda: o.accept(mine.id, now=T0),
        lambda: o.decline(mine.id, reason="x", now=T0),
        lambda: o.accept(uuid4(), now=T0),
    ]
    for attempt in attempts:
        with pytest.raises(ConflictError) as err:
            attempt()
        assert err.value.code == "not-dispatched-to-team"


def test_completion_refusals_and_double_completion() -> None:
    _, _, station = network()
    leader, member, stranger = volunteer(station, 1), volunteer(station, 2), volunteer(station, 3)
    team = station_team(station, leader, member)
    o = order(menu_item(station))
    o.approve(now=T0)
    o.dispatch(team, now=T0)
    with pytest.raises(ConflictError) as err:
        o.complete(team, [(leader.id, 30)], people_served=1, now=T0 + H)  # not accepted yet
    assert err.value.code == "wrong-status"
    o.accept(team.id, now=T0)
    cases = [
        ([], "no-volunteers", RuleViolationError),
        ([(leader.id, 30), (leader.id, 30)], "duplicate-volunteer", RuleViolationError),
        ([(stranger.id, 30)], "not-a-member", ConflictError),
        ([(leader.id, 0)], "bad-hours", RuleViolationError),
        ([(leader.id, 61)], "hours-exceed-window", RuleViolationError),
    ]
    for services, code, error in cases:
        with pytest.raises(error) as caught:
            o.complete(team, services, people_served=1, now=T0 + H)
        assert caught.value.code == code, services
    with pytest.raises(RuleViolationError) as rule:
        o.complete(team, [(leader.id, 30)], people_served=-1, now=T0 + H)
    assert rule.value.code == "bad-count"
    o.complete(team, [(leader.id, 60)], people_served=1, now=T0 + H)
    with pytest.raises(ConflictError) as err:
        o.complete(team, [(member.id, 30)], people_served=1, now=T0 + 2 * H)
    assert err.value.code == "already-completed"


def test_rating_and_showcase_only_when_completed_and_only_once() -> None:
    _, _, station = network()
    leader = volunteer(station, 1)
    team = station_team(station, leader)
    o = order(menu_item(station))
    with pytest.raises(ConflictError) as err:
        o.rate(stars=5, comment="", resident_ref="wx-openid-1", now=T0)
    assert err.value.code == "not-completed"
    with pytest.raises(ConflictError) as err:
        o.showcase(story="x", photo_links=[], now=T0)
    assert err.value.code == "not-completed"
    o.approve(now=T0)
    o.dispatch(team, now=T0)
    o.accept(team.id, now=T0)
    with pytest.raises(ConflictError) as err:  # in progress is not completed either
        o.rate(stars=5, comment="", resident_ref="wx-openid-1", now=T0)
    assert err.value.code == "not-completed"
    o.complete(team, [(leader.id, 30)], people_served=1, now=T0 + H)
    with pytest.raises(RuleViolationError) as rule:
        o.rate(stars=4, comment="", resident_ref="someone-else", now=T0 + H)
    assert rule.value.code == "not-the-resident"
    with pytest.raises(RuleViolationError) as rule:
        o.rate(stars=6, comment="", resident_ref="wx-openid-1", now=T0 + H)
    assert rule.value.code == "bad-rating"
    o.rate(stars=4, comment="准时", resident_ref="wx-openid-1", now=T0 + H)
    with pytest.raises(ConflictError) as err:
        o.rate(stars=5, comment="", resident_ref="wx-openid-1", now=T0 + H)
    assert err.value.code == "already-rated"
    with pytest.raises(RuleViolationError) as rule:
        o.showcase(story="x", photo_links=[f"https://e.org/{i}.jpg" for i in range(10)], now=T0)
    assert rule.value.code == "too-many-photos"
    o.showcase(story="服务故事", photo_links=[], now=T0 + H)
    with pytest.raises(ConflictError) as err:
        o.showcase(story="again", photo_links=[], now=T0 + H)
    assert err.value.code == "already-showcased"


# -- deadlines -------------------------------------------------------------------------


def test_each_step_has_a_deadline_and_a_menu_item_may_override_it() -> None:
    _, _, station = network()
    deadlines = OrderDeadlines(review=60, dispatch=120, accept=30, complete=600)
    o = order(menu_item(station, deadline_minutes={"review": 15}))
    assert o.due_at(deadlines) == T0 + timedelta(minutes=15)
    assert not o.is_overdue(T0 + timedelta(minutes=15), deadlines)
    assert o.is_overdue(T0 + timedelta(minutes=16), deadlines)
    o.approve(now=T0 + H)
    assert o.due_at(deadlines) == T0 + 3 * H  # the dispatch step: 120 minutes from review
    team = station_team(station, volunteer(station))
    o.dispatch(team, now=T0 + 2 * H)
    o.accept(team.id, now=T0 + 2 * H)
    o.complete(team, [(team.leader_id, 30)], people_served=1, now=T0 + 3 * H)
    assert o.due_at(deadlines) is None
    assert not o.is_overdue(T0 + 100 * H, deadlines)
