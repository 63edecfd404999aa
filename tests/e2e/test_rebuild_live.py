"""Rebuild without downtime: ``civic projections rebuild`` runs as its own process
while the server keeps taking commands and serving reads; the server swaps the
rebuilt read model in live, and no read fails or goes backwards meanwhile."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra.settings import Settings
from projections.view_files import live_path
from services.bootstrap import Platform
from services.cli import ServerLock
from tests.conftest import civic_process
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e


def rebuild_process(settings: Settings, name: str) -> subprocess.Popen[str]:
    env = {
        "CIVIC_DOCUMENT_SECRET": settings.document_secret_bytes().decode(),
        "CIVIC_LOG_FORMAT": "json",
        "CIVIC_LOG_LEVEL": "WARNING",
    }
    return civic_process(
        "projections", "rebuild", name, "--data-dir", str(settings.data_dir), env=env
    )


def points_of(api: Api, volunteer: str, position: int) -> int:
    board = api.get("/v1/leaderboards", min_position=position, volunteer_id=volunteer).json()
    return int(board["volunteer"]["points"])


def test_rebuild_while_serving_swaps_live(
    api: Api, network: Network, platform: Platform, settings: Settings
) -> None:
    volunteer = api.register(network.station)
    awarded = 0
    for _ in range(40):
        position = api.award(volunteer, 5).json()["position"]
        awarded += 5
    assert points_of(api, volunteer, position) == awarded
    old_view = Path(platform.runners["leaderboard"].store.path)

    lock = ServerLock(settings.data_dir)  # what `civic serve` holds while it runs
    assert lock.acquire()
    try:
        lock.describe({"pid": os.getpid(), "projections": True})
        rebuild = rebuild_process(settings, "leaderboard")
        reads = 0
        while rebuild.poll() is None:  # commands and reads go on during the rebuild
            position = api.award(volunteer, 1).json()["position"]
            awarded += 1
            assert points_of(api, volunteer, position) == awarded
            reads += 1
        out, err = rebuild.communicate()
    finally:
        lock.release()
    assert rebuild.returncode == 0, err
    assert "swapped it in live" in out
    assert reads > 0

    new_view = live_path(settings.views_dir, "leaderboard")
    assert new_view != old_view
    assert Path(platform.runners["leaderboard"].store.path) == new_view
    position = api.award(volunteer, 7).json()["position"]
    assert points_of(api, volunteer, position) == awarded + 7  # the new version keeps up
