"""The ``civic`` command line against a real data directory (SQLite event store,
view databases and key store), run in-process through typer's test runner."""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from infra.settings import Settings
from projections.view_files import live_path, offered
from services import cli
from services.bootstrap import Platform, build_stream
from services.keys import KeyStore
from services.principals import Role

ENV = {
    "CIVIC_DOCUMENT_SECRET": "cli-test-document-secret-0123456789",
    "CIVIC_LOG_FORMAT": "json",
    "CIVIC_LOG_LEVEL": "WARNING",
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def civic(data_dir: Path) -> Iterator[Any]:
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli.app, [*args, "--data-dir", str(data_dir)], env=ENV)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    yield run


def authenticate(data_dir: Path, token: str) -> Any:
    store = KeyStore(data_dir / "keys.sqlite", cache_ttl=0)
    try:
        return store.authenticate(token)
    finally:
        store.close()


def keep_server_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """``serve`` exports its settings for the app factory: undo that afterwards."""
    for name, value in cli.server_environment(Settings(data_dir=data_dir)).items():
        monkeypatch.setenv(name, value)


def view_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a view database, except the stream bookkeeping."""
    with closing(sqlite3.connect(path)) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] not in ("stream_position", "dead_letters")
        ]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables}  # noqa: S608


def test_keys_create_prints_the_key_last_and_it_authenticates(civic: Any, data_dir: Path) -> None:
    result = civic("keys", "create", "--role", "admin", "--name", "ops")
    token = result.stdout.strip().splitlines()[-1]
    principal = authenticate(data_dir, token)
    assert principal is not None
    assert principal.role == Role.ADMIN
    assert principal.name == "ops"

    listed = json.loads(civic("keys", "list", "--json").stdout)
    assert [k["key_id"] for k in listed] == [principal.key_id]

    rotated = civic("keys", "rotate", principal.key_id).stdout.strip().splitlines()[-1]
    assert authenticate(data_dir, token) is None
    new = authenticate(data_dir, rotated)
    assert new is not None
    assert new.role == Role.ADMIN

    civic("keys", "revoke", new.key_id)
    assert authenticate(data_dir, rotated) is None
    assert civic("keys", "revoke", "no-such-key", ok=False).exit_code == 1


def test_scoped_keys_need_a_known_unit(civic: Any, data_dir: Path) -> None:
    assert civic("keys", "create", "--role", "unit_admin", ok=False).exit_code == 2
    civic("demo", "--volunteers", "20", "--months", "1")
    assert civic("keys", "create", "--role", "service", "--unit", "JB-99", ok=False).exit_code == 2
    token = civic("keys", "create", "--role", "unit_admin", "--unit", "JB-01").stdout
    principal = authenticate(data_dir, token.strip().splitlines()[-1])
    assert principal is not None
    assert principal.unit_id is not None


def test_demo_catch_up_status_and_rebuild(civic: Any, data_dir: Path) -> None:
    loaded = civic("demo", "--volunteers", "60", "--months", "1", "--seed", "5")
    assert "units          133 (1 center, 9 institutes, 123 stations)" in loaded.stdout
    assert "(0 refused)" in loaded.stdout

    again = civic("demo", "--volunteers", "60", "--months", "1", ok=False)
    assert again.exit_code == 1
    assert "not empty" in again.output

    civic("projections", "catch-up")
    status = json.loads(civic("projections", "status", "--json").stdout)
    rows = {p["name"]: p for p in status["projections"]}
    assert {"leaderboard", "unit_metrics", "audit_trail"} <= set(rows)
    assert all(p["lag"] == 0 and p["healthy"] and p["head"] > 0 for p in rows.values())
    assert status["server"] is None

    views = data_dir / "views"
    view = live_path(views, "leaderboard")
    assert view.name == "leaderboard.sqlite"
    before = view_rows(view)
    assert any(before.values())
    rebuilt = civic("projections", "rebuild", "leaderboard")
    assert "now serving" in rebuilt.stdout
    new_view = live_path(views, "leaderboard")
    assert new_view != view
    assert view_rows(new_view) == before
    assert [p.name for p in views.glob("leaderboard*.sqlite*")] == [new_view.name]
    status = json.loads(civic("projections", "status", "--json").stdout)
    assert {p["name"]: p["lag"] for p in status["projections"]}["leaderboard"] == 0

    assert civic("projections", "rebuild", "nope", ok=False).exit_code == 2
    assert "no dead letters" in civic("projections", "dead-letters", "leaderboard").stdout
    assert civic("projections", "dead-letters", "leaderboard", "--replay", "3", ok=False).exit_code


def test_a_rebuild_that_stalls_short_of_the_head_swaps_nothing_in(
    civic: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    civic("demo", "--volunteers", "20", "--months", "1", "--seed", "5")
    civic("projections", "catch-up")
    views = data_dir / "views"
    live = live_path(views, "leaderboard")
    before = view_rows(live)
    real_build_stream = build_stream  # what the CLI calls

    def stream_that_promises_more(*args: Any, **kwargs: Any) -> Any:
        # a stream whose head lies beyond what it delivers (as a Kafka topic whose
        # consumer cannot fetch): the rebuild must not swap in what it got
        stream = real_build_stream(*args, **kwargs)
        real_head = stream.head
        monkeypatch.setattr(stream, "head", lambda: real_head() + 5)
        return stream

    monkeypatch.setattr(cli, "build_stream", stream_that_promises_more)
    monkeypatch.setattr(cli, "IDLE_PATIENCE", 0.2)
    monkeypatch.setattr(cli, "FIRST_RECORDS_PATIENCE", 0.2)
    stalled = civic("projections", "rebuild", "leaderboard", ok=False)
    assert stalled.exit_code == 1
    assert "stalled at position" in stalled.output and "nothing was swapped" in stalled.output
    assert live_path(views, "leaderboard") == live
    assert view_rows(live) == before
    assert [p.name for p in views.glob("leaderboard*.sqlite*")] == [live.name]


def test_rebuild_offered_to_a_server_that_does_not_take_it_times_out(
    civic: Any, data_dir: Path
) -> None:
    civic("demo", "--volunteers", "30", "--months", "1")
    civic("projections", "catch-up")
    views = data_dir / "views"
    served = live_path(views, "unit_metrics")
    before = view_rows(served)

    server = cli.ServerLock(data_dir)
    assert server.acquire()
    try:
        server.describe({"pid": 4242, "projections": True})
        refused = civic("projections", "catch-up", ok=False)
        assert refused.exit_code == 1
        assert "4242" in refused.output
        waiting = civic("projections", "rebuild", "unit_metrics", "--wait", "1", ok=False)
        assert waiting.exit_code == 1
        assert "did not swap it in" in waiting.output
        offer = offered(views, "unit_metrics")
        assert offer is not None
        assert offer.exists()
        assert live_path(views, "unit_metrics") == served  # still serving the old version
    finally:
        server.release()

    # the next server takes the offer when it starts
    settings = Settings(data_dir=data_dir, document_secret=ENV["CIVIC_DOCUMENT_SECRET"])
    platform = Platform.build(settings)
    try:
        assert platform.swapper is not None
        platform.swapper.grace = 0.0
        assert platform.swapper.check() == ["unit_metrics"]
        assert live_path(views, "unit_metrics") == offer
        assert offered(views, "unit_metrics") is None
    finally:
        platform.close()
    assert view_rows(offer) == before
    deadline = time.monotonic() + 10
    while served.exists() and time.monotonic() < deadline:  # once reads holding it are done
        time.sleep(0.05)
    assert not served.exists()


def test_serve_creates_the_first_admin_key_once(
    civic: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "run_uvicorn", lambda settings, workers: None)
    keep_server_environment(monkeypatch, data_dir)
    first = civic("serve")
    key_file = data_dir / "admin-key"
    token = key_file.read_text().strip()
    assert token in first.stdout
    assert "ADMIN API KEY" in first.stdout
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    principal = authenticate(data_dir, token)
    assert principal is not None
    assert principal.role == Role.ADMIN

    second = civic("serve")
    assert "ADMIN API KEY" not in second.stdout
    assert key_file.read_text().strip() == token


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])  # noqa: S104
def test_serve_refuses_non_loopback_hosts(civic: Any, host: str) -> None:
    result = civic("serve", "--host", host, ok=False)
    assert result.exit_code == 2
    assert "loopback" in result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert cli.is_loopback(host)
