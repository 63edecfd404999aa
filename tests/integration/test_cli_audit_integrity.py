"""``civic audit`` integrity commands against a real data directory: verify,
checkpoints, histories, certificates issued and verified, exports, the access log."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner, Result

from services import cli

ENV = {
    "CIVIC_DOCUMENT_SECRET": "cli-test-document-secret-0123456789",
    "CIVIC_AUDIT_SECRET": "cli-test-audit-secret-0123456789abcdef",
    "CIVIC_LOG_FORMAT": "json",
    "CIVIC_LOG_LEVEL": "WARNING",
}

Civic = Callable[..., Result]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("audit-cli") / "var"
    result = CliRunner().invoke(
        cli.app,
        [
            *("demo", "--volunteers", "20", "--months", "2", "--start", "2025-09-01"),
            *("--data-dir", str(data_dir)),
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    return data_dir


@pytest.fixture
def data_dir(demo_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the demo store (tests edit it)."""
    copy = tmp_path / "var"
    copy.mkdir()
    with (
        sqlite3.connect(demo_dir / "events.sqlite") as source,
        sqlite3.connect(copy / "events.sqlite") as target,
    ):
        source.backup(target)
    return copy


@pytest.fixture
def civic(data_dir: Path) -> Civic:
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli.app, [*args, "--data-dir", str(data_dir)], env=ENV)
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return run


def _rows(data_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "events.sqlite") as conn:
        return conn.execute(sql, params).fetchall()


def _a_volunteer_with_service(data_dir: Path) -> str:
    [(state,)] = _rows(
        data_dir,
        "SELECT state FROM stored_events WHERE topic LIKE '%ServiceConfirmed' "
        "ORDER BY rowid LIMIT 1",
    )
    return str(UUID(json.loads(state)["volunteer_id"]["_data_"]))


def test_verify_passes_then_names_an_edited_row(civic: Civic, data_dir: Path) -> None:
    assert "chain intact" in civic("audit", "verify").stdout
    [(position,)] = _rows(
        data_dir,
        "SELECT rowid FROM stored_events WHERE topic LIKE '%PointsAwarded' ORDER BY rowid LIMIT 1",
    )
    _rows(
        data_dir,
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), "
        "'\"points\":', '\"points\":9') AS BLOB) WHERE rowid = ?",
        (position,),
    )
    report = json.loads(civic("audit", "verify", "--json", code=1).stdout)
    assert report["first_break"]["position"] == position
    assert report["first_break"]["type"] == "Passbook.PointsAwarded"


def test_checkpoints_are_signed_listed_and_verified(civic: Civic, data_dir: Path) -> None:
    lines = civic("audit", "checkpoint", "--quarter", "2025-Q3").stdout.splitlines()
    recorded = [json.loads(line) for line in lines]
    assert recorded and all(r["recorded"] for r in recorded)
    again = [
        json.loads(line)
        for line in civic("audit", "checkpoint", "--quarter", "2025-Q3").stdout.splitlines()
    ]
    assert not any(r["recorded"] for r in again)
    listed = civic("audit", "checkpoints", "--quarter", "2025-Q3").stdout.splitlines()
    assert len(listed) == len(recorded)
    report = json.loads(civic("audit", "verify", "--json").stdout)
    assert report["ok"] and len(report["checkpoints"]) == len(recorded)
    # the checkpoint stands before a later event: deleting one from before it is caught
    _rows(data_dir, "DELETE FROM stored_events WHERE rowid = 10")
    report = json.loads(civic("audit", "verify", "--json", code=1).stdout)
    assert (report["first_break"]["position"], report["first_break"]["kind"]) == (10, "missing")


def test_certificate_issue_and_verify(civic: Civic, data_dir: Path, tmp_path: Path) -> None:
    volunteer = _a_volunteer_with_service(data_dir)
    out, page = tmp_path / "cert.json", tmp_path / "cert.html"
    civic(
        "audit",
        "certificate",
        "issue",
        "--volunteer",
        volunteer,
        "--from",
        "2025-09-01",
        "--to",
        "2025-10-31",
        "--out",
        str(out),
        "--html",
        str(page),
        "--purpose",
        "test",
    )
    cert = json.loads(out.read_text())
    assert cert["service_count"] >= 1
    assert cert["number"] in page.read_text()
    assert json.loads(civic("audit", "certificate", "verify", str(out)).stdout)["ok"]

    cert["total_minutes"] += 60
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(cert))
    check = json.loads(civic("audit", "certificate", "verify", str(forged), code=1).stdout)
    assert not check["signature_valid"]

    # an edited history fails the (untouched) certificate too
    position = json.loads(out.read_text())["services"][0]["position"]
    _rows(
        data_dir,
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), "
        "'\"people_served\":', '\"people_served\":1') AS BLOB) WHERE rowid = ?",
        (position,),
    )
    check = json.loads(civic("audit", "certificate", "verify", str(out), code=1).stdout)
    assert not check["chain_intact"]

    log = [
        json.loads(line)
        for line in civic("audit", "access-log", *_around_today()).stdout.splitlines()
    ]
    assert [(e["subject_id"], e["view"], e["purpose"]) for e in log] == [
        (volunteer, "certificate", "test")
    ]
    assert log[0]["actor"].startswith("key:cli:")


def _around_today() -> list[str]:
    """--from yesterday --to tomorrow: the CLI runs in real time, logged by local day."""
    today = datetime.now(UTC).date()
    return ["--from", str(today - timedelta(days=1)), "--to", str(today + timedelta(days=1))]


def test_history_and_export(civic: Civic, data_dir: Path) -> None:
    volunteer = _a_volunteer_with_service(data_dir)
    found = json.loads(civic("audit", "history", volunteer, "--everything", "--json").stdout)
    types = {(e["aggregate_type"], e["type"]) for e in found["entries"]}
    assert {("Volunteer", "Registered"), ("Activity", "ServiceConfirmed")} <= types
    text = civic("audit", "export", "--format", "csv", "--volunteer", volunteer).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(r["volunteer_id"] == volunteer for r in rows)
    assert [int(r["position"]) for r in rows] == sorted(int(r["position"]) for r in rows)
