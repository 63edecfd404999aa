"""Tamper evidence against the real stores: a row edited or deleted directly in the
database (SQLite, and PostgreSQL when the suite started it) is named by
``verify``; a chain rewritten after an edit is caught by the signed checkpoint."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from infra.hash_chain import GENESIS, link
from infra.settings import Settings
from services import commands as c
from services.application import CivicApplication, ConcurrencyError
from services.audit import chain
from services.bootstrap import build_application
from services.principals import SYSTEM
from tests.conftest import STORES, open_network, register_volunteer, store_settings

PG_EVENTS = "civic_events"  # the library names the table after the application
SECRET = b"test-audit-secret-0123456789abcdef-xyz"


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    with store_settings(request.param, tmp_path) as settings:
        yield request.param, settings


@pytest.fixture
def app(store: tuple[str, Settings]) -> Iterator[CivicApplication]:
    application = build_application(store[1])
    application.clock = lambda: datetime(2025, 11, 3, 9, 0, tzinfo=UTC)
    yield application
    application.close()


def _history(app: CivicApplication) -> UUID:
    """A center, an institute, a station and a volunteer with a manual award."""
    center, _, station = open_network(app)
    volunteer = register_volunteer(app, station, id_number="11010519491231002X")
    app.execute(c.AwardPoints(volunteer_id=volunteer, points=5, reason="好人好事"), SYSTEM)
    return center


def _execute(store: tuple[str, Settings], sql: str, params: tuple[object, ...]) -> None:
    kind, settings = store
    if kind == "sqlite":
        with sqlite3.connect(settings.events_db) as conn:
            assert conn.execute(sql.replace("%s", "?"), params).rowcount == 1
        return
    assert settings.postgres_dsn is not None
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {settings.postgres_schema}")
        sql = sql.replace("rowid", "notification_id").replace("stored_events", PG_EVENTS)
        assert conn.execute(sql, params).rowcount == 1


def _award_position(app: CivicApplication) -> int:
    [award] = [
        n for n in app.recorder.select_notifications(1, 100) if n.topic.endswith("PointsAwarded")
    ]
    assert b'"points":5' in award.state
    return award.id


def _row(app: CivicApplication, position: int) -> tuple[UUID, str]:
    n = app.recorder.select_notifications(position, 1)[0]
    return n.originator_id, n.topic  # type: ignore[return-value]


def test_an_untouched_store_verifies(app: CivicApplication) -> None:
    _history(app)
    report = chain.verify(app, SECRET)
    assert report.ok
    assert report.events_checked == len(app.recorder.select_notifications(1, 100)) > 5
    assert report.first_break is None


def test_the_chain_is_the_hash_of_each_row_over_the_one_before(app: CivicApplication) -> None:
    _history(app)
    prev = GENESIS
    for n in app.recorder.select_notifications(1, 100):
        prev = link(prev, n.id, n.originator_id, n.originator_version, n.topic, n.state)
        assert chain.chain_table(app).hash_at(n.id) == prev


def test_an_edited_row_is_named(store: tuple[str, Settings], app: CivicApplication) -> None:
    _history(app)
    target = _award_position(app)
    aggregate, topic = _row(app, target)
    state = app.recorder.select_notifications(target, 1)[0].state
    forged = state.replace(b'"points":5', b'"points":500')
    assert forged != state
    _execute(store, "UPDATE stored_events SET state = %s WHERE rowid = %s", (forged, target))

    report = chain.verify(app, SECRET)
    assert not report.ok
    assert report.first_break is not None
    assert report.first_break.position == target
    assert report.first_break.kind == "altered"
    assert report.first_break.aggregate_id == aggregate
    assert report.first_break.type == topic.rpartition(":")[2]


def test_a_deleted_row_is_named(store: tuple[str, Settings], app: CivicApplication) -> None:
    _history(app)
    target = 3
    aggregate, _ = _row(app, target)
    _execute(store, "DELETE FROM stored_events WHERE rowid = %s", (target,))

    report = chain.verify(app, SECRET)
    assert not report.ok
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.kind) == (target, "missing")
    assert report.first_break.aggregate_id == aggregate
    assert report.first_break.type is not None
    assert report.first_break.type.startswith("PracticeUnit")


def test_a_row_deleted_with_its_link_is_named(
    store: tuple[str, Settings], app: CivicApplication
) -> None:
    _history(app)
    target = 2
    _execute(store, "DELETE FROM stored_events WHERE rowid = %s", (target,))
    _execute(store, "DELETE FROM event_chain WHERE notification_id = %s", (target,))

    report = chain.verify(app, SECRET)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.kind) == (target, "missing")


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(
    store: tuple[str, Settings], app: CivicApplication
) -> None:
    center = _history(app)
    outcomes = chain.create_checkpoints(
        app,
        SYSTEM,
        SECRET,
        quarter="2025-Q4",
        timezone="Asia/Shanghai",
        unit_ids=[center],
        now=lambda: datetime(2026, 1, 2, tzinfo=UTC),
    )
    assert [o.recorded for o in outcomes] == [True]
    assert outcomes[0].position == app.head() - 1  # the checkpoint itself comes after
    assert outcomes[0].subtree_events == app.head() - 1  # all of it is the center's subtree
    assert chain.verify(app, SECRET).ok

    # forge an event and rebuild every link after it, as someone with database access could
    target = _award_position(app)
    n = app.recorder.select_notifications(target, 1)[0]
    forged = n.state.replace(b'"points":5', b'"points":500')
    _execute(store, "UPDATE stored_events SET state = %s WHERE rowid = %s", (forged, target))
    prev = chain.chain_table(app).hash_at(target - 1) or GENESIS
    for m in app.recorder.select_notifications(target, 100):
        prev = link(prev, m.id, m.originator_id, m.originator_version, m.topic, m.state)
        _execute(store, "UPDATE event_chain SET hash = %s WHERE notification_id = %s", (prev, m.id))

    report = chain.verify(app, SECRET)
    assert report.breaks_total == 0  # the links agree with the rows again...
    assert not report.ok  # ...but not with what was signed
    [check] = report.checkpoints
    assert check.signature_valid
    assert not check.hash_matches


def test_a_forged_checkpoint_signature_is_refused(app: CivicApplication) -> None:
    center = _history(app)
    chain.create_checkpoints(
        app,
        SYSTEM,
        b"another-secret-entirely-0123456789abcdef",
        quarter="2025-Q4",
        timezone="Asia/Shanghai",
        unit_ids=[center],
        now=lambda: datetime(2026, 1, 2, tzinfo=UTC),
    )
    report = chain.verify(app, SECRET)
    assert not report.ok
    assert not report.checkpoints[0].signature_valid


def test_an_old_store_is_chained_when_first_opened(store: tuple[str, Settings]) -> None:
    first = build_application(store[1])
    _history(first)
    head = first.head()
    first.close()
    _execute_all(store, "DELETE FROM event_chain")
    reopened = build_application(store[1])
    try:
        assert chain.chain_table(reopened).head() is not None
        report = chain.verify(reopened, SECRET)
        assert report.ok
        assert report.events_checked == head
    finally:
        reopened.close()


def _execute_all(store: tuple[str, Settings], sql: str) -> None:
    kind, settings = store
    if kind == "sqlite":
        with sqlite3.connect(settings.events_db) as conn:
            conn.execute(sql)
        return
    assert settings.postgres_dsn is not None
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {settings.postgres_schema}")
        conn.execute(sql)


def test_the_chain_holds_under_concurrent_writers_and_rolled_back_commands(
    app: CivicApplication,
) -> None:
    """Many threads award points and race for the same idempotency keys: on SQLite
    several commands share a transaction and a losing one rolls back its savepoint;
    on PostgreSQL each transaction takes the table lock. The chain follows the
    store's order either way."""
    center = _history(app)
    [volunteer] = [
        n.originator_id
        for n in app.recorder.select_notifications(1, 100)
        if n.topic.endswith("Volunteer.Registered")
    ]
    principal = SYSTEM

    def award(i: int) -> None:
        with contextlib.suppress(ConcurrencyError):  # the same passbook, hard fought over
            app.execute(
                c.AwardPoints(volunteer_id=volunteer, points=1, reason=f"r{i % 10}"),
                principal,
                idempotency_key=f"award-{i % 10}",  # ten keys raced by four threads each
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(award, range(40)))
    report = chain.verify(app, SECRET)
    assert report.ok, report.first_break
    assert report.events_checked == len(app.recorder.select_notifications(1, 10_000))
    assert report.head_position == app.head()
    assert report.events_checked > 6  # some awards landed
    assert center is not None
