"""A group of runners fed by one thread from one read of the log: each read model
ends as it would on its own, each event is decoded once, and a member that is
ahead, fails or leaves holds up none of the others."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from infra.embedded_stream import EmbeddedStream
from projections import view_files
from projections.catalog import create
from projections.envelope import EventEnvelope
from projections.group import RunnerGroup
from projections.leaderboard import LeaderboardProjection
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from services.view_swap import ViewSwapper
from tests.conftest import wait_until
from tests.unit.projection_fixtures import Scenario, a_little_of_everything, dump


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    s = a_little_of_everything(tmp_path)
    yield s
    s.close()


def _filtered(scenario: Scenario) -> EmbeddedStream:
    """A stream that keeps nothing decoded: each read selects its types (as in
    ``civic project``)."""
    return EmbeddedStream(scenario.app.recorder, keep_decoded=0)


def _runner(scenario: Scenario, name: str, stream: EmbeddedStream, tag: str) -> ProjectionRunner:
    store = ViewStore(scenario.tmp_path / f"{tag}-{name}.sqlite")
    return ProjectionRunner(create(name, timezone="UTC"), store, stream, retry_backoff=0.0)


def _alone(scenario: Scenario, name: str) -> dict[str, list[tuple[object, ...]]]:
    runner = _runner(scenario, name, _filtered(scenario), "alone")
    runner.catch_up(0)
    return dump(runner.store)


def test_a_group_builds_each_read_model_as_it_would_alone_decoding_each_event_once(
    scenario: Scenario,
) -> None:
    stream = _filtered(scenario)
    runners = [_runner(scenario, n, stream, "group") for n in ("leaderboard", "unit_metrics")]
    group = RunnerGroup(runners, stream)
    head = stream.head()
    assert group.catch_up(0) > 0
    for runner in runners:
        assert runner.position == head
        assert dump(runner.store) == _alone(scenario, runner.name), runner.name
    # one read of the union of their types: no event decoded twice
    wanted = runners[0].projection.topics | runners[1].projection.topics
    stored = scenario.app.recorder.select_notifications(start=1, limit=head)
    assert stream.decoded == sum(1 for n in stored if n.topic in wanted)


def test_a_member_ahead_skips_what_it_applied_and_the_others_catch_up(
    scenario: Scenario,
) -> None:
    stream = _filtered(scenario)
    ahead, behind = (_runner(scenario, n, stream, "g") for n in ("audit_trail", "leaderboard"))
    ahead.catch_up(0)
    before = dump(ahead.store)
    applied = ahead.stats.applied
    group = RunnerGroup([ahead, behind], stream)
    group.catch_up(0)
    assert behind.position == ahead.position == stream.head()
    assert dump(behind.store) == _alone(scenario, "leaderboard")
    assert dump(ahead.store) == before  # everything came again and changed nothing
    assert ahead.stats.applied == applied
    assert ahead.stats.duplicates_skipped > 0


class RefusingLeaderboard(LeaderboardProjection):
    """The leaderboard, refusing the event at one position (a poison event)."""

    def __init__(self, refuse: int) -> None:
        super().__init__(timezone="UTC")
        self.refuse = refuse

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        if any(e.position == self.refuse for e in events):
            msg = f"refused {self.refuse}"
            raise ValueError(msg)
        super().apply(conn, events)


def test_a_poison_event_is_parked_in_its_read_model_only(scenario: Scenario) -> None:
    stream = _filtered(scenario)
    stored = scenario.app.recorder.select_notifications(start=1, limit=1000)
    poison = next(n for n in stored if n.topic.endswith("Passbook.PointsAwarded")).id
    store = ViewStore(scenario.tmp_path / "poisoned.sqlite")
    leaderboard = ProjectionRunner(RefusingLeaderboard(poison), store, stream, retry_backoff=0.0)
    others = [_runner(scenario, n, stream, "p") for n in ("unit_metrics", "audit_trail")]
    RunnerGroup([leaderboard, *others], stream).catch_up(0)
    head = stream.head()
    assert all(r.position == head for r in (leaderboard, *others))
    assert [d["position"] for d in leaderboard.dead_letters()] == [poison]
    assert not leaderboard.healthy
    for runner in others:
        assert runner.healthy
        assert dump(runner.store) == _alone(scenario, runner.name), runner.name


def test_members_run_on_the_groups_thread_and_a_stopped_one_leaves(scenario: Scenario) -> None:
    stream = _filtered(scenario)
    first, second = (_runner(scenario, n, stream, "t") for n in ("leaderboard", "audit_trail"))
    group = RunnerGroup([first, second], stream, poll_timeout=0.02)
    first.start()  # a member has no thread of its own: the group runs it
    assert not first.running
    group.start()
    try:
        head = stream.head()
        assert first.wait_for(head, 10) and second.wait_for(head, 10)
        assert first.running and second.running and first.alive
        first.stop()
        assert not first.running
        assert group.members == [second]
        assert group.name == "leaderboard+audit_trail"  # (on Kafka: its consumer group)
        stopped_at = first.position
        scenario.volunteer(scenario.units.a2, "r")  # new events: only the member left
        stream.notify(stream.head())
        assert second.wait_for(stream.head(), 10)
        assert first.position == stopped_at
    finally:
        group.stop()
    assert not second.running


def test_the_swapper_replaces_a_member_with_a_runner_of_its_own(
    scenario: Scenario, tmp_path: Path
) -> None:
    views = tmp_path / "views"
    views.mkdir()
    stream = _filtered(scenario)

    def make(name: str, path: Path) -> ProjectionRunner:
        return ProjectionRunner(create(name, timezone="UTC"), ViewStore(path), stream)

    runners = {n: make(n, view_files.live_path(views, n)) for n in ("leaderboard", "audit_trail")}
    group = RunnerGroup(list(runners.values()), stream, poll_timeout=0.02)
    group.start()
    swapper = ViewSwapper(views, runners, make, grace=0.0)
    try:
        old = runners["leaderboard"]
        assert old.wait_for(stream.head(), 10)
        rebuilt = views / "leaderboard-2.sqlite"
        fresh = make("leaderboard", rebuilt)
        fresh.catch_up(0)
        fresh.store.close()
        view_files.offer(views, "leaderboard", rebuilt)
        assert swapper.check() == ["leaderboard"]
        new = runners["leaderboard"]
        assert new is not old and new.running and not old.running
        assert group.members == [runners["audit_trail"]]
        scenario.volunteer(scenario.units.b1, "s")
        stream.notify(stream.head())
        head = stream.head()
        assert new.wait_for(head, 10) and runners["audit_trail"].wait_for(head, 10)
        wait_until(lambda: not Path(old.store.path).exists(), 10, what="the old version removed")
    finally:
        swapper.stop()
        group.stop()
        for runner in runners.values():
            runner.stop()
