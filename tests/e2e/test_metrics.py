"""The Prometheus endpoint: guarded by a key, and reports every read model."""

from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.e2e


def test_metrics_need_a_key_and_list_each_projection(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    assert client.get("/metrics").status_code == 401
    response = client.get("/metrics", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in ("leaderboard", "unit_metrics", "audit_trail"):
        assert f'projection="{name}"' in response.text


def test_metrics_count_this_process_s_command_groups(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    def samples() -> dict[str, float]:
        text = client.get("/metrics", headers=admin_headers).text
        found = {}
        for line in text.splitlines():
            if line.startswith(
                (
                    "civic_command_",
                    "civic_aggregate_cache_",
                    "civic_store_write",
                    "civic_store_wal",
                    "civic_idem",
                )
            ):
                name, value = line.rsplit(" ", 1)
                assert name.endswith(f'{{pid="{os.getpid()}"}}')  # the test client's process
                found[name.split("{")[0]] = float(value)
        return found

    before = samples()
    assert set(before) == {
        "civic_command_groups_total",
        "civic_command_jobs_total",
        "civic_command_conflict_retries_total",
        "civic_aggregate_cache_caught_up_total",
        "civic_aggregate_cache_evictions_total",
        "civic_store_write_lock_waits_total",
        "civic_idempotency_records_pruned_total",
        "civic_store_wal_checkpoints_total",
        "civic_store_wal_pages",
    }
    unit = {"code": "m-c", "name": "中心", "tier": "center"}
    assert client.post("/v1/units", json=unit, headers=admin_headers).status_code == 201
    after = samples()
    assert after["civic_command_jobs_total"] == before["civic_command_jobs_total"] + 1
    assert after["civic_command_groups_total"] == before["civic_command_groups_total"] + 1
    assert after["civic_command_conflict_retries_total"] == 0
    # the commit's pages go back into the store's file from the checkpoint thread
    deadline = time.monotonic() + 10
    while (
        samples()["civic_store_wal_checkpoints_total"]
        == before["civic_store_wal_checkpoints_total"]
    ):
        assert time.monotonic() < deadline, "no checkpoint after a commit"
        time.sleep(0.05)
    assert samples()["civic_store_wal_pages"] > 0
