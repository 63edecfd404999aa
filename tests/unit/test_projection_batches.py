"""How the runner cuts the stream into transactions: polls gathered into large
batches, and a failing batch split in halves down to the event that fails."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from domain.base import acting_as
from domain.units import PracticeUnit, UnitTier
from infra.embedded_stream import EmbeddedStream
from infra.settings import Settings
from projections.base import Projection, handles
from projections.envelope import EventEnvelope
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import StreamRecord
from services.bootstrap import runner_factory
from tests.conftest import wait_until
from tests.unit.projection_fixtures import ACTOR


class EventsApp(Application[UUID]):
    """The library's application: records the units opened below."""


class Journal(Projection):
    """Notes each event it applies, and each transaction (``apply`` call), with its
    size; refuses the events at ``poison`` positions (their transaction rolls back)."""

    name = "journal"
    takes_every_event = True  # it has no handlers: ``apply`` notes every event

    def __init__(self, poison: Sequence[int] = ()) -> None:
        self.poison = set(poison)
        self.transactions: list[int] = []

    def create_tables(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS journal (position INTEGER NOT NULL)")

    def begin_batch(self, conn: sqlite3.Connection) -> None:
        return None

    def flush_batch(self, conn: sqlite3.Connection, batch: Any) -> None:
        return None

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        self.transactions.append(len(events))
        for e in events:
            if e.position in self.poison:
                msg = f"refused {e.position}"
                raise ValueError(msg)
            conn.execute("INSERT INTO journal VALUES (?)", (e.position,))

    @staticmethod
    def positions(store: ViewStore) -> list[int]:
        rows = store.reader().execute("SELECT position FROM journal ORDER BY rowid")
        return [int(r[0]) for r in rows]


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[EmbeddedStream]:
    """1,000 events in the store (units opened, 100 per save)."""
    app = EventsApp(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "events.db"),
        }
    )
    with acting_as(ACTOR):
        for k in range(10):
            app.save(
                *(
                    PracticeUnit.open(code=f"{k}-{i}", name="站", tier=UnitTier.CENTER, parent=None)
                    for i in range(100)
                )
            )
    yield EmbeddedStream(app.recorder)
    app.close()


def _runner(tmp_path: Path, stream: EmbeddedStream, projection: Journal, **options: Any) -> Any:
    store = ViewStore(tmp_path / f"{uuid4().hex}.sqlite")
    return ProjectionRunner(projection, store, stream, retry_backoff=0.0, **options)


def test_a_run_gathers_polls_into_one_transaction(tmp_path: Path, stream: EmbeddedStream) -> None:
    journal = Journal()
    runner = _runner(tmp_path, stream, journal, batch_size=700, poll_size=100)
    assert runner.run_once(0) == 700
    assert runner.run_once(0) == 300
    assert journal.transactions == [700, 300]
    assert Journal.positions(runner.store) == list(range(1, 1001))


def test_without_time_to_gather_a_run_applies_one_poll(
    tmp_path: Path, stream: EmbeddedStream
) -> None:
    journal = Journal()
    runner = _runner(tmp_path, stream, journal, batch_size=700, poll_size=100, gather_seconds=0)
    assert runner.run_once(0) == 100
    assert journal.transactions == [100]


def test_a_poison_event_is_found_by_halving_and_the_rest_applies_in_order(
    tmp_path: Path, stream: EmbeddedStream
) -> None:
    journal = Journal(poison=[377])
    runner = _runner(tmp_path, stream, journal, batch_size=1000, poll_size=1000)
    assert runner.catch_up(0) == 999
    assert Journal.positions(runner.store) == [p for p in range(1, 1001) if p != 377]
    assert [d["position"] for d in runner.dead_letters()] == [377]
    assert runner.position == 1000
    # halving: about two transactions per level (log2(1000) = 10), then the poison
    # event's retries; one event per transaction would have taken 1,000
    attempts = runner.max_attempts
    assert len(journal.transactions) <= 2 * 10 + 1 + attempts
    assert journal.transactions[:3] == [1000, 500, 250]


def test_two_poison_events_in_one_batch_are_both_parked(
    tmp_path: Path, stream: EmbeddedStream
) -> None:
    journal = Journal(poison=[2, 999])
    runner = _runner(tmp_path, stream, journal, batch_size=1000, poll_size=1000)
    runner.catch_up(0)
    assert [d["position"] for d in runner.dead_letters()] == [2, 999]
    assert Journal.positions(runner.store) == [p for p in range(1, 1001) if p not in (2, 999)]
    assert not runner.healthy


# -- the embedded stream's cache of decoded records -------------------------------------


def test_the_cache_evicts_the_least_recently_read(stream: EmbeddedStream) -> None:
    stream.keep_decoded = 3
    assert [r.offset for r in stream.read(0, 3)] == [1, 2, 3]
    assert stream.decoded == 3
    stream.read(0, 1)  # position 1 read again: now the most recently read
    stream.read(3, 1)  # position 4 decoded: position 2 goes
    assert stream.decoded == 4
    stream.read(0, 1)
    assert stream.decoded == 4  # 1 was kept
    stream.read(1, 1)
    assert stream.decoded == 5  # 2 was not


def test_a_stream_that_keeps_nothing_decodes_for_each_caller(stream: EmbeddedStream) -> None:
    stream.keep_decoded = 0
    assert [r.offset for r in stream.read(0, 300)] == list(range(1, 301))
    assert [r.offset for r in stream.read(100, 50)] == list(range(101, 151))
    assert stream.cached == 0
    assert stream.decoded == 350  # nothing kept: read again, decoded again


def test_subscribers_reading_the_same_stretch_at_once_decode_it_once(
    stream: EmbeddedStream,
) -> None:
    readers = 4
    start = threading.Barrier(readers)
    seen: list[list[int]] = []

    def read() -> None:
        start.wait()
        seen.append([r.offset for r in stream.read(0, 1000)])

    threads = [threading.Thread(target=read) for _ in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [list(range(1, 1001))] * readers
    assert stream.decoded == 1000


def test_records_come_from_the_cache_and_the_log_in_order(stream: EmbeddedStream) -> None:
    stream.read(0, 20)  # positions 1-20 cached
    records = stream.read(0, 50)  # 1-20 from the cache, 21-50 from the log
    assert [r.offset for r in records] == list(range(1, 51))
    assert stream.decoded == 50
    assert all(isinstance(r, StreamRecord) for r in records)


def test_records_every_subscriber_has_read_leave_the_cache(stream: EmbeddedStream) -> None:
    ahead = stream.subscribe("ahead", lambda ps: {0: -1})
    behind = stream.subscribe("behind", lambda ps: {0: -1})
    assert len(ahead.poll(100, 0)) == 100  # decodes 1-100
    assert len(behind.poll(60, 0)) == 60  # reads 1-60 from the cache
    assert len(ahead.poll(100, 0)) == 100  # decodes 101-200; 1-60 were read by both
    assert stream.cached == 140
    assert stream.decoded == 200
    assert [r.offset for r in behind.poll(40, 0)] == list(range(61, 101))  # still cached
    assert stream.decoded == 200
    behind.close()  # a closed subscription holds nothing back
    ahead.poll(10, 0)
    assert stream.cached == 10


def _open_unit(stream: EmbeddedStream, code: str) -> int:
    """Record one more event and wake the stream's subscribers, as the event store's
    writer does after a commit; returns its position."""
    with acting_as(ACTOR):
        unit = PracticeUnit.open(code=code, name="站", tier=UnitTier.CENTER, parent=None)
    mapper = EventsApp().mapper  # the library's own mapping of events to stored events
    stream.recorder.insert_events([mapper.to_stored_event(e) for e in unit.collect_events()])
    head = int(stream.recorder.max_notification_id() or 0)
    stream.notify(head)
    return head


def test_a_caught_up_runner_lingers_and_applies_what_came_meanwhile_at_once(
    tmp_path: Path, stream: EmbeddedStream
) -> None:
    journal = Journal()
    runner = _runner(tmp_path, stream, journal, linger=2.0)
    runner.catch_up()  # the history, without lingering
    runner.start()
    try:
        first = _open_unit(stream, "a")
        # read, and lingering
        wait_until(lambda: runner.subscribe().after == first, 10, interval=0.005)
        second = _open_unit(stream, "b")
        wait_until(lambda: runner.position == second, 10, interval=0.005)
    finally:
        runner.stop()
    assert journal.transactions[-1] == 2  # not [.., 1, 1]: one transaction for both
    assert Journal.positions(runner.store)[-2:] == [first, second]


def test_a_reader_waiting_for_a_position_cuts_the_linger_short(
    tmp_path: Path, stream: EmbeddedStream
) -> None:
    runner = _runner(tmp_path, stream, Journal(), linger=60.0)
    runner.catch_up()
    runner.start()
    try:
        position = _open_unit(stream, "a")
        wait_until(lambda: runner.subscribe().after == position, 10, interval=0.005)
        assert runner.wait_for(position, timeout=10.0)  # not after the 60 s linger
    finally:
        runner.stop()


def test_the_api_processs_runners_linger_as_configured(
    tmp_path: Path, stream: EmbeddedStream
) -> None:
    settings = Settings(data_dir=tmp_path, projection_linger=0.2)
    make = runner_factory(settings, stream)
    assert make("leaderboard", tmp_path / "leaderboard.sqlite").linger == 0.2
    assert _runner(tmp_path, stream, Journal()).linger == 0  # a runner's own default


# -- a stream that keeps nothing: each subscription selects its own types ------------

OPENED = get_topic(PracticeUnit.Opened)


class Renames(Journal):
    """A read model of renamed units only (the stream's store holds none)."""

    name = "renames"
    takes_every_event = False

    @handles(PracticeUnit.Renamed)
    def renamed(self, conn: sqlite3.Connection, batch: Any, envelope: EventEnvelope) -> None:
        conn.execute("INSERT INTO journal VALUES (?)", (envelope.position,))

    def apply(self, conn: sqlite3.Connection, events: Sequence[EventEnvelope]) -> None:
        self.transactions.append(len(events))
        Projection.apply(self, conn, events)  # through the handlers, as read models do


def test_a_shared_stream_delivers_every_event_whatever_the_types(stream: EmbeddedStream) -> None:
    subscription = stream.subscribe("s", lambda ps: {0: -1}, frozenset({"no.such:Type"}))
    records = subscription.poll(1000, 0)
    assert [r.offset for r in records] == list(range(1, 1001))
    assert all(r.event is not None for r in records)


def test_a_stream_keeping_nothing_selects_the_types_and_marks_how_far_it_read(
    stream: EmbeddedStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    selective = EmbeddedStream(stream.recorder, keep_decoded=0)
    monkeypatch.setattr("infra.embedded_stream.FILTERED_SPAN", 300)
    none = selective.subscribe("none", lambda ps: {0: -1}, frozenset({"no.such:Type"}))
    # no event of the type: records without an event, one per span scanned
    assert [(r.offset, r.event) for r in none.poll(100, 0)] == [(300, None)]
    assert [r.offset for r in none.poll(100, 0)] == [600]
    assert [r.offset for r in none.poll(100, 0)] + [r.offset for r in none.poll(100, 0)] == [
        900,
        1000,
    ]
    assert none.poll(100, 0) == []
    assert selective.decoded == 0
    # a wanted type: its events, decoded, up to the limit
    opened = selective.subscribe("opened", lambda ps: {0: 10}, frozenset({OPENED}))
    records = opened.poll(50, 0)
    assert [r.offset for r in records] == list(range(11, 61))
    assert all(r.event is not None and r.event.position == r.offset for r in records)
    assert selective.decoded == 50
    # a subscriber of no type at all moves straight to the head
    nothing = selective.subscribe("nothing", lambda ps: {0: -1}, frozenset())
    assert [(r.offset, r.event) for r in nothing.poll(100, 0)] == [(1000, None)]


def test_a_runner_of_types_the_store_lacks_reaches_the_head_and_serves_reads(
    tmp_path: Path, stream: EmbeddedStream
) -> None:
    selective = EmbeddedStream(stream.recorder, keep_decoded=0)
    renames = Renames()
    runner = _runner(tmp_path, selective, renames)
    assert runner.catch_up(0) == 1  # one record, without an event, for the 1,000
    assert runner.position == 1000
    assert renames.transactions == []  # no event to hand it: not called at all
    runner.start()
    try:
        position = _open_unit(selective, "a")  # of a type it does not handle
        assert runner.wait_for(position, timeout=10.0)  # read-your-writes still holds
    finally:
        runner.stop()
    assert Journal.positions(runner.store) == []
    assert selective.decoded == 0


def test_the_audit_trail_takes_every_event_and_the_others_their_handled_types() -> None:
    from projections.catalog import PROJECTIONS  # noqa: PLC0415

    for name, factory in PROJECTIONS.items():
        projection = factory()
        if name == "audit_trail":
            assert projection.subscribed is None
        else:
            assert projection.subscribed == projection.topics


def test_a_read_model_with_no_handlers_must_say_it_takes_every_event() -> None:
    class Silent(Journal):
        name = "silent"
        takes_every_event = False

    with pytest.raises(TypeError, match="takes_every_event"):
        _ = Silent().subscribed
    assert Journal().subscribed is None
