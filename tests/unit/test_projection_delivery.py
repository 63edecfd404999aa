"""Every read model under the runner: exactly once, poison events parked, restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic

from domain.orders import ServiceOrder
from domain.teams import Team
from domain.volunteers import Volunteer
from infra.embedded_stream import EmbeddedStream
from projections.base import Projection
from projections.catalog import PROJECTIONS, create
from projections.leaderboard import LeaderboardProjection
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import StreamRecord
from tests.unit.projection_fixtures import (
    Scenario,
    a_little_of_everything,
    dump,
    envelope,
    renumbered,
)

NAMES = sorted(PROJECTIONS)
POISONS: dict[str, type] = {"order_board": ServiceOrder.Placed, "team_metrics": Team.Formed}


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    """A little of everything: volunteers, service, awards, redemptions."""
    s = a_little_of_everything(tmp_path)
    yield s
    s.close()


def test_the_catalogue() -> None:
    assert NAMES == [
        "audit_trail",
        "leaderboard",
        "listings",
        "order_board",
        "team_metrics",
        "unit_metrics",
        "wish_board",
    ]
    for name in NAMES:
        projection = create(name, timezone="UTC")
        assert isinstance(projection, Projection)
        assert projection.name == name
    assert isinstance(create("leaderboard"), LeaderboardProjection)
    with pytest.raises(KeyError):
        create("nope")


@pytest.mark.parametrize("name", NAMES)
def test_applying_the_same_records_twice_changes_nothing(scenario: Scenario, name: str) -> None:
    runner = scenario.runner(create(name))
    records = scenario.records()
    assert runner.apply_records(records) == len(records)
    once = dump(runner.store)
    assert runner.apply_records(records) == 0
    assert runner.apply_records(records[3:7]) == 0
    assert dump(runner.store) == once
    assert runner.position == len(records)


@pytest.mark.parametrize("name", NAMES)
def test_small_batches_and_a_restart_give_the_same_view(scenario: Scenario, name: str) -> None:
    """One batch, or many small ones with the projection rebuilt from its tables
    half way (its in-memory look-ups gone), give identical views."""
    records = scenario.records()
    whole = scenario.runner(create(name))
    whole.apply_records(records)

    first = scenario.runner(create(name))
    half = len(records) // 2
    for i in range(0, half, 3):
        first.apply_records(records[i : min(i + 3, half)])
    restarted = scenario.runner(create(name), first.store)  # a new process, same database
    restarted.apply_records(records[half:])
    assert dump(restarted.store) == dump(whole.store)


def _poison(position: int, name: str = "audit_trail") -> StreamRecord:
    """A registration whose home is not a list of units: every read model that reads
    registrations refuses it; the order and team read models get an order placed, or
    a team formed, at such a place."""
    if name in POISONS:
        event_class = POISONS[name]
        return StreamRecord.of(
            0,
            position,
            envelope(
                event_class,
                position=position,
                aggregate_version=1,
                payload={"unit_id": str(uuid4()), "unit_path": 42},
            ),
        )
    env = envelope(
        Volunteer.Registered,
        position=position,
        aggregate_version=1,
        payload={
            "home_station_id": str(uuid4()),
            "home_path": 42,
            "name": "坏数据",
            "phone": "0",
            "document_masked": "x",
        },
    )
    return StreamRecord.of(0, position, env)


# the read models that follow volunteers (the wish board does not: see test_projection_wish_board)
FOLLOWING_VOLUNTEERS = [
    n for n in NAMES if get_topic(Volunteer.Registered) in create(n, timezone="UTC").topics
]


@pytest.mark.parametrize("name", FOLLOWING_VOLUNTEERS)
def test_a_poison_event_is_parked_and_the_rest_of_its_batch_applies(
    scenario: Scenario, name: str
) -> None:
    records = scenario.records()
    middle = len(records) // 2
    # the real events at positions 1..middle, the poison, then the rest
    batch = [
        *renumbered(records[:middle]),
        _poison(middle + 1, name),
        *renumbered(records[middle:], start=middle + 2),
    ]
    runner = scenario.runner(create(name))
    assert runner.apply_records(batch) == len(records)
    parked = runner.dead_letters()
    poison = POISONS.get(name, Volunteer.Registered)
    assert [(d["position"], d["type"]) for d in parked] == [(middle + 1, get_topic(poison))]
    error = str(parked[0]["error"])
    assert "home_path" in error or "lineage" in error or "unit_path" in error or "42" in error
    assert not runner.healthy
    assert runner.position == len(records) + 1

    # the same view as without the poison (except the positions and the dead letter)
    clean = scenario.runner(create(name))
    clean.apply_records(records)
    ignored = {"stream_position", "dead_letters", "audit_events", "audit_hours"}  # positions
    with_poison, without = dump(runner.store), dump(clean.store)
    assert {t: r for t, r in with_poison.items() if t not in ignored} == {
        t: r for t, r in without.items() if t not in ignored
    }
    # replaying it fails again: it stays parked
    with pytest.raises(TypeError):
        runner.replay_dead_letter(middle + 1)
    assert len(runner.dead_letters()) == 1


def test_the_audit_trail_records_the_rest_around_a_poison_event(scenario: Scenario) -> None:
    records = scenario.records()
    runner = scenario.runner(create("audit_trail"))
    runner.apply_records([*renumbered(records[:5]), _poison(6), *renumbered(records[5:], start=7)])
    positions = [
        r[0]
        for r in runner.store.reader().execute(
            "SELECT position FROM audit_events ORDER BY position"
        )
    ]
    assert positions == [p for p in range(1, len(records) + 2) if p != 6]


class CommitFault:
    """Makes the next save of stream positions fail: the batch's rows are written,
    then its transaction rolls back (as on a full disk), and the runner retries."""

    def __init__(self) -> None:
        self.armed = False
        self.fired = 0

    def __call__(self) -> None:
        if self.armed:
            self.armed = False
            self.fired += 1
            msg = "injected fault"
            raise RuntimeError(msg)

    def install(self, runner: ProjectionRunner) -> None:
        with runner.store.transaction() as conn:
            conn.create_function("commit_fault", 0, self)
            for action in ("INSERT", "UPDATE"):
                conn.execute(
                    f"CREATE TEMP TRIGGER fault_on_{action.lower()} BEFORE {action} "
                    "ON stream_position BEGIN SELECT commit_fault(); END"
                )


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_rolled_back_after_its_rows_were_written_is_applied_again(
    scenario: Scenario, name: str
) -> None:
    """What a projection remembers between batches must not outlive a rollback."""
    records = scenario.records()
    half = len(records) // 2
    runner = scenario.runner(create(name))
    fault = CommitFault()
    fault.install(runner)
    runner.apply_records(records[:half])
    fault.armed = True
    assert runner.apply_records(records[half:]) == len(records) - half
    assert fault.fired == 1
    assert runner.dead_letters() == []
    clean = scenario.runner(create(name))
    clean.apply_records(records)
    assert dump(runner.store) == dump(clean.store)


def _sent_again(records: list[StreamRecord], after_offset: int) -> list[StreamRecord]:
    """The records published a second time further along their partition (what a
    relay whose position was reset, or a second relay of another id, would send)."""
    return [
        StreamRecord(r.partition, after_offset + i, r.position, r.event)
        for i, r in enumerate(records, 1)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_events_sent_again_at_new_offsets_change_nothing(scenario: Scenario, name: str) -> None:
    records = scenario.records()
    half = len(records) // 2
    runner = scenario.runner(create(name))
    assert runner.apply_records(records) == len(records)
    once = dump(runner.store)
    last = records[-1].offset
    # the second half again, alone, then the whole history again mixed with new offsets
    assert runner.apply_records(_sent_again(records[half:], last)) == 0
    assert runner.apply_records(_sent_again(records, last + len(records))) == 0
    assert dump(runner.store) == once
    assert runner.position == len(records)


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_holding_originals_and_their_repeats_applies_each_event_once(
    scenario: Scenario, name: str
) -> None:
    records = scenario.records()
    half = len(records) // 2
    runner = scenario.runner(create(name))
    last = records[-1].offset
    # the first half, then a repeat of its end, then the rest: one poll's worth
    batch = [*records[:half], *_sent_again(records[half - 3 : half], last), *records[half:]]
    runner.apply_records(batch[: half + 3])
    runner.apply_records(batch[half + 3 :])
    clean = scenario.runner(create(name))
    clean.apply_records(records)
    assert dump(runner.store) == dump(clean.store)


@pytest.mark.parametrize("name", NAMES)
def test_a_stream_selecting_only_the_handled_types_gives_the_same_view(
    scenario: Scenario, name: str
) -> None:
    """A read model in a process of its own reads only the event types it handles
    (the embedded stream keeping nothing selects them in SQL): the same view, and its
    position still reaches the head, past the events of other types."""
    whole = scenario.project(create(name))
    selective = EmbeddedStream(scenario.app.recorder, keep_decoded=0)
    projection = create(name)
    runner = ProjectionRunner(
        projection, ViewStore(scenario.tmp_path / f"{name}-selective.sqlite"), selective
    )
    runner.catch_up(timeout=0)
    head = selective.head()
    assert runner.position == head
    assert dump(runner.store) == dump(whole.store)
    wanted = projection.subscribed
    decoded_all = wanted is None
    handled = 0
    for r in scenario.records():
        assert r.event is not None  # the scenario's stream decodes every event
        if wanted is None or r.event.type in wanted:
            handled += 1
    assert selective.decoded == handled  # the other types were never decoded
    assert decoded_all == (name == "audit_trail")
    if not decoded_all:
        assert handled < head
