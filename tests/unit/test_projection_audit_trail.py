"""The audit trail: every event, filters, keyset pages, and no personal data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from domain.base import acting_as
from domain.passbook import Passbook
from domain.volunteers import Volunteer
from projections import audit_trail
from projections.audit_trail import AuditEntry, AuditTrailProjection, domain_event_classes
from projections.envelope import EventEnvelope
from projections.runner import ProjectionRunner
from projections.stream import StreamRecord
from tests.unit.projection_fixtures import ACTOR, Scenario, envelope, uid

CLERK = "key:clerk"
PERSONAL = ("张三", "李四", "13911112222", "13933334444", "110***********002X")


@dataclass
class Trail:
    scenario: Scenario
    runner: ProjectionRunner
    p: Volunteer  # home A1
    r: Volunteer  # home B1

    def search(self, **filters: object) -> list[AuditEntry]:
        """Every match, page by page (small pages, to exercise the keyset)."""
        found: list[AuditEntry] = []
        after = None
        while True:
            page = audit_trail.search(
                self.runner.store.reader(),
                after_position=after,
                limit=7,
                **filters,  # type: ignore[arg-type]
            )
            found.extend(page.items)
            if page.next_after_position is None:
                return found
            after = page.next_after_position

    def names(self, **filters: object) -> list[str]:
        return [f"{e.aggregate_type}.{e.event_type}" for e in self.search(**filters)]


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[Trail]:
    s = Scenario(tmp_path)
    u = s.units
    p = s.volunteer(u.a1, "张三", phone="13911112222")
    r = s.volunteer(u.b1, "李四", phone="13933334444")
    at_a1, at_b1 = s.activity(u.a1), s.activity(u.b1)
    s.sign_up(at_a1, p)
    s.serve(at_a1, p, minutes=60)
    s.hold(at_a1)
    s.sign_up(at_b1, r)
    s.serve(at_b1, r, minutes=90)
    reward = s.reward(u.a, cost=3)
    s.fulfil(s.redeem(p, reward, actor=CLERK))
    with acting_as(ACTOR):
        p.update_profile(name="张三丰", phone="13911110000", reason="改名")
        u.a2.close("合并")
    s.app.save(p, u.a2)
    runner = s.project(AuditTrailProjection())
    yield Trail(s, runner, p, r)
    s.close()


def test_every_event_is_recorded_in_order(trail: Trail) -> None:
    entries = trail.search()
    head = trail.scenario.stream.head()
    assert [e.position for e in entries] == list(range(1, head + 1))
    first = entries[0]
    assert (first.aggregate_type, first.event_type, first.actor) == (
        "PracticeUnit",
        "Opened",
        ACTOR,
    )
    assert first.topic == "domain.units:PracticeUnit.Opened"
    assert first.aggregate_id == uid(trail.scenario.units.center)
    assert first.lineage == [uid(trail.scenario.units.center)]
    assert first.recorded_at.tzinfo is not None


def test_every_domain_event_type_is_subscribed() -> None:
    topics = AuditTrailProjection().topics
    assert {get_topic(c) for c in domain_event_classes()} <= topics
    assert get_topic(Passbook.PointsAwarded) in topics
    assert len(topics) >= 30


def test_filter_by_volunteer_finds_their_passbook_and_redemptions(trail: Trail) -> None:
    names = trail.names(volunteer_id=uid(trail.p))
    assert names == [
        "Volunteer.Registered",
        "Passbook.Opened",
        "Activity.SignedUp",
        "Activity.CheckedIn",
        "Activity.CheckedOut",
        "Activity.ServiceConfirmed",
        "Passbook.PointsAwarded",  # the passbook's event: found through the passbook
        "Passbook.PointsRedeemed",
        "Redemption.Requested",
        "Redemption.Fulfilled",  # found through the redemption
        "Volunteer.ProfileUpdated",
    ]
    assert all(e.volunteer_id == uid(trail.p) for e in trail.search(volunteer_id=uid(trail.p)))
    assert "Passbook.PointsAwarded" in trail.names(volunteer_id=uid(trail.r))
    assert trail.search(volunteer_id="00000000-0000-0000-0000-000000000000") == []


def test_filter_by_unit_covers_its_subtree(trail: Trail) -> None:
    u = trail.scenario.units
    everything = {e.position for e in trail.search()}
    center = {e.position for e in trail.search(unit_id=uid(u.center))}
    a = {e.position for e in trail.search(unit_id=uid(u.a))}
    a1 = {e.position for e in trail.search(unit_id=uid(u.a1))}
    b = {e.position for e in trail.search(unit_id=uid(u.b))}
    assert center == everything
    assert a1 < a < center
    assert a.isdisjoint(b)
    assert a | b == center - {1}  # all but the center's own opening
    assert "PracticeUnit.Opened" in trail.names(unit_id=uid(u.a1))
    assert trail.names(unit_id=uid(u.a2)) == ["PracticeUnit.Opened", "PracticeUnit.Closed"]
    # the reward is the institute's: its redemption is in A, not in A1 (p's home)
    assert "Redemption.Requested" in trail.names(unit_id=uid(u.a))
    assert "Redemption.Requested" not in trail.names(unit_id=uid(u.a1))
    # a passbook's events are at the volunteer's home
    assert trail.names(unit_id=uid(u.b1)).count("Passbook.PointsAwarded") == 1
    entry = trail.search(unit_id=uid(u.a1), type="PointsAwarded")[0]
    assert (entry.unit_id, entry.lineage) == (uid(u.a1), [uid(u.center), uid(u.a), uid(u.a1)])
    assert trail.search(unit_id="00000000-0000-0000-0000-000000000000") == []


def test_filter_by_actor_and_type(trail: Trail) -> None:
    assert trail.names(actor=CLERK) == [
        "Passbook.PointsRedeemed",
        "Reward.StockReserved",
        "Redemption.Requested",
    ]
    assert trail.names(type="PointsAwarded") == ["Passbook.PointsAwarded"] * 2
    assert trail.names(type="Passbook.PointsAwarded") == ["Passbook.PointsAwarded"] * 2
    assert trail.names(type=get_topic(Passbook.PointsAwarded)) == ["Passbook.PointsAwarded"] * 2
    assert trail.names(type="Closed") == ["Activity.Closed", "PracticeUnit.Closed"]
    assert trail.names(type="Activity.Closed") == ["Activity.Closed"]
    assert trail.names(type="NoSuchThing") == []
    assert trail.names(type="Opened", actor=CLERK) == []
    assert trail.names(volunteer_id=uid(trail.p), actor=CLERK, type="Requested") == [
        "Redemption.Requested"
    ]


def _apply(runner: ProjectionRunner, envelopes: list[EventEnvelope]) -> None:
    runner.apply_records([StreamRecord.of(0, e.position, e) for e in envelopes])


def test_filter_by_time_and_events_of_unknown_types(trail: Trail) -> None:
    head = trail.runner.position
    passbook_id = trail.scenario.passbooks[trail.p.id].id
    made = [
        envelope(
            Passbook.PointsAwarded,
            topic="elsewhere.module:Thing.Happened",
            position=head + n,
            aggregate_id=passbook_id,
            recorded_at=datetime(2020, 1, n, 12, 0, tzinfo=UTC),
            actor="system",
            payload={"n": n, "name": "秘密"},
        )
        for n in (1, 2, 3)
    ]
    _apply(trail.runner, made)
    since = datetime(2020, 1, 2, 12, 0, tzinfo=UTC)
    until = datetime(2020, 1, 3, 12, 0, tzinfo=UTC)
    found = trail.search(since=since, until=until)
    assert [(e.position, e.event_type, e.aggregate_type) for e in found] == [
        (head + 2, "Happened", "Thing")
    ]
    assert found[0].summary == {"n": 2}
    assert found[0].volunteer_id == uid(trail.p)  # an event of p's passbook
    assert len(trail.search(since=since)) == head + 2  # the two made ones, and all real ones
    assert [e.position for e in trail.search(until=since)] == [head + 1]
    with pytest.raises(ValueError, match="timezone-aware"):
        trail.search(since=datetime(2020, 1, 1))  # noqa: DTZ001 - the point of the test


def test_pages_are_keyset_pages(trail: Trail) -> None:
    conn = trail.runner.store.reader()
    first = audit_trail.search(conn, limit=5)
    assert [e.position for e in first.items] == [1, 2, 3, 4, 5]
    assert first.next_after_position == 5
    second = audit_trail.search(conn, limit=5, after_position=first.next_after_position)
    assert [e.position for e in second.items] == [6, 7, 8, 9, 10]
    head = trail.runner.position
    last = audit_trail.search(conn, limit=5, after_position=head - 3)
    assert [e.position for e in last.items] == [head - 2, head - 1, head]
    assert last.next_after_position is None
    exact = audit_trail.search(conn, limit=3, after_position=head - 3)
    assert exact.next_after_position is None


def test_summaries_keep_ids_and_numbers_but_no_personal_data(trail: Trail) -> None:
    entries = trail.search()
    registered = next(e for e in entries if e.event_type == "Registered")
    assert registered.summary == {
        "home_station_id": uid(trail.scenario.units.a1),
        "home_path": [
            uid(x)
            for x in (trail.scenario.units.center, trail.scenario.units.a, trail.scenario.units.a1)
        ],
    }
    awarded = next(e for e in entries if e.event_type == "PointsAwarded")
    assert awarded.summary["points"] == 10
    assert {"lot_id", "source_id", "activity_id", "awarded_at"} <= awarded.summary.keys()
    updated = next(e for e in entries if e.event_type == "ProfileUpdated")
    assert updated.summary == {"reason": "改名"}
    # nothing personal anywhere in the view's files
    store = trail.runner.store
    store.reader().execute("PRAGMA wal_checkpoint(FULL)")
    for path in Path(store.path).parent.glob(Path(store.path).name + "*"):
        data = path.read_bytes()
        for secret in (*PERSONAL, "张三丰", "13911110000"):
            assert secret.encode() not in data, (secret, path.name)


def test_time_windows_hold_when_recording_order_and_positions_disagree(trail: Trail) -> None:
    """Concurrent commands commit in an order slightly different from their clocks."""
    head = trail.runner.position
    passbook_id = trail.scenario.passbooks[trail.r.id].id
    times = [  # positions head+1.. recorded at (the second one before the first)
        datetime(2021, 6, 1, 13, 0, 5, tzinfo=UTC),
        datetime(2021, 6, 1, 12, 59, 55, tzinfo=UTC),
        datetime(2021, 6, 1, 14, 30, 0, tzinfo=UTC),
    ]
    _apply(
        trail.runner,
        [
            envelope(
                Passbook.PointsExpired,
                position=head + n,
                aggregate_id=passbook_id,
                recorded_at=at,
                payload={"points": n},
            )
            for n, at in enumerate(times, 1)
        ],
    )
    one_pm = datetime(2021, 6, 1, 13, 0, tzinfo=UTC)
    window = {"type": "PointsExpired"}
    assert [e.position for e in trail.search(since=one_pm, **window)] == [head + 1, head + 3]
    assert [e.position for e in trail.search(until=one_pm, **window)] == [head + 2]
    two_pm = datetime(2021, 6, 1, 14, 0, tzinfo=UTC)
    assert [e.position for e in trail.search(since=one_pm, until=two_pm)] == [head + 1]
    assert trail.search(since=datetime(2021, 6, 2, tzinfo=UTC), until=two_pm) == []
