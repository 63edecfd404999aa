"""``civic project`` on the embedded default: read models fed from the SQLite event
store by a process of their own, beside an API process that runs none
(``civic serve --no-projections``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.embedded_stream import EmbeddedStream
from infra.settings import Settings
from projections.catalog import PROJECTIONS
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.view_files import live_path
from services import cli
from services import commands as c
from services.bootstrap import Platform
from services.principals import SYSTEM
from tests.conftest import wait_until
from tests.integration.test_cli import ENV, view_rows

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("leaderboard", "unit_metrics", "audit_trail")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    result = CliRunner().invoke(
        cli.app,
        ["demo", "--volunteers", "60", "--months", "1", "--seed", "7", "--data-dir", str(path)],
        env=ENV,
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        document_secret=ENV["CIVIC_DOCUMENT_SECRET"],
        run_projections=False,
        log_level="WARNING",
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[Platform]:
    """What ``civic serve --no-projections`` runs: the application, no runner started."""
    platform = Platform.build(settings)
    platform.start()
    try:
        yield platform
    finally:
        platform.close()


def project(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVIC_")}
    env.update(ENV, CIVIC_DATA_DIR=str(data_dir))
    return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "services.cli_stream", "project", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(20) == 0, process.stderr.read() if process.stderr else b""
        finally:
            if process.poll() is None:
                process.kill()


def position_of(settings: Settings, name: str) -> int:
    path = live_path(settings.views_dir, name)
    if not path.exists():
        return 0
    store = ViewStore(path)
    try:
        return store.position()
    finally:
        store.close()


def reference(platform: Platform, tmp_path: Path) -> dict[str, Any]:
    """Each read model built in this process from the same store, for comparison."""
    rows = {}
    for name in MODELS:
        path = tmp_path / "reference" / f"{name}.sqlite"
        runner = ProjectionRunner(
            PROJECTIONS[name](timezone=platform.settings.timezone),
            ViewStore(path),
            EmbeddedStream(platform.app.recorder),
        )
        runner.catch_up()
        runner.store.close()
        rows[name] = view_rows(path)
    shutil.rmtree(tmp_path / "reference")
    return rows


def test_project_follows_the_store_from_its_own_process(
    api: Platform, settings: Settings, tmp_path: Path
) -> None:
    process = project(settings.data_dir, *MODELS, "--poll-interval", "0.01")
    try:
        head = api.app.head()
        wait_until(
            lambda: all(position_of(settings, n) >= head for n in MODELS),
            60,
            interval=0.02,
            what="the catch-up",
        )
        # a command through the API process: its read waits for the other process
        volunteer = next(
            n.originator_id
            for n in api.app.recorder.select_notifications(start=1, limit=head)
            if n.topic.endswith("Volunteer.Registered")
        )
        outcome = api.app.execute(
            c.AwardPoints(volunteer_id=volunteer, points=7, reason="文明户评比"), SYSTEM
        )
        assert outcome.position is not None
        for name in MODELS:
            assert api.wait_for_view(name, outcome.position, timeout=10), name
        assert process.poll() is None
    finally:
        stop(process)
    expected = reference(api, tmp_path)
    for name in MODELS:
        assert view_rows(live_path(settings.views_dir, name)) == expected[name], name


def test_project_killed_mid_catch_up_loses_and_repeats_nothing(
    api: Platform, settings: Settings, tmp_path: Path
) -> None:
    args = ("audit_trail", "leaderboard", "--batch-size", "20")
    process = project(settings.data_dir, *args)
    try:
        wait_until(
            lambda: position_of(settings, "audit_trail") > 0,
            60,
            interval=0.02,
            what="a first batch",
        )
        process.send_signal(signal.SIGKILL)  # mid-way, no clean shutdown
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    head = api.app.head()
    assert 0 < position_of(settings, "audit_trail") < head

    process = project(settings.data_dir, *args)
    try:
        wait_until(
            lambda: all(position_of(settings, n) >= head for n in ("audit_trail", "leaderboard")),
            60,
            interval=0.02,
            what="the restarted process",
        )
    finally:
        stop(process)
    expected = reference(api, tmp_path)
    for name in ("audit_trail", "leaderboard"):
        assert view_rows(live_path(settings.views_dir, name)) == expected[name], name


def test_project_refuses_an_unknown_read_model(data_dir: Path) -> None:
    process = project(data_dir, "leaderboard", "nope")
    assert process.wait(30) == 2
    assert b"no read model 'nope'" in (process.stderr.read() if process.stderr else b"")
