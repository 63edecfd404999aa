"""``civic backup`` and ``civic restore``.

Under load: backups taken while four clients post awards to a running server are
each an exact prefix of the live store (the same rows, byte for byte, up to the
manifest's head), hold every request whole or not at all, and, restored into a
new data directory and served, answer the balances and the personal data of that
moment. On the command line: a damaged backup, other secrets than the backup's,
an existing store and a running server are each refused before anything changes;
``--force`` moves the replaced store aside rather than deleting it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from infra.backup import describe, read_manifest
from infra.settings import Settings
from services import cli
from services.keys import KeyStore
from tests.integration.api_clients import Clients, committed_items, idempotency_keys, open_network
from tests.integration.conftest import DOCUMENT_SECRET
from tests.integration.crash_harness import ApiServer, civic_command, process_env

SEED = 11

ENV = {
    "CIVIC_DOCUMENT_SECRET": DOCUMENT_SECRET,
    "CIVIC_LOG_FORMAT": "json",
    "CIVIC_LOG_LEVEL": "WARNING",
}


def rows(events_db: Path, up_to: int) -> list[tuple[Any, ...]]:
    """The store's rows up to a position, as stored."""
    with closing(sqlite3.connect(f"file:{events_db}?mode=ro", uri=True)) as conn:
        return conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
            "WHERE rowid <= ? ORDER BY rowid",
            (up_to,),
        ).fetchall()


def head_of(events_db: Path) -> int:
    with closing(sqlite3.connect(f"file:{events_db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0] or 0)


def in_scratch(backup: Path, scratch: Path) -> Path:
    """A copy of a backup to open with the application (which would write beside it)."""
    shutil.copytree(backup, scratch)
    return scratch


# -- under load, through a real server ---------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        document_secret=DOCUMENT_SECRET,
        log_format="json",
        log_level="WARNING",
    )
    server = ApiServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.e2e
def test_backups_under_load_are_prefixes_and_restore_to_a_serving_platform(
    server: ApiServer, tmp_path: Path
) -> None:
    data = server.settings.data_dir
    token = (data / "admin-key").read_text().strip()
    volunteers = open_network(server, token, 12)
    backups = [tmp_path / "backup-1", tmp_path / "backup-2"]
    with Clients(server, token, volunteers, SEED) as clients:
        for target in backups:
            time.sleep(0.8)
            done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
                civic_command("backup", str(target)),
                env=process_env(server.settings),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        time.sleep(0.3)
    assert not clients.errors, clients.errors[:5]
    live_head = head_of(data / "events.sqlite")
    manifests = [read_manifest(b) for b in backups]
    assert 0 < manifests[0].head_position < manifests[1].head_position < live_head

    volunteer_of = {
        f"{r.key}#{j}": (
            r.body["items"][j]["command"]["volunteer_id"]
            if r.path == "/v1/batch"
            else r.path.split("/")[3]  # /v1/passbooks/{volunteer}/awards
        )
        for r in clients.requests
        for j in range(r.items)
    }
    for backup, manifest in zip(backups, manifests, strict=True):
        # an exact prefix of the live store, and its chain verified up to its head
        assert manifest.events_checked == manifest.head_position
        copied = rows(backup / "events.sqlite", manifest.head_position + 1_000_000)
        assert copied == rows(data / "events.sqlite", manifest.head_position)
        # every request whole or absent, its idempotency key recorded with it
        scratch = in_scratch(backup, tmp_path / f"scratch-{backup.name}")
        items = committed_items(scratch / "events.sqlite")
        keys = idempotency_keys(scratch / "events.sqlite")
        for r in clients.requests:
            recorded = sum(items.get(f"{r.key}#{j}", 0) for j in range(r.items))
            assert recorded in (0, r.items), r
            assert (r.key in keys or f"{r.key}/0" in keys) == (recorded > 0), r

    # the later backup restored into a new data directory, then served
    restored = Settings(
        data_dir=tmp_path / "restored", document_secret=DOCUMENT_SECRET, log_format="json"
    )
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        civic_command("restore", str(backups[1])),
        env=process_env(restored),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    items = committed_items(in_scratch(backups[1], tmp_path / "expected") / "events.sqlite")
    expected: Counter[str] = Counter()
    for reason, n in items.items():
        expected[volunteer_of[reason]] += n
    again = ApiServer(restored)
    again.start()
    try:
        headers = {"Authorization": f"Bearer {token}"}  # the key store came back too
        with httpx.Client(base_url=again.url, headers=headers, timeout=30) as http:
            at = manifests[1].head_position
            for volunteer in volunteers:
                passbook = http.get(f"/v1/passbooks/{volunteer}", params={"min_position": at})
                assert passbook.status_code == 200, passbook.text
                assert passbook.json()["balance"] == expected[volunteer]
                profile = http.get(f"/v1/volunteers/{volunteer}")
                assert profile.status_code == 200, profile.text
                assert profile.json()["name"] == "王秀英"  # the vault came back too
    finally:
        again.stop()
    print(  # noqa: T201 - the figures for the README
        f"\nbackups under load: heads {[m.head_position for m in manifests]} of {live_head}, "
        f"{len(clients.requests)} requests, {sum(expected.values())} awards restored"
    )


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def civic() -> Any:
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> Result:
        result = runner.invoke(cli.app, list(args), env={**ENV, **(env or {})})
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return run


@pytest.fixture
def source(civic: Any, tmp_path: Path) -> Path:
    """A small demo network, with an API key (in ``api-key`` beside it)."""
    data = tmp_path / "source"
    civic("demo", "--volunteers", "40", "--months", "1", "--data-dir", str(data))
    created = civic("keys", "create", "--role", "admin", "--data-dir", str(data))
    (tmp_path / "api-key").write_text(created.stdout.strip().splitlines()[-1])
    return data


def test_a_backup_restores_the_same_store_keys_and_secrets(
    civic: Any, source: Path, tmp_path: Path
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    civic("backup", str(backup), "--data-dir", str(source))
    manifest = read_manifest(backup)
    assert manifest.head_position == head_of(source / "events.sqlite") > 0
    assert {f.name for f in manifest.files} == {
        "events.sqlite",
        "vault.sqlite",
        "keys.sqlite",
        "vault-master-key",
    }
    # secrets from the environment are fingerprinted, never copied
    assert {(s.name, s.source) for s in manifest.secrets} == {
        ("document_secret", "environment"),
        ("vault_master_key", "data-dir"),
    }
    assert DOCUMENT_SECRET not in (backup / "manifest.json").read_text()
    assert (backup / "vault-master-key").stat().st_mode & 0o777 == 0o600

    civic("restore", str(backup), "--data-dir", str(target))
    assert rows(target / "events.sqlite", 10**9) == rows(source / "events.sqlite", 10**9)
    assert not (target / "views").exists()  # rebuilt from the history at the next start
    verified = civic("audit", "verify", "--json", "--data-dir", str(target))
    report = json.loads(verified.stdout)
    assert report["ok"] and report["head_hash"] == manifest.chain_head
    keys = KeyStore(target / "keys.sqlite", cache_ttl=0)
    try:
        assert keys.authenticate((tmp_path / "api-key").read_text()) is not None
    finally:
        keys.close()


def test_a_damaged_or_incomplete_backup_is_refused_and_nothing_changes(
    civic: Any, source: Path, tmp_path: Path
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    civic("backup", str(backup), "--data-dir", str(source))
    events = backup / "events.sqlite"
    original = events.read_bytes()
    events.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    refused = civic("restore", str(backup), "--data-dir", str(target), code=1)
    assert "events.sqlite: differs from the manifest" in refused.output
    assert not (target / "events.sqlite").exists()
    events.write_bytes(original)
    (backup / "manifest.json").unlink()
    refused = civic("restore", str(backup), "--data-dir", str(target), code=2)
    assert "no manifest.json" in refused.output
    assert not (target / "events.sqlite").exists()


def test_a_restore_refuses_other_secrets_than_the_backups(
    civic: Any, source: Path, tmp_path: Path
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    civic("backup", str(backup), "--data-dir", str(source))
    other = {"CIVIC_DOCUMENT_SECRET": "another-document-secret-0123456789abcdef"}
    refused = civic("restore", str(backup), "--data-dir", str(target), env=other, code=1)
    assert "CIVIC_DOCUMENT_SECRET differs" in refused.output
    assert not target.exists() or not any(target.iterdir())


def test_a_restore_over_a_store_needs_force_and_moves_it_aside(
    civic: Any, source: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    civic("backup", str(backup), "--data-dir", str(source))
    civic("projections", "catch-up", "--data-dir", str(source))
    before = rows(source / "events.sqlite", 10**9)
    refused = civic("restore", str(backup), "--data-dir", str(source), code=1)
    assert "already holds a store" in refused.output
    assert rows(source / "events.sqlite", 10**9) == before

    lock = cli.ServerLock(source)  # what `civic serve` holds while it runs
    assert lock.acquire()
    try:
        refused = civic("restore", str(backup), "--data-dir", str(source), "--force", code=1)
        assert "is running" in refused.output
    finally:
        lock.release()

    reader = subprocess.Popen(  # noqa: S603 - a reader of the store, as `civic project` is
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('SELECT 1 FROM stored_events'); print('open', flush=True); time.sleep(60)",
            str(source / "events.sqlite"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == b"open\n"
        refused = civic("restore", str(backup), "--data-dir", str(source), "--force", code=1)
        assert f"pid {reader.pid}" in refused.output
    finally:
        reader.kill()
        reader.wait()
    assert rows(source / "events.sqlite", 10**9) == before

    civic("restore", str(backup), "--data-dir", str(source), "--force")
    (aside,) = source.glob("replaced-*")
    assert rows(aside / "events.sqlite", 10**9) == before  # moved, not deleted
    assert (aside / "views").is_dir() and not (source / "views").exists()
    assert rows(source / "events.sqlite", 10**9) == before  # the backup was of this store


def test_backup_refuses_a_directory_that_is_not_empty(
    civic: Any, source: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "something").write_text("x")
    refused = civic("backup", str(backup), "--data-dir", str(source), code=2)
    assert "not empty" in refused.output


def test_with_postgres_backup_says_to_use_pg_dump(civic: Any, tmp_path: Path) -> None:
    postgres = {
        "CIVIC_EVENT_STORE": "postgres",
        "CIVIC_POSTGRES_DSN": "postgresql://civic:civic@127.0.0.1:55432/civic",
    }
    refused = civic(
        "backup", str(tmp_path / "b"), "--data-dir", str(tmp_path / "d"), env=postgres, code=2
    )
    assert "pg_dump" in refused.output
    assert not (tmp_path / "b").exists()


def test_restore_check_verifies_a_backup_without_changing_anything(
    civic: Any, source: Path, tmp_path: Path
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    civic("backup", str(backup), "--data-dir", str(source))
    lock = cli.ServerLock(target)  # a server may run there: a check does not mind
    assert lock.acquire()
    try:
        checked = civic("restore", str(backup), "--data-dir", str(target), "--check")
    finally:
        lock.release()
    assert "is restorable" in checked.output
    assert not (target / "events.sqlite").exists()
    assert not list(backup.glob("*.writer-lock"))

    # an event altered in the copy, and the manifest's checksum made to match it
    with closing(sqlite3.connect(backup / "events.sqlite")) as db, db:
        (state,) = db.execute("SELECT state FROM stored_events WHERE rowid = 5").fetchone()
        altered = bytes(state).replace(b'"name":"', b'"name":"X', 1)
        assert altered != state
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = 5", (altered,))
    manifest = read_manifest(backup)
    files = [describe(backup / f.name) if f.name == "events.sqlite" else f for f in manifest.files]
    (backup / "manifest.json").write_text(
        manifest.model_copy(update={"files": files}).model_dump_json()
    )
    refused = civic("restore", str(backup), "--data-dir", str(target), "--check", code=1)
    assert "does not verify: chain BROKEN" in refused.output
    assert not (target / "events.sqlite").exists()
