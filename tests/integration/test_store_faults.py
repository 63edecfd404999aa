"""A full disk and a locked database under the API: a clear problem (507, or 503
with Retry-After; machine-readable ``code``), nothing written, and the same
request succeeds once the condition clears.

The full disk is SQLite's own: a page budget (``PRAGMA max_page_count``) on the
store's write transactions makes SQLite fail with SQLITE_FULL exactly as when
the disk runs out. The lock is another connection holding a write transaction
past the store's lock timeout."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.sqlite import SQLiteCursor
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient

from infra.event_store import GroupCommitSQLiteRecorder, _Job
from infra.settings import Settings
from services.api.app import create_app
from services.application import CivicApplication
from services.bootstrap import Platform, build_runners, build_stream, event_store_env
from tests.integration.api_clients import register_network

UNLIMITED = 2_147_483_646


class PageBudgetRecorder(GroupCommitSQLiteRecorder):
    """The house recorder with a page budget on its write transactions."""

    max_pages: int | None = None

    def _insert_job(self, c: SQLiteCursor, job: _Job) -> None:
        c.execute(f"PRAGMA max_page_count = {self.max_pages or UNLIMITED}")
        super()._insert_job(c, job)


@pytest.fixture
def faulty(settings: Settings) -> Iterator[Platform]:
    env = {
        **event_store_env(settings),
        "APPLICATION_RECORDER_TOPIC": get_topic(PageBudgetRecorder),
        "SQLITE_LOCK_TIMEOUT": "1",  # seconds a write waits for the lock (the default: 30)
    }
    app = CivicApplication(env, document_secret=settings.document_secret_bytes())
    stream = build_stream(settings, app)
    platform = Platform(settings, app, stream, build_runners(settings, stream))
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture
def http(settings: Settings, faulty: Platform, admin_headers: dict[str, str]) -> Iterator[Any]:
    with TestClient(create_app(settings, faulty), headers=admin_headers) as client:
        yield client


def volunteers(http: Any, count: int) -> list[str]:
    return register_network(http, count, first_document=70_000)


def big_batch(people: list[str], items: int) -> dict[str, Any]:
    return {
        "items": [
            {
                "command": {
                    "type": "award_points",
                    "volunteer_id": people[i % len(people)],
                    "points": 1,
                    "reason": f"社区志愿服务表彰 第{i}项 " + "记录" * 40,
                }
            }
            for i in range(items)
        ]
    }


def keys_recorded(settings: Settings) -> set[str]:
    with sqlite3.connect(settings.events_db) as conn:
        return {str(r[0]) for r in conn.execute("SELECT key FROM idempotency_keys")}


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"].endswith(code)


def test_a_full_disk_is_507_writes_nothing_and_clears(
    http: Any, faulty: Platform, settings: Settings
) -> None:
    people = volunteers(http, 5)
    app, recorder = faulty.app, faulty.app.recorder
    assert isinstance(recorder, PageBudgetRecorder)
    with sqlite3.connect(settings.events_db) as conn:
        recorder.max_pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    head = app.head()
    batch = big_batch(people, 300)  # far more than the free room in the last pages

    full = http.post("/v1/batch", json=batch, headers={"Idempotency-Key": "awards-1"})
    assert_problem(full, 507, "event-store-full")
    assert app.head() == head
    assert not {k for k in keys_recorded(settings) if k.startswith("awards-1")}
    # reads still answer
    assert http.get(f"/v1/passbooks/{people[0]}").status_code == 200

    recorder.max_pages = None  # space freed
    done = http.post("/v1/batch", json=batch, headers={"Idempotency-Key": "awards-1"})
    assert done.status_code == 200, done.text
    assert done.json()["succeeded"] == 300
    assert app.head() == head + 300
    again = http.post("/v1/batch", json=batch, headers={"Idempotency-Key": "awards-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert app.head() == head + 300


def test_a_locked_store_is_503_with_retry_after_writes_nothing_and_clears(
    http: Any, faulty: Platform, settings: Settings
) -> None:
    people = volunteers(http, 2)
    app = faulty.app
    head = app.head()
    award = {"points": 5, "reason": "文明户评比"}
    holder = sqlite3.connect(settings.events_db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's long write transaction
        locked = http.post(
            f"/v1/passbooks/{people[0]}/awards", json=award, headers={"Idempotency-Key": "a-1"}
        )
        assert_problem(locked, 503, "event-store-busy")
        assert int(locked.headers["Retry-After"]) >= 1
        batch = http.post("/v1/batch", json=big_batch(people, 20))
        assert_problem(batch, 503, "event-store-busy")
        # reads go on (WAL), and nothing was written
        assert http.get(f"/v1/passbooks/{people[0]}").status_code == 200
        assert app.head() == head
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "a-1" not in keys_recorded(settings)

    retried = http.post(
        f"/v1/passbooks/{people[0]}/awards", json=award, headers={"Idempotency-Key": "a-1"}
    )
    assert retried.status_code == 201, retried.text
    assert app.head() == head + 1
    assert http.get(f"/v1/passbooks/{people[0]}").json()["balance"] == 5
