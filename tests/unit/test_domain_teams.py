"""Volunteer teams: structure (corps > detachment > specialised), membership with
its history, leaders, disbanding, and activities assigned to a team."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from domain.activities import Activity
from domain.base import acting_as
from domain.categories import Category
from domain.errors import ConflictError, RuleViolationError
from domain.teams import Team, TeamKind
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import Volunteer
from tests.unit.domain_builders import T0, activity, network, volunteer


def team(
    unit: PracticeUnit,
    leader: Volunteer,
    kind: TeamKind = TeamKind.TEAM,
    parent: Team | None = None,
) -> Team:
    return Team.form(
        unit=unit, name="关爱老人志愿服务队", kind=kind, leader=leader, now=T0, parent=parent
    )


def test_a_district_corps_with_detachments_and_specialised_teams() -> None:
    center, institute, station = network()
    leader = volunteer(station)
    corps = team(center, leader, TeamKind.CORPS)
    detachments = [team(center, leader, TeamKind.DETACHMENT, corps) for _ in range(8)]
    specialised = [
        Team.form(
            unit=institute,
            name=f"专业队{n}",
            kind=TeamKind.SPECIALISED,
            leader=leader,
            now=T0,
            parent=detachments[n % 8] if n % 2 else corps,
            specialty=Category.LEGAL_AID,
        )
        for n in range(22)
    ]
    assert corps.parent_team_id is None
    assert {d.parent_team_id for d in detachments} == {corps.id}
    assert all(s.specialty == Category.LEGAL_AID for s in specialised)
    assert len({t.id for t in [corps, *detachments, *specialised]}) == 31
    assert specialised[0].lineage == [center.id, institute.id]


@pytest.mark.parametrize(
    ("kind", "parent_kind", "code"),
    [
        (TeamKind.CORPS, TeamKind.CORPS, "wrong-parent-kind"),
        (TeamKind.DETACHMENT, None, "parent-required"),
        (TeamKind.DETACHMENT, TeamKind.DETACHMENT, "wrong-parent-kind"),
        (TeamKind.SPECIALISED, TeamKind.TEAM, "wrong-parent-kind"),
    ],
)
def test_a_team_sits_under_a_team_of_a_higher_kind(
    kind: TeamKind, parent_kind: TeamKind | None, code: str
) -> None:
    center, _, station = network()
    leader = volunteer(station)
    corps = team(center, leader, TeamKind.CORPS)
    parents = {
        None: None,
        TeamKind.CORPS: corps,
        TeamKind.DETACHMENT: team(center, leader, TeamKind.DETACHMENT, corps),
        TeamKind.TEAM: team(center, leader),
    }
    with pytest.raises(RuleViolationError) as err:
        team(center, leader, kind, parents[parent_kind])
    assert err.value.code == code


def test_a_team_must_lie_within_its_parents_unit_and_the_parent_must_be_active() -> None:
    center, institute, station = network()
    leader = volunteer(station)
    station_team = team(station, leader, TeamKind.SPECIALISED)
    with pytest.raises(RuleViolationError) as err:
        team(institute, leader, TeamKind.TEAM, station_team)
    assert err.value.code == "parent-outside-subtree"
    corps = team(center, leader, TeamKind.CORPS)
    corps.disband(now=T0, reason="改组")
    with pytest.raises(ConflictError) as conflict:
        team(center, leader, TeamKind.DETACHMENT, corps)
    assert conflict.value.code == "team-disbanded"


def test_the_leader_must_live_within_the_unit_and_be_active() -> None:
    center, institute, station = network()
    other_institute = PracticeUnit.open(
        code="i2", name="所2", tier=UnitTier.INSTITUTE, parent=center
    )
    other_station = PracticeUnit.open(
        code="s2", name="站2", tier=UnitTier.STATION, parent=other_institute
    )
    outsider = volunteer(other_station, 2)
    with pytest.raises(RuleViolationError) as err:
        team(institute, outsider)
    assert err.value.code == "outside-team-unit"
    suspended = volunteer(station, 3)
    suspended.suspend("违规")
    with pytest.raises(ConflictError) as conflict:
        team(station, suspended)
    assert conflict.value.code == "volunteer-suspended"
    institute.close("撤并")
    with pytest.raises(ConflictError):
        team(institute, volunteer(station, 4))


def test_members_join_and_leave_and_the_history_keeps_every_period() -> None:
    _, institute, station = network()
    leader, member = volunteer(station, 1), volunteer(station, 2)
    t = team(institute, leader)
    assert t.members == [leader.id]
    with acting_as("key:admin", T0):
        t.join(member, now=T0 + timedelta(days=1))
        t.leave(member.id, now=T0 + timedelta(days=2), reason="工作调动")
        t.join(member, now=T0 + timedelta(days=3), reason="回来了")
    assert t.members == [leader.id, member.id]
    periods = t.history[member.id]
    assert [(p.joined_at - T0).days for p in periods] == [1, 3]
    assert periods[0].left_at == T0 + timedelta(days=2)
    assert periods[1].left_at is None
    events = t.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Formed",
        "MemberJoined",
        "MemberLeft",
        "MemberJoined",
    ]
    left = events[2]
    assert isinstance(left, Team.MemberLeft)
    assert (left.actor, left.reason, left.volunteer_id) == ("key:admin", "工作调动", member.id)


def test_membership_refusals() -> None:
    _, institute, station = network()
    leader, member = volunteer(station, 1), volunteer(station, 2)
    t = team(institute, leader)
    t.join(member, now=T0)
    with pytest.raises(ConflictError) as err:
        t.join(member, now=T0)
    assert err.value.code == "already-a-member"
    with pytest.raises(ConflictError) as err:
        t.leave(volunteer(station, 3).id, now=T0, reason="x")
    assert err.value.code == "not-a-member"
    with pytest.raises(ConflictError) as err:
        t.leave(leader.id, now=T0, reason="x")
    assert err.value.code == "leader-cannot-leave"


def test_the_leader_hands_over_to_an_active_member() -> None:
    _, institute, station = network()
    leader, member, stranger = volunteer(station, 1), volunteer(station, 2), volunteer(station, 3)
    t = team(institute, leader)
    t.join(member, now=T0)
    with pytest.raises(ConflictError) as err:
        t.change_leader(stranger, reason="换届")
    assert err.value.code == "not-a-member"
    with pytest.raises(ConflictError) as err:
        t.change_leader(leader, reason="换届")
    assert err.value.code == "unchanged"
    t.change_leader(member, reason="换届")
    assert t.leader_id == member.id
    t.leave(leader.id, now=T0, reason="卸任")  # a former leader may leave
    assert t.members == [member.id]


def test_a_disbanded_team_takes_nothing_more() -> None:
    _, institute, station = network()
    t = team(institute, volunteer(station, 1))
    t.disband(now=T0, reason="任务完成")
    attempts: list[Callable[[], object]] = [
        lambda: t.join(volunteer(station, 2), now=T0),
        lambda: t.disband(now=T0, reason="again"),
        lambda: t.change_leader(volunteer(station, 2), reason="x"),
    ]
    for attempt in attempts:
        with pytest.raises(ConflictError) as err:
            attempt()
        assert err.value.code == "team-disbanded"


def test_replaying_the_events_rebuilds_the_team() -> None:
    _, institute, station = network()
    leader, member = volunteer(station, 1), volunteer(station, 2)
    t = team(institute, leader)
    t.join(member, now=T0 + timedelta(hours=1))
    t.leave(member.id, now=T0 + timedelta(hours=2), reason="x")
    copy = None
    for e in t.collect_events():
        copy = e.mutate(copy)
    assert isinstance(copy, Team)
    assert copy.history == t.history
    assert copy.members == [leader.id]


def test_an_activity_is_assigned_to_a_team_on_its_units_line() -> None:
    center, institute, station = network()
    leader = volunteer(station)
    act: Activity = activity(institute)
    corps = team(center, leader, TeamKind.CORPS)
    act.assign_to_team(corps.id, corps.lineage, "总队承接")
    assert act.team_id == corps.id
    below = team(station, leader)
    act.assign_to_team(below.id, below.lineage, "交给站点服务队")
    assert act.team_id == below.id
    with pytest.raises(ConflictError) as err:
        act.assign_to_team(below.id, below.lineage, "again")
    assert err.value.code == "unchanged"
    other_institute = PracticeUnit.open(
        code="i2", name="所2", tier=UnitTier.INSTITUTE, parent=center
    )
    with pytest.raises(RuleViolationError) as rule:
        act.assign_to_team(corps.id, other_institute.lineage, "x")
    assert rule.value.code == "team-outside-subtree"
    assigned = [e for e in act.collect_events() if isinstance(e, Activity.AssignedToTeam)]
    assert [e.reason for e in assigned] == ["总队承接", "交给站点服务队"]
