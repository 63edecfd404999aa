"""Used idempotency keys are forgotten after the retention period, on both event
stores: the oldest records go, chunk by chunk, the recent ones stay and still
replay; a key used again after it was forgotten is a new request; the events are
never touched. The API process prunes on its own (``infra/retention.py``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from infra import retention
from infra.settings import Settings
from services import commands as c
from services.api.app import create_app
from services.application import CivicApplication
from services.bootstrap import build_application
from services.keys import KeyStore
from services.principals import SYSTEM, Role
from tests.conftest import STORES, bearer, open_network, register_volunteer, store_settings

OLD = datetime.now(UTC) - timedelta(days=200)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with store_settings(request.param, tmp_path) as settings:
        yield settings


@pytest.fixture
def app(store: Settings) -> Iterator[CivicApplication]:
    application = build_application(store)
    yield application
    application.close()


def age(settings: Settings, keys: list[str], when: datetime = OLD) -> None:
    """Pretend these keys were used at ``when``."""
    if settings.event_store == "postgres":
        table = sql.Identifier(settings.postgres_schema, "idempotency_keys")
        with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {t} SET recorded_at = %s WHERE key = ANY(%s)").format(t=table),
                (when, keys),
            )
        return
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    with closing(sqlite3.connect(settings.events_db)) as db, db:
        marks = ", ".join("?" * len(keys))
        db.execute(
            f"UPDATE idempotency_keys SET recorded_at = ? WHERE key IN ({marks})",  # noqa: S608
            (stamp, *keys),
        )


def award(app: CivicApplication, volunteer: Any, key: str) -> int:
    result = app.execute(
        c.AwardPoints(volunteer_id=volunteer, points=1, reason=key), SYSTEM, idempotency_key=key
    )
    assert result.position is not None
    return result.position


def test_records_older_than_the_period_are_forgotten_and_recent_ones_replay(
    store: Settings, app: CivicApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, station = open_network(app)
    volunteer = register_volunteer(app, station)
    old_keys = [f"old-{i}" for i in range(5)]
    positions = {key: award(app, volunteer, key) for key in [*old_keys, "recent"]}
    age(store, old_keys)
    head = app.head()

    monkeypatch.setattr(retention, "CHUNK", 2)  # three chunks: 2, 2, 1
    pruned = retention.prune(app.recorder, datetime.now(UTC) - timedelta(days=90))  # type: ignore[arg-type]
    assert pruned == 5
    assert set(app.find_responses(SYSTEM.key_id, [*old_keys, "recent"])) == {"recent"}
    assert app.head() == head  # no event touched
    # the recent key still replays its first answer; a forgotten one is a new request
    assert award(app, volunteer, "recent") == positions["recent"]
    assert app.head() == head
    assert award(app, volunteer, "old-0") == head + 1
    assert retention.prune(app.recorder, datetime.now(UTC) - timedelta(days=90)) == 0  # type: ignore[arg-type]


def test_the_api_process_prunes_on_its_own(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        log_format="json",
        log_level="WARNING",
        idempotency_retention_days=30,
        idempotency_prune_interval=0.05,
    )
    keys = KeyStore(settings.keys_db)
    token = keys.create(Role.ADMIN, name="test")[1]
    keys.close()
    with TestClient(create_app(settings)) as http:
        headers = bearer(token)
        unit = http.post(
            "/v1/units",
            json={"code": "c", "name": "中心", "tier": "center"},
            headers={**headers, "Idempotency-Key": "unit-1"},
        )
        assert unit.status_code == 201, unit.text
        replay = http.post(
            "/v1/units",
            json={"code": "c", "name": "中心", "tier": "center"},
            headers={**headers, "Idempotency-Key": "unit-1"},
        )
        assert replay.headers.get("Idempotent-Replayed") == "true"
        age(settings, ["unit-1"], datetime.now(UTC) - timedelta(days=31))
        deadline = time.monotonic() + 10
        while _keys(settings) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _keys(settings) == []
        metrics = http.get("/metrics", headers=headers).text
        assert "civic_idempotency_records_pruned_total{pid=" in metrics
        assert any(
            line.startswith("civic_idempotency_records_pruned_total") and line.endswith(" 1")
            for line in metrics.splitlines()
        ), metrics
        again = http.post(
            "/v1/units",
            json={"code": "c", "name": "中心", "tier": "center"},
            headers={**headers, "Idempotency-Key": "unit-1"},
        )
        # a new request now: the unit code is taken, so the platform refuses it
        assert again.status_code == 409, again.text
        assert again.headers.get("Idempotent-Replayed") is None


def _keys(settings: Settings) -> list[str]:
    with closing(sqlite3.connect(settings.events_db)) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM idempotency_keys")]
