"""Shared fixtures: settings on a temporary data dir, the platform built from
them, an admin key, and an HTTP client running the real app (lifespan included,
so the projection runners run)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from services import commands as c
from services.api.app import create_app
from services.application import CivicApplication
from services.bootstrap import Platform
from services.keys import KeyStore
from services.principals import SYSTEM, Principal, Role

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_serial = itertools.count(1)

MintKey = Callable[..., str]


def wait_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run the tests marked slow (the long crash campaign)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def resident_id(serial: int | None = None) -> str:
    """A valid, unique 18-character resident identity number (GB 11643)."""
    n = next(_serial) if serial is None else serial
    body = f"110105{19800101 + n // 1000:08d}{n % 1000:03d}"
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


# the event stores a test can run on: ``@pytest.fixture(params=STORES)`` + ``store_settings``
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def store_settings(kind: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings on an event store of ``kind``: SQLite under ``tmp_path``, or a schema of
    its own on the PostgreSQL server infra/test.sh starts (skipped without one), dropped
    afterwards."""
    if kind != "postgres":
        yield Settings(data_dir=tmp_path)
        return
    dsn = os.environ.get("CIVIC_PG_DSN")
    if not dsn:
        pytest.skip("CIVIC_PG_DSN is not set (infra/test.sh starts PostgreSQL)")
    schema = f"t_{uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield Settings(
            data_dir=tmp_path, event_store="postgres", postgres_dsn=dsn, postgres_schema=schema
        )
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def open_network(app: CivicApplication) -> tuple[UUID, UUID, UUID]:
    """A center, an institute under it and a station under that (opened by the system);
    returns their ids in that order."""
    center = app.execute(c.OpenUnit(code="c", name="中心", tier="center"), SYSTEM)
    institute_cmd = c.OpenUnit(
        code="i", name="所", tier="institute", parent_id=center.result["unit_id"]
    )
    institute = app.execute(institute_cmd, SYSTEM)
    station_cmd = c.OpenUnit(
        code="s", name="站", tier="station", parent_id=institute.result["unit_id"]
    )
    station = app.execute(station_cmd, SYSTEM)
    return (
        UUID(center.result["unit_id"]),
        UUID(institute.result["unit_id"]),
        UUID(station.result["unit_id"]),
    )


def register_volunteer(
    app: CivicApplication,
    station: UUID,
    *,
    name: str = "王秀英",
    phone: str = "13800000001",
    id_number: str | None = None,
) -> UUID:
    """A volunteer registered at ``station`` by the system (a fresh identity number
    unless one is given)."""
    command = c.RegisterVolunteer(
        home_station_id=station, name=name, phone=phone, id_number=id_number or resident_id()
    )
    return UUID(app.execute(command, SYSTEM).result["volunteer_id"])


class Clock:
    """A settable clock for the application's "now" (events are stamped with it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def new_resident_id() -> Callable[[], str]:
    """A factory of valid, unique resident identity numbers."""
    return resident_id


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        document_secret="test-document-secret-0123456789abcdef",
        read_wait_timeout=5.0,
        log_format="json",
        log_level="INFO",
    )


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    built = Platform.build(settings)
    try:
        yield built
    finally:
        # each runner takes up to a poll interval to stop: stop them side by side
        with ThreadPoolExecutor(max_workers=max(len(built.runners), 1)) as pool:
            list(pool.map(lambda runner: runner.stop(), built.runners.values()))
        built.close()


@pytest.fixture
def clock(platform: Platform) -> Clock:
    """Install a settable clock as the application's clock."""
    fake = Clock()
    platform.app.clock = fake
    return fake


@pytest.fixture
def key_store(settings: Settings) -> Iterator[KeyStore]:
    store = KeyStore(settings.keys_db)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def mint_key(key_store: KeyStore) -> MintKey:
    """``mint_key(role, unit_id=None, name=...)`` → a plaintext API key."""

    def mint(role: Role | str, unit_id: UUID | str | None = None, name: str = "test") -> str:
        unit = UUID(str(unit_id)) if unit_id is not None else None
        _, token = key_store.create(Role(role), name, unit)
        return token

    return mint


@pytest.fixture
def admin_key(key_store: KeyStore) -> tuple[Principal, str]:
    return key_store.create(Role.ADMIN, "test admin")


@pytest.fixture
def admin_principal(admin_key: tuple[Principal, str]) -> Principal:
    return admin_key[0]


@pytest.fixture
def admin_headers(admin_key: tuple[Principal, str]) -> dict[str, str]:
    return bearer(admin_key[1])


@pytest.fixture
def client(settings: Settings, platform: Platform) -> Iterator[TestClient]:
    app = create_app(settings, platform)
    with TestClient(app) as test_client:
        yield test_client


def civic_process(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``civic ARGS...`` as a process of its own (the installed CLI's entry point),
    with ``env`` added to this environment; stdout and stderr piped, as text."""
    return subprocess.Popen(  # noqa: S603 - our own CLI, arguments from the tests
        [sys.executable, "-c", "from services.cli import main; main()", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
