"""The relay reads the notification log with one SELECT on SQLite and through the
recorder on PostgreSQL: the same events, in the same order, either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.sqlite import SQLiteApplicationRecorder

from infra.relay import Relay
from infra.stored_rows import StoredRow
from services.application import CivicApplication
from services.bootstrap import build_application
from services.demo import DemoConfig, generate, load
from tests.conftest import STORES, store_settings


@pytest.fixture(params=STORES)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CivicApplication]:
    with store_settings(request.param, tmp_path) as settings:
        application = build_application(settings)
        plan = generate(
            DemoConfig(seed=5, volunteers=30, months=1),
            document_secret=application.document_secret,
            points_rule=application.points_rule,
        )
        assert not load(application, plan).failed
        yield application
        application.close()


def test_the_relay_reads_what_the_notification_log_holds(app: CivicApplication) -> None:
    relay = Relay(app.recorder, "127.0.0.1:9")  # reading connects to no broker
    head = app.head()
    notifications = app.recorder.select_notifications(start=1, limit=head)
    expected = [
        (n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)
        for n in notifications
    ]
    rows: list[StoredRow] = []
    after = 0
    while batch := relay.read(after, 97):
        assert len(batch) <= 97
        rows += batch
        after = batch[-1][0]
    assert [(p, UUID(str(i)), v, t, s) for p, i, v, t, s in rows] == expected
    assert relay.read(head, 10) == []
    middle = expected[len(expected) // 2][0]
    assert [r[0] for r in relay.read(middle, 3)] == [middle + 1, middle + 2, middle + 3]


def test_on_sqlite_it_reads_the_table_directly(app: CivicApplication) -> None:
    relay = Relay(app.recorder, "127.0.0.1:9")
    on_sqlite = isinstance(app.recorder, SQLiteApplicationRecorder)
    assert (relay._rows._select is not None) == on_sqlite
