"""The API process killed (SIGKILL) while clients post batches and single
commands: every request committed all its events or none, a retry with the same
Idempotency-Key completes it exactly once, nothing answered 2xx is lost, and the
read models the killed process was feeding (embedded stream) equal a
recomputation from the event store.

The same with ``civic serve --workers 2``, where the victim is whichever worker
holds the write lock between processes at that moment (``infra/process_lock.py``):
the kernel frees the lock, the other worker goes on answering, uvicorn starts a
new worker, and the same guarantees hold."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from projections.catalog import PROJECTIONS
from projections.view_files import live_path
from services.bootstrap import build_application
from tests.integration.conftest import DOCUMENT_SECRET, dump_tables, wait_until
from tests.integration.crash_harness import ApiServer, recompute, row_differences, view_position

pytestmark = pytest.mark.e2e

SEED = 5
KILLS = 4
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


def started(tmp_path: Path, workers: int) -> Iterator[ApiServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        document_secret=DOCUMENT_SECRET,
        log_format="json",
        log_level="WARNING",
    )
    server = ApiServer(settings, workers=workers)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    yield from started(tmp_path, 1)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ApiServer]:
    yield from started(tmp_path, 2)


def open_network(server: ApiServer, token: str, volunteers: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:

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
        from tests.conftest import resident_id  # noqa: PLC0415 - the test helper

        return [
            post(
                "/v1/volunteers",
                {
                    "home_station_id": station,
                    "name": "王秀英",
                    "phone": "13800000001",
                    "id_number": resident_id(90_000 + i),
                },
            )["volunteer_id"]
            for i in range(volunteers)
        ]


def test_api_killed_mid_request_commits_each_request_whole_or_not_at_all(
    server: ApiServer,
) -> None:
    data = server.settings.data_dir
    token = (data / "admin-key").read_text().strip()
    volunteers = open_network(server, token, 3 * CLIENTS)
    rng = random.Random(SEED)

    with Clients(server, token, volunteers, SEED) as clients:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.2))
            server.kill()
            server.start()
        time.sleep(0.5)
    assert server.kills == KILLS
    verify_after_kills(server, clients, "api crash")


def test_a_worker_killed_holding_the_write_lock_leaves_the_other_serving(
    two_workers: ApiServer,
) -> None:
    server = two_workers
    data = server.settings.data_dir
    token = (data / "admin-key").read_text().strip()
    volunteers = open_network(server, token, 3 * CLIENTS)
    rng = random.Random(SEED + 1)
    killed_at: list[float] = []
    replaced_at: list[float] = []  # when the worker started in its place could answer

    with Clients(server, token, volunteers, SEED + 1) as clients:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.2))
            workers = server.workers_pids()
            assert len(workers) == 2, workers
            victim = lock_holder_among(server, workers)
            os.kill(victim, signal.SIGKILL)
            killed_at.append(time.monotonic())
            server.kills += 1
            # uvicorn's supervisor starts a new worker in its place: wait until it
            # serves, so that the next kill does not leave none
            wait_until(
                lambda: len(server.workers_pids() - {victim}) == 2,  # noqa: B023 - this victim
                30,
                what="a new worker",
            )
            wait_until(
                lambda: all(server.worker_ready(pid) for pid in server.workers_pids()),
                60,
                what="the new worker to open the event store",
                interval=0.005,
            )
            replaced_at.append(time.monotonic())
            time.sleep(0.2)
        time.sleep(0.5)
    assert server.process is not None and server.process.poll() is None  # the parent lives
    # the other worker answered before the new one could have
    served = [
        sum(1 for r in clients.requests if r.status and killed < r.answered_at < replaced)
        for killed, replaced in zip(killed_at, replaced_at, strict=True)
    ]
    assert all(served), served
    verify_after_kills(
        server, clients, f"worker crash (answered before a new worker was up: {served})"
    )


def lock_holder_among(server: ApiServer, workers: set[int], timeout: float = 10.0) -> int:
    """The worker that holds the write lock, caught in the act."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = server.write_lock_holder()
        if holder in workers:
            return holder
        time.sleep(0.0005)
    pytest.fail(f"no worker of {workers} took the write lock in {timeout} s")


def verify_after_kills(server: ApiServer, clients: Clients, label: str) -> None:
    data = server.settings.data_dir
    assert not clients.errors, clients.errors[:5]
    unanswered = [r for r in clients.requests if r.status is None]
    answered = [r for r in clients.requests if r.status is not None]
    assert unanswered, "no request was in flight at a kill"

    # before any retry: each request all or nothing; every answered one all
    items = committed_items(data / "events.sqlite")
    keys = idempotency_keys(data / "events.sqlite")
    partial = []
    for r in clients.requests:
        done = sum(items.get(f"{r.key}#{j}", 0) for j in range(r.items))
        if done not in (0, r.items) or (r.status is not None and done != r.items):
            partial.append((r.key, r.status, done, r.items))
        recorded = r.key in keys or f"{r.key}/0" in keys
        assert recorded == (done > 0), r
    assert not partial, partial[:5]
    assert all(n == 1 for n in items.values()), [k for k, n in items.items() if n > 1][:5]

    # the unanswered retried with their keys: each completes exactly once
    with httpx.Client(timeout=10) as http:
        for r in unanswered:
            r.status = clients.send(http, r)
            assert r.status in (200, 201), r
    assert not clients.errors, clients.errors[:5]
    items = committed_items(data / "events.sqlite")
    expected = {f"{r.key}#{j}" for r in clients.requests for j in range(r.items)}
    assert set(items) == expected
    assert set(items.values()) == {1}

    # the read models fed inside the killed process equal a recomputation
    app = build_application(server.settings)
    try:
        head = app.head()
        views = [live_path(data / "views", name) for name in PROJECTIONS]
        wait_until(lambda: all(view_position(v) >= head for v in views), 60, what="read models")
        assert server.stop() in (0, -15)  # uvicorn re-raises SIGTERM once it shut down
        reference = recompute(app, data.parent / "recomputed", server.settings.timezone)
    finally:
        app.close()
    differences = {
        name: row_differences(
            dump_tables(live_path(data / "views", name)), dump_tables(reference[name])
        )
        for name in PROJECTIONS
    }
    print(  # noqa: T201 - the figures for the README
        f"\n{label}: kills={server.kills} requests={len(clients.requests)} "
        f"unanswered={len(unanswered)} answered={len(answered)} items={len(expected)} "
        f"partial=0 differences={differences}"
    )
    assert set(differences.values()) == {0}, differences
