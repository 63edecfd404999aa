"""HTTP clients that post awards to a running ``civic serve`` (single commands and
batches, each with an Idempotency-Key and each item with a reason naming it), and
what the event store recorded of them: shared by the crash and backup tests."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from infra.settings import Settings
from services.bootstrap import build_application
from tests.conftest import resident_id
from tests.integration.conftest import DOCUMENT_SECRET
from tests.integration.crash_harness import ApiServer

CLIENTS = 4
REASON = "crash-test"


@dataclass
class Request:
    key: str
    path: str
    body: dict[str, Any]
    items: int  # commands it carries (one event each)
    status: int | None = None  # None: no answer (the server died under it)
    answered_at: float = 0.0  # time.monotonic() of the answer


@dataclass
class Clients:
    """Threads posting awards, one at a time or in batches, each request with an
    Idempotency-Key and each item with a reason naming it."""

    server: ApiServer
    token: str
    volunteers: list[str]
    seed: int
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def own(self, client: int) -> list[str]:
        """Each client awards its own volunteers: the test is about crashes, not about
        requests contending for one passbook (tests/e2e/test_races_http.py is)."""
        return self.volunteers[client::CLIENTS]

    def request(self, rng: random.Random, client: int, n: int) -> Request:
        mine = self.own(client)
        volunteer = rng.choice(mine)
        key = f"c{client}-r{n}"
        if rng.random() < 0.5:
            body = {"points": 1, "reason": f"{REASON} {key}#0"}
            return Request(key, f"/v1/passbooks/{volunteer}/awards", body, 1)
        size = rng.randint(2, 12)
        items = [
            {
                "command": {
                    "type": "award_points",
                    "volunteer_id": rng.choice(mine),
                    "points": 1,
                    "reason": f"{REASON} {key}#{j}",
                }
            }
            for j in range(size)
        ]
        return Request(key, "/v1/batch", {"items": items}, size)

    def send(self, http: httpx.Client, request: Request) -> int | None:
        """The status, or None when the server died with the request in flight
        (sent, no answer). A refused connection (the server is down) is tried again."""
        deadline = time.monotonic() + 60
        while True:
            try:
                response = http.post(
                    f"{self.server.url}{request.path}",
                    json=request.body,
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        "Idempotency-Key": request.key,
                    },
                )
            except httpx.ConnectError:  # never reached a server: not in flight
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            except httpx.TransportError:
                return None
            break
        if response.status_code >= 300:
            self.errors.append(f"{request.key}: {response.status_code} {response.text[:200]}")
        if request.path == "/v1/batch" and response.status_code == 200:
            body = response.json()
            if body["failed"]:
                codes = Counter(i["problem"]["code"] for i in body["items"] if i["problem"])
                self.errors.append(f"{request.key}: items failed {dict(codes)}")
        return response.status_code

    def run(self, client: int) -> None:
        rng = random.Random(self.seed * 100 + client)
        n = 0
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                request = self.request(rng, client, n)
                request.status = self.send(http, request)
                request.answered_at = time.monotonic()
                with self._lock:
                    self.requests.append(request)
                n += 1

    def __enter__(self) -> Clients:
        self._threads = [
            threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(CLIENTS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def committed_items(events_db: Path) -> Counter[str]:
    """Events per item reason (``<request key>#<item>``) in the event store."""
    settings = Settings(data_dir=events_db.parent, document_secret=DOCUMENT_SECRET)
    app = build_application(settings)
    try:
        counts: Counter[str] = Counter()
        head = app.head()
        for n in app.recorder.select_notifications(start=1, limit=head + 1):
            event = app.mapper.to_domain_event(n)
            reason = getattr(event, "reason", None)
            if isinstance(reason, str) and reason.startswith(REASON):
                counts[reason.removeprefix(f"{REASON} ")] += 1
        return counts
    finally:
        app.close()


def idempotency_keys(events_db: Path) -> set[str]:
    with sqlite3.connect(events_db) as conn:
        return {str(r[0]) for r in conn.execute("SELECT key FROM idempotency_keys")}


def open_network(server: ApiServer, token: str, volunteers: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        return register_network(http, volunteers, first_document=90_000)


def register_network(http: Any, volunteers: int, *, first_document: int) -> list[str]:
    """A center, an institute and a station, and ``volunteers`` registered at the
    station, through any HTTP client (httpx, or FastAPI's TestClient) that sends
    an admin's credentials; returns the volunteers' ids."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.post(path, json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    center = post("/v1/units", {"code": "c", "name": "中心", "tier": "center"})["unit_id"]
    institute = post(
        "/v1/units", {"code": "c-i", "name": "所", "tier": "institute", "parent_id": center}
    )["unit_id"]
    station = post(
        "/v1/units", {"code": "c-i-s", "name": "站", "tier": "station", "parent_id": institute}
    )["unit_id"]
    return [
        post(
            "/v1/volunteers",
            {
                "home_station_id": station,
                "name": "王秀英",
                "phone": "13800000001",
                "id_number": resident_id(first_document + i),
            },
        )["volunteer_id"]
        for i in range(volunteers)
    ]
