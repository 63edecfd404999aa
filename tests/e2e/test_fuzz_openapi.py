"""The OpenAPI schema fuzzed with schemathesis against a real server.

A real uvicorn serves the app on a free loopback port (its own data directory, a
small practice network opened so that some generated requests reach real
aggregates); schemathesis generates requests for every operation from the schema,
valid and invalid, with an admin key and without any key. Every response must be
no 5xx, and have a status code, content type and body that the schema documents
for the operation. (schemathesis's ``negative_data_rejection`` check is not run:
pydantic's lax mode accepts some values the JSON schema calls the wrong type, e.g.
``true`` for an integer, a number for a date-time.)

Per operation ``CIVIC_FUZZ_EXAMPLES`` examples (default 3: about two minutes in CI);
e.g. ``CIVIC_FUZZ_EXAMPLES=200 pytest tests/e2e/test_fuzz_openapi.py`` for a long
run. The totals are printed at the end of the run (``fuzz: N cases ...``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from infra.settings import Settings
from services.api.app import create_app
from services.keys import KeyStore
from services.principals import Role
from tests.integration.conftest import free_port

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("CIVIC_FUZZ_EXAMPLES", "3"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    store = KeyStore(Settings(data_dir=data).keys_db)
    _, admin = store.create(Role.ADMIN, "fuzz admin")
    store.close()
    port = free_port()
    env = {
        **os.environ,
        "CIVIC_DATA_DIR": str(data),
        "CIVIC_DOCUMENT_SECRET": "fuzz-document-secret-0123456789abcdef",
        "CIVIC_LOG_FORMAT": "json",
        "CIVIC_LOG_LEVEL": "WARNING",
        "CIVIC_READ_WAIT_TIMEOUT": "0.2",
    }
    log = (data.parent / "uvicorn.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own app, fixed arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            "services.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        _open_network(url, admin)
        yield {"url": url, "admin": admin}
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        text = (data.parent / "uvicorn.log").read_text()
        assert "http.unhandled_error" not in text, text[-3000:]


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail("uvicorn exited")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("uvicorn did not start")


def _open_network(url: str, admin: str) -> None:
    headers = {"Authorization": f"Bearer {admin}"}
    parent = None
    for code, tier in (("fz", "center"), ("fz-i", "institute"), ("fz-s", "station")):
        body = {"code": code, "name": code, "tier": tier, "parent_id": parent}
        response = httpx.post(f"{url}/v1/units", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        parent = response.json()["unit_id"]


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    line = (
        f"fuzz: {TALLY['admin']} cases with an admin key, {TALLY['anonymous']} without "
        f"a key, over {sum(1 for k in TALLY if k.startswith('op '))} operations; "
        f"5xx responses: {TALLY['5xx']}"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n{line}")  # noqa: T201 - the figure the README quotes


# The schema comes from the app itself (building the app connects nothing); the
# requests go to the server. (schemathesis's lazy fixture loader does not run on
# pytest 9: it sets a private node attribute that pytest 9 no longer has.)
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schema.parametrize()
@FUZZ
def test_fuzz_with_an_admin_key(case: Any, server: dict[str, str]) -> None:
    _run(case, server["url"], "admin", {"Authorization": f"Bearer {server['admin']}"})


@schema.parametrize()
@FUZZ
def test_fuzz_without_a_key(case: Any, server: dict[str, str]) -> None:
    _run(case, server["url"], "anonymous", {})


def _run(case: Any, url: str, who: str, headers: dict[str, str]) -> None:
    TALLY[who] += 1
    TALLY[f"op {case.operation.label}"] += 1
    if "Authorization" not in headers and case.headers:
        case.headers.pop("Authorization", None)
    response = case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=30)
    if response.status_code >= 500:
        TALLY["5xx"] += 1
