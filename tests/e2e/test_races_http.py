"""Races over HTTP against a real server: ``civic serve --workers 2`` (two
processes deciding on one event store), hundreds of requests released at once.

Never oversold, never negative, every loser a 409 with its reason code; capacity
never exceeded and the waitlist in the order the store recorded it; one
Idempotency-Key retried concurrently records one event."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from domain.activities import Activity
from infra.settings import Settings
from services.bootstrap import build_application
from tests.conftest import resident_id
from tests.integration.crash_harness import ApiServer

pytestmark = pytest.mark.e2e

DOCUMENT_SECRET = "test-document-secret-0123456789abcdef"
RACERS = 200

Call = tuple[str, dict[str, Any] | None, dict[str, str]]  # path, JSON body, headers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("races") / "data",
        document_secret=DOCUMENT_SECRET,
        log_format="json",
        log_level="WARNING",
    )
    server = ApiServer(settings, workers=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Client:
    def __init__(self, server: ApiServer) -> None:
        token = (server.settings.data_dir / "admin-key").read_text().strip()
        self.url = server.url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=server.url, headers=self.headers, timeout=60)

    def post(self, path: str, body: dict[str, Any], status: int = 201) -> Any:
        response = self.http.post(path, json=body)
        assert response.status_code == status, response.text
        return response.json()

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def batch(self, commands: list[dict[str, Any]]) -> list[Any]:
        body = self.post("/v1/batch", {"items": [{"command": c} for c in commands]}, 200)
        assert body["failed"] == 0, body
        return [item["result"] for item in body["items"]]

    def race(
        self,
        requests: list[tuple[str, dict[str, Any] | None, dict[str, str]]],
        method: str = "POST",
    ) -> list[httpx.Response]:
        """Send every request at once (one connection each) and gather the answers."""

        async def run() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=len(requests))
            async with httpx.AsyncClient(
                base_url=self.url, headers=self.headers, timeout=120, limits=limits
            ) as http:
                return list(
                    await asyncio.gather(
                        *(
                            http.request(method, path, json=body, headers=h)
                            for path, body, h in requests
                        )
                    )
                )

        return asyncio.run(run())


@pytest.fixture(scope="module")
def client(server: ApiServer) -> Iterator[Client]:
    c = Client(server)
    try:
        yield c
    finally:
        c.http.close()


@pytest.fixture(scope="module")
def station(client: Client) -> str:
    center = client.post("/v1/units", {"code": "r", "name": "中心", "tier": "center"})
    institute = client.post(
        "/v1/units",
        {"code": "r-i", "name": "所", "tier": "institute", "parent_id": center["unit_id"]},
    )
    unit = client.post(
        "/v1/units",
        {"code": "r-i-s", "name": "站", "tier": "station", "parent_id": institute["unit_id"]},
    )
    return str(unit["unit_id"])


_serial = iter(range(50_000, 60_000))


def register(client: Client, station: str, count: int, points: int = 0) -> list[str]:
    people = client.batch(
        [
            {
                "type": "register_volunteer",
                "home_station_id": station,
                "name": "李四",
                "phone": "13900000000",
                "id_number": resident_id(next(_serial)),
            }
            for _ in range(count)
        ]
    )
    ids = [str(p["volunteer_id"]) for p in people]
    if points:
        client.batch(
            [
                {"type": "award_points", "volunteer_id": v, "points": points, "reason": "表彰"}
                for v in ids
            ]
        )
    return ids


def reward(client: Client, station: str, cost: int, stock: int) -> str:
    body = {"unit_id": station, "name": "大米 5kg", "cost_points": cost, "stock": stock}
    return str(client.post("/v1/rewards", body)["reward_id"])


def codes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    return Counter(
        (r.status_code, r.json().get("code") if r.status_code >= 400 else None) for r in responses
    )


def test_hundreds_racing_for_the_last_items_in_stock(client: Client, station: str) -> None:
    people = register(client, station, RACERS, points=100)
    item = reward(client, station, cost=30, stock=5)
    responses = client.race(
        [("/v1/redemptions", {"volunteer_id": v, "reward_id": item}, {}) for v in people]
    )
    assert codes(responses) == {(201, None): 5, (409, "out-of-stock"): RACERS - 5}
    assert all(r.json()["detail"] for r in responses if r.status_code == 409)
    assert client.get(f"/v1/rewards/{item}")["stock"] == 0
    balances = Counter(client.get(f"/v1/passbooks/{v}")["balance"] for v in people)
    assert balances == {70: 5, 100: RACERS - 5}  # the losers kept every point


def test_hundreds_of_concurrent_spends_from_one_passbook(client: Client, station: str) -> None:
    (saver,) = register(client, station, 1, points=100)
    item = reward(client, station, cost=7, stock=10_000)
    responses = client.race(
        [("/v1/redemptions", {"volunteer_id": saver, "reward_id": item}, {})] * RACERS
    )
    outcome = codes(responses)
    assert outcome[(201, None)] == 14
    # a loser is told the points ran out, or (having lost the race to the passbook
    # eight times running) that it changed under it too often: 409 either way
    losers = {k: n for k, n in outcome.items() if k[0] != 201}
    assert set(losers) <= {(409, "insufficient-points"), (409, "concurrent-modification")}
    assert sum(losers.values()) == RACERS - 14
    print(f"\nspends from one passbook: {dict(outcome)}")  # noqa: T201 - README figure
    passbook = client.get(f"/v1/passbooks/{saver}")
    assert passbook["balance"] == 2  # 100 - 14 x 7, never below zero
    assert client.get(f"/v1/rewards/{item}")["stock"] == 10_000 - 14


def test_awards_racing_through_both_workers_each_land_once_on_an_up_to_date_passbook(
    client: Client, station: str
) -> None:
    """Each worker keeps passbooks cached and applies the other's events to them
    before its next group: every award is counted once, and each reports the balance
    it left (so no two awards to one passbook report the same balance)."""
    savers = register(client, station, 4)
    reported: dict[str, list[int]] = {v: [] for v in savers}
    for round_ in range(3):  # the first round fills both workers' caches
        calls: list[Call] = [
            (
                f"/v1/passbooks/{v}/awards",
                {"points": 1 + (n % 5), "reason": f"第{round_}轮"},
                {},
            )
            for n in range(60)
            for v in savers
        ]
        responses = client.race(calls)
        assert [r.status_code for r in responses] == [201] * len(calls)
        for response in responses:
            body = response.json()
            reported[body["volunteer_id"]].append(body["balance"])
    total = 3 * sum(1 + (n % 5) for n in range(60))
    for saver, balances in reported.items():
        assert client.get(f"/v1/passbooks/{saver}")["balance"] == total
        assert len(set(balances)) == len(balances) == 180
        assert max(balances) == total


def recorded_signups(data_dir: Path, activity: str) -> list[tuple[str, str]]:
    """(volunteer, enrolled|waitlisted) in the order the store recorded them."""
    app = build_application(
        Settings(data_dir=data_dir, document_secret=DOCUMENT_SECRET, log_level="WARNING")
    )
    try:
        order = []
        for event in app.events.get(UUID(activity)):
            if isinstance(event, Activity.SignedUp):
                order.append((str(event.volunteer_id), "enrolled"))
            elif isinstance(event, Activity.Waitlisted):
                order.append((str(event.volunteer_id), "waitlisted"))
        return order
    finally:
        app.close()


def test_concurrent_sign_ups_for_the_last_places_keep_capacity_and_waitlist_order(
    client: Client, station: str, server: ApiServer
) -> None:
    people = register(client, station, 100)
    starts = datetime.now(UTC) + timedelta(days=2)
    activity = client.post(
        "/v1/activities",
        {
            "unit_id": station,
            "title": "社区义诊",
            "category": "health",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "location": "社区服务中心",
            "capacity": 10,
            "points_per_hour": 10,
        },
    )["activity_id"]
    responses = client.race(
        [(f"/v1/activities/{activity}/signups", {"volunteer_id": v}, {}) for v in people]
    )
    # a request that lost the race to the activity eight times running is told so
    # (409, retry); it recorded nothing
    refused = [r for r in responses if r.status_code != 201]
    assert {(r.status_code, r.json()["code"]) for r in refused} <= {
        (409, "concurrent-modification")
    }
    answered = {r.json()["volunteer_id"]: r.json()["status"] for r in responses if r.is_success}
    print(f"\nsign-ups: {dict(codes(responses))}")  # noqa: T201 - README figure
    assert Counter(answered.values()) == {"enrolled": 10, "waitlisted": len(answered) - 10}

    recorded = recorded_signups(server.settings.data_dir, activity)
    assert dict(recorded) == answered  # each answer is what the store recorded, nothing else
    assert len(recorded) == len(answered)
    assert [s for _, s in recorded] == ["enrolled"] * 10 + ["waitlisted"] * (len(answered) - 10)
    view = client.get(f"/v1/activities/{activity}")
    assert view["enrolled_count"] == 10
    assert view["waitlist"] == [v for v, s in recorded if s == "waitlisted"]

    # places freed at once go to the head of the waitlist, in its order
    enrolled = [v for v, s in recorded if s == "enrolled"]
    cancels = client.race(
        [(f"/v1/activities/{activity}/signups/{v}", None, {}) for v in enrolled[:3]], "DELETE"
    )
    assert all(r.status_code in (200, 201) for r in cancels), [r.text for r in cancels]
    after = client.get(f"/v1/activities/{activity}")
    assert after["enrolled_count"] == 10
    assert after["waitlist"] == view["waitlist"][3:]


def test_one_idempotency_key_retried_concurrently_records_one_event(
    client: Client, station: str, server: ApiServer
) -> None:
    (volunteer,) = register(client, station, 1)
    app = build_application(
        Settings(
            data_dir=server.settings.data_dir, document_secret=DOCUMENT_SECRET, log_level="WARNING"
        )
    )
    try:
        head = app.head()
        body = {"points": 9, "reason": "文明户评比"}
        responses = client.race(
            [(f"/v1/passbooks/{volunteer}/awards", body, {"Idempotency-Key": "same-key-1"})] * 100
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["position"] for r in responses}) == 1
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 99
        assert app.head() == head + 1
        # and a batch retried concurrently under one key: its items once each
        items = [
            {
                "command": {
                    "type": "award_points",
                    "volunteer_id": volunteer,
                    "points": 1,
                    "reason": "补录",
                }
            }
            for _ in range(5)
        ]
        batches = client.race(
            [("/v1/batch", {"items": items}, {"Idempotency-Key": "same-batch-1"})] * 50
        )
        assert {r.status_code for r in batches} == {200}
        assert {r.json()["succeeded"] for r in batches} == {5}
        assert app.head() == head + 6
    finally:
        app.close()
    assert client.get(f"/v1/passbooks/{volunteer}")["balance"] == 14
