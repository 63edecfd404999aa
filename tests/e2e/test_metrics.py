"""The Prometheus endpoint: guarded by a key, and reports every read model."""

from __future__ import annotations

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
