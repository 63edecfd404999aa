"""Reading the notification log as rows: one SELECT on SQLite, the recorder's
notifications on PostgreSQL; the same rows either way, also filtered by topic and
bounded by a stop position (what a read model in a process of its own reads), and
the relay reading through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification
from eventsourcing.sqlite import SQLiteApplicationRecorder

from infra.envelopes import envelope_from_notification, envelope_from_row
from infra.relay import Relay
from infra.stored_rows import RowReader, StoredRow
from services.application import CivicApplication
from services.bootstrap import build_application
from services.demo import DemoConfig, generate, load
from tests.conftest import STORES, store_settings


@pytest.fixture(params=STORES)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CivicApplication]:
    with store_settings(request.param, tmp_path) as settings:
        application = build_application(settings)
        plan = generate(
            DemoConfig(seed=11, volunteers=30, months=1),
            document_secret=application.document_secret,
            points_rule=application.points_rule,
        )
        assert not load(application, plan).failed
        yield application
        application.close()


def _row(n: Notification) -> tuple[int, UUID, int, str, bytes]:
    return (n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)


def _plain(rows: list[StoredRow]) -> list[tuple[int, UUID, int, str, bytes]]:
    return [(p, UUID(str(i)), v, t, s) for p, i, v, t, s in rows]


def test_a_reader_selects_by_topic_and_up_to_a_stop(app: CivicApplication) -> None:
    reader = RowReader(app.recorder)
    assert (reader._select is not None) == isinstance(app.recorder, SQLiteApplicationRecorder)
    stored = app.recorder.select_notifications(start=1, limit=app.head())
    counts: dict[str, int] = {}
    for n in stored:
        counts[n.topic] = counts.get(n.topic, 0) + 1
    common = sorted(counts, key=lambda t: (-counts[t], t))[:2]
    after, stop = stored[10].id, stored[-20].id
    expected = [_row(n) for n in stored if after < n.id <= stop and n.topic in common]
    assert expected
    assert _plain(list(reader.read(after, 1_000_000, topics=common, stop=stop))) == expected
    assert _plain(list(reader.read(after, 5, topics=common, stop=stop))) == expected[:5]
    assert _plain(list(reader.read(after, 7, stop=stop))) == [
        _row(n) for n in stored if after < n.id <= after + 7
    ]
    assert reader.read(stop, 10, topics=common, stop=stop) == []
    assert reader.read(0, 10, topics=["no.such:Topic"]) == []


def test_the_relay_reads_what_the_notification_log_holds(app: CivicApplication) -> None:
    relay = Relay(app.recorder, "127.0.0.1:9")  # reading connects to no broker
    on_sqlite = isinstance(app.recorder, SQLiteApplicationRecorder)
    assert (relay._rows._select is not None) == on_sqlite  # the table directly on SQLite
    head = app.head()
    expected = [_row(n) for n in app.recorder.select_notifications(start=1, limit=head)]
    rows: list[StoredRow] = []
    after = 0
    while batch := relay.read(after, 97):
        assert len(batch) <= 97
        rows += batch
        after = batch[-1][0]
    assert _plain(rows) == expected
    assert relay.read(head, 10) == []
    middle = expected[len(expected) // 2][0]
    assert [r[0] for r in relay.read(middle, 3)] == [middle + 1, middle + 2, middle + 3]


def test_an_envelope_from_a_row_is_the_envelope_of_its_notification(
    app: CivicApplication,
) -> None:
    rows = RowReader(app.recorder).read(0, 1_000_000)
    stored = app.recorder.select_notifications(start=1, limit=app.head())
    assert len(rows) == len(stored)
    for row, n in zip(rows, stored, strict=True):
        assert envelope_from_row(*row) == envelope_from_notification(n)
