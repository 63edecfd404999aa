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
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.settings import Settings
from projections.catalog import PROJECTIONS
from projections.view_files import live_path
from services.bootstrap import build_application
from tests.conftest import wait_until
from tests.integration.api_clients import (
    CLIENTS,
    Clients,
    committed_items,
    idempotency_keys,
    open_network,
)
from tests.integration.conftest import DOCUMENT_SECRET, dump_tables
from tests.integration.crash_harness import ApiServer, recompute, row_differences, view_position

pytestmark = pytest.mark.e2e

SEED = 5
KILLS = 4


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
