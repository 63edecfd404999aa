"""``civic audit ...`` on a data dir: the replay check's exit code, a trace, a
statement export, what-if and the as-of leaderboard."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner, Result

from infra.settings import Settings
from services import cli
from services.bootstrap import Platform
from tests.unit.audit_scenario import APRIL, District

ENV = {
    "CIVIC_DOCUMENT_SECRET": "cli-test-document-secret-0123456789",
    "CIVIC_LOG_FORMAT": "json",
    "CIVIC_LOG_LEVEL": "WARNING",
}


def _civic(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.app, ["audit", *args, "--data-dir", str(data_dir)], env=ENV)


def test_audit_commands(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    platform = Platform.build(
        Settings(data_dir=data_dir, document_secret=ENV["CIVIC_DOCUMENT_SECRET"])
    )
    try:
        district = District(platform.app).build()
        for runner in platform.runners.values():
            runner.catch_up()
    finally:
        platform.close()

    checked = _civic(data_dir, "check", "--json")
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["ok"] is True

    traced = _civic(data_dir, "trace", str(district.redemptions["wang"]))
    assert traced.exit_code == 0, traced.output
    assert [lot["kind"] for lot in json.loads(traced.stdout)["lots"]] == ["service", "manual"]

    exported = _civic(data_dir, "statement", str(district.volunteers["li"]), "--format", "csv")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert rows[-1] == {**rows[-1], "line": "closing", "balance": "30"}

    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps({"max_hours_per_service": 1}), encoding="utf-8")
    what_if = _civic(data_dir, "what-if", "--rule", str(rule))
    assert what_if.exit_code == 0, what_if.output
    assert json.loads(what_if.stdout)["totals"]["points_proposed"] == 20 + 10 + 8

    board = _civic(data_dir, "leaderboard", "--as-of", APRIL.isoformat(), "--json")
    assert board.exit_code == 0, board.output
    assert [e["points"] for e in json.loads(board.stdout)["entries"]] == [30, 30, 16]

    with closing(sqlite3.connect(data_dir / "views" / "leaderboard.sqlite")) as conn, conn:
        conn.execute("DELETE FROM lb_scores WHERE period = 'all'")
    failed = _civic(data_dir, "check")
    assert failed.exit_code == 1
    assert "DIFFERENCES FOUND" in failed.output
    bad = _civic(data_dir, "balance", str(district.volunteers["li"]), "--as-of", "yesterday")
    assert bad.exit_code == 2
