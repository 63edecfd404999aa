"""Read indexes (``Projection.read_indexes``): a runner that starts far behind the
stream creates them once it has caught up; one near the head, at once. Either way
the read model's rows are the same, and so are its answers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.embedded_stream import EmbeddedStream
from projections.audit_trail import search as audit_search
from projections.catalog import create
from projections.group import RunnerGroup
from projections.leaderboard import top
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from tests.unit.projection_fixtures import T0, Scenario, a_little_of_everything, dump

INDEXED = ("audit_trail", "leaderboard")


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    s = a_little_of_everything(tmp_path)
    yield s
    s.close()


def indexes(store: ViewStore) -> set[str]:
    """The view's own indexes (not SQLite's automatic ones)."""
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql NOT NULL")
        return {r[0] for r in rows}
    finally:
        conn.close()


def declared(name: str) -> set[str]:
    """The index names a read model's ``read_indexes`` create."""
    return {s.split(" IF NOT EXISTS ")[1].split()[0] for s in create(name).read_indexes}


def runner(scenario: Scenario, name: str, bulk_lag: int, tag: str = "v") -> ProjectionRunner:
    store = ViewStore(scenario.tmp_path / f"{tag}-{name}.sqlite")
    stream = EmbeddedStream(scenario.app.recorder)
    return ProjectionRunner(create(name), store, stream, retry_backoff=0.0, bulk_lag=bulk_lag)


@pytest.mark.parametrize("name", INDEXED)
def test_the_read_models_declare_read_indexes(name: str) -> None:
    assert declared(name)
    assert all(s.startswith("CREATE INDEX IF NOT EXISTS ") for s in create(name).read_indexes)


@pytest.mark.parametrize("name", INDEXED)
def test_far_behind_the_read_indexes_come_once_caught_up(scenario: Scenario, name: str) -> None:
    far = runner(scenario, name, bulk_lag=5, tag="far")
    assert far.read_indexes_pending
    assert not indexes(far.store) & declared(name)
    far.apply_records(scenario.records()[:10])  # a batch, not yet at the head
    far.reached_head()  # an empty poll mid-way (Kafka): the lag says it is not there
    assert far.read_indexes_pending
    assert not indexes(far.store) & declared(name)
    far.catch_up(0)
    assert declared(name) <= indexes(far.store)
    assert not far.read_indexes_pending
    eager = runner(scenario, name, bulk_lag=0, tag="eager")
    assert declared(name) <= indexes(eager.store)  # at once
    eager.catch_up(0)
    assert dump(far.store) == dump(eager.store)
    assert indexes(far.store) == indexes(eager.store)


def test_near_the_head_the_read_indexes_come_at_once(scenario: Scenario) -> None:
    head = scenario.stream.head()
    near = runner(scenario, "audit_trail", bulk_lag=head + 1)
    assert not near.read_indexes_pending
    assert declared("audit_trail") <= indexes(near.store)


def test_a_restart_still_far_behind_keeps_deferring(scenario: Scenario) -> None:
    first = runner(scenario, "audit_trail", bulk_lag=5)
    first.apply_records(scenario.records()[:8])  # then killed: no index yet
    first.store.close()
    again = runner(scenario, "audit_trail", bulk_lag=5)  # same view file
    assert again.position == 8
    assert again.read_indexes_pending  # still more than 5 behind
    again.catch_up(0)
    assert declared("audit_trail") <= indexes(again.store)


def test_the_members_of_a_group_build_theirs_at_the_head(scenario: Scenario) -> None:
    stream = EmbeddedStream(scenario.app.recorder, keep_decoded=0)
    members = [
        ProjectionRunner(
            create(name),
            ViewStore(scenario.tmp_path / f"g-{name}.sqlite"),
            stream,
            retry_backoff=0.0,
            bulk_lag=5,
        )
        for name in INDEXED
    ]
    assert all(m.read_indexes_pending for m in members)
    RunnerGroup(members, stream).catch_up(0)
    for member in members:
        assert not member.read_indexes_pending
        assert declared(member.name) <= indexes(member.store)


def test_answers_are_the_same_with_and_without_the_read_indexes(scenario: Scenario) -> None:
    records = scenario.records()[:20]
    volunteer = next(
        str(r.event.aggregate_id)
        for r in records
        if r.event is not None and r.event.name == "Registered" and "home_path" in r.event.payload
    )
    answers = []
    for bulk_lag in (5, 0):
        audit = runner(scenario, "audit_trail", bulk_lag, tag=f"a{bulk_lag}")
        board = runner(scenario, "leaderboard", bulk_lag, tag=f"l{bulk_lag}")
        audit.apply_records(records)
        board.apply_records(scenario.records())  # the whole board, indexes still deferred
        center = str(scenario.units.center.id)
        answers.append(
            (
                audit_search(audit.store.reader(), volunteer_id=volunteer),
                audit_search(audit.store.reader(), unit_id=center, limit=5),
                top(board.store.reader(), unit_id=center, now=T0, period="all"),
                top(board.store.reader(), by="hours", now=T0, period="all"),
            )
        )
        assert audit.read_indexes_pending == (bulk_lag > 0)
    assert answers[0] == answers[1]
    assert answers[0][0].items  # something was found
    assert answers[0][2]


def test_a_view_that_has_them_builds_nothing_again(scenario: Scenario) -> None:
    first = runner(scenario, "audit_trail", bulk_lag=0)
    first.catch_up(0)
    first.store.close()
    store = ViewStore(scenario.tmp_path / "v-audit_trail.sqlite")  # the same view file
    written: list[str] = []
    store._writer.set_trace_callback(written.append)
    again = ProjectionRunner(create("audit_trail"), store, first.stream, bulk_lag=0)
    written.clear()  # (its tables' IF NOT EXISTS statements)
    again.build_read_indexes()
    assert not again.read_indexes_pending
    assert written == []  # not even a transaction
    fresh = ViewStore(scenario.tmp_path / "fresh.sqlite")
    fresh._writer.set_trace_callback(written.append)
    ProjectionRunner(create("leaderboard"), fresh, first.stream, bulk_lag=0)
    created = [w for w in written if w.startswith("CREATE INDEX")]
    assert len(created) == len(declared("leaderboard"))
