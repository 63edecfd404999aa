"""End-to-end helpers: a small practice network opened over HTTP, and an ``Api``
object that knows the admin key and the common calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.bootstrap import Platform


@dataclass
class Network:
    center: str
    institute: str
    station: str
    other_institute: str
    other_station: str


class Api:
    def __init__(
        self,
        client: TestClient,
        admin_headers: dict[str, str],
        new_resident_id: Callable[[], str],
    ) -> None:
        self.client = client
        self.admin = admin_headers
        self.new_resident_id = new_resident_id

    def headers(self, key: str | None, idempotency_key: str | None = None) -> dict[str, str]:
        headers = dict(self.admin) if key is None else {"Authorization": f"Bearer {key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def post(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        expect: int | None = None,
    ) -> httpx.Response:
        # starlette types TestClient against httpx2, not installed here: its calls give Any
        response: httpx.Response = self.client.post(
            path, json=body, headers=self.headers(key, idempotency_key)
        )
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    @property
    def app(self) -> FastAPI:
        """The application under test (the client types it as any ASGI app)."""
        app = self.client.app
        assert isinstance(app, FastAPI)
        return app

    @property
    def platform(self) -> Platform:
        """The platform the application under test runs on."""
        platform: Platform = self.app.state.platform
        return platform

    def get(
        self,
        path: str,
        *,
        key: str | None = None,
        expect: int | None = 200,
        params: Mapping[str, Any] | None = None,
        **query: Any,
    ) -> httpx.Response:
        """GET ``path`` with the query parameters ``query``, and those in ``params``: a
        mapping for names that are not identifiers (``from``) or for a set of parameters
        built beforehand (unpacked with ``**`` it could also fill ``key`` or ``expect``)."""
        merged = {**(params or {}), **query}
        response: httpx.Response = self.client.get(
            path, params=merged or None, headers=self.headers(key)
        )
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def open_unit(self, code: str, tier: str, parent_id: str | None = None) -> str:
        body = {"code": code, "name": f"unit {code}", "tier": tier, "parent_id": parent_id}
        return str(self.post("/v1/units", body, expect=201).json()["unit_id"])

    def register(self, station: str, *, key: str | None = None, name: str = "张三") -> str:
        body = {
            "home_station_id": station,
            "name": name,
            "phone": "13800000000",
            "id_number": self.new_resident_id(),
        }
        return str(self.post("/v1/volunteers", body, key=key, expect=201).json()["volunteer_id"])

    def publish(
        self,
        unit: str,
        starts_at: datetime,
        *,
        capacity: int = 10,
        points_per_hour: int = 10,
        key: str | None = None,
    ) -> str:
        body = {
            "unit_id": unit,
            "title": "社区义诊",
            "category": "health",
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(hours=3)).isoformat(),
            "location": "社区服务中心",
            "capacity": capacity,
            "points_per_hour": points_per_hour,
        }
        return str(self.post("/v1/activities", body, key=key, expect=201).json()["activity_id"])

    def list_reward(self, unit: str, *, cost: int, stock: int) -> str:
        body = {"unit_id": unit, "name": "大米 5kg", "cost_points": cost, "stock": stock}
        return str(self.post("/v1/rewards", body, expect=201).json()["reward_id"])

    def award(self, volunteer: str, points: int) -> httpx.Response:
        body = {"points": points, "reason": "文明户评比"}
        return self.post(f"/v1/passbooks/{volunteer}/awards", body, expect=201)


@pytest.fixture
def api(
    client: TestClient, admin_headers: dict[str, str], new_resident_id: Callable[[], str]
) -> Api:
    return Api(client, admin_headers, new_resident_id)


@pytest.fixture
def network(api: Api) -> Network:
    center = api.open_unit("jiangbei", "center")
    institute = api.open_unit("jiangbei-guanyinqiao", "institute", center)
    station = api.open_unit("jiangbei-guanyinqiao-01", "station", institute)
    other_institute = api.open_unit("jiangbei-wulidian", "institute", center)
    other_station = api.open_unit("jiangbei-wulidian-01", "station", other_institute)
    return Network(center, institute, station, other_institute, other_station)
