"""Every error is an RFC 9457 problem; bad input never causes a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, NoReturn
from uuid import uuid4

import httpx
import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from infra.settings import Settings
from services.api.deps import get_platform
from tests.conftest import Clock
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


def _is_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance", "code"} <= body.keys()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    return body


def test_domain_errors_map_to_404_409_422(
    api: Api, network: Network, new_resident_id: Callable[[], str]
) -> None:
    _is_problem(api.get(f"/v1/units/{uuid4()}", expect=None), 404, "not-found")
    # a unit id is not an activity
    _is_problem(api.get(f"/v1/activities/{network.station}", expect=None), 404)
    duplicate = {"code": "jiangbei", "name": "again", "tier": "center"}
    _is_problem(api.post("/v1/units", duplicate), 409, "unit-exists")
    bad_id = {
        "home_station_id": network.station,
        "name": "赵六",
        "phone": "13600000000",
        "id_number": "110105198001010010",  # wrong check digit
    }
    _is_problem(api.post("/v1/volunteers", bad_id), 422, "invalid-id-number")
    not_a_station = {**bad_id, "home_station_id": network.institute, "id_number": new_resident_id()}
    _is_problem(api.post("/v1/volunteers", not_a_station), 422, "home-must-be-station")


def test_validation_errors_are_422_without_echoing_input(api: Api, network: Network) -> None:
    secret_number = "11010519491231002X" * 2  # too long: rejected by the schema
    body = {
        "home_station_id": network.station,
        "name": "赵六",
        "phone": "not a phone",
        "id_number": secret_number,
    }
    problem = _is_problem(api.post("/v1/volunteers", body), 422, "invalid-request")
    assert {tuple(e["loc"]) for e in problem["errors"]} == {
        ("body", "phone"),
        ("body", "id_number"),
    }
    response_text = api.post("/v1/volunteers", body).text
    assert secret_number not in response_text
    assert "not a phone" not in response_text


def test_unknown_field_is_422(api: Api, network: Network) -> None:
    body = {"code": "x1", "name": "x", "tier": "center", "colour": "red"}
    problem = _is_problem(api.post("/v1/units", body), 422, "invalid-request")
    assert problem["errors"][0]["loc"] == ["body", "colour"]
    assert problem["errors"][0]["type"] == "extra_forbidden"


def test_malformed_bodies_are_400(api: Api) -> None:
    headers = {**api.admin, "content-type": "application/json"}
    _is_problem(api.client.post("/v1/units", content=b'{"code": ', headers=headers), 400)
    _is_problem(api.client.post("/v1/units", content=b'{"code": "\xff\xfe"}', headers=headers), 400)
    # a lone surrogate is valid JSON but not text
    lone = b'{"code": "x", "name": "\\ud800", "tier": "center"}'
    _is_problem(api.client.post("/v1/units", content=lone, headers=headers), 422)


def test_oversized_bodies_are_413(api: Api, settings: Settings) -> None:
    big = b'{"name": "' + b"x" * settings.max_body_bytes + b'"}'
    headers = {**api.admin, "content-type": "application/json"}
    _is_problem(api.client.post("/v1/units", content=big, headers=headers), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield big[: len(big) // 2]
        yield big[len(big) // 2 :]

    _is_problem(api.client.post("/v1/units", content=chunks(), headers=headers), 413)


def test_unknown_route_and_wrong_method(api: Api, network: Network) -> None:
    _is_problem(api.get("/v1/nothing-here", expect=None), 404)
    wrong = api.client.put(f"/v1/units/{network.station}", headers=api.admin, json={})
    _is_problem(wrong, 405)
    assert "GET" in wrong.headers["Allow"]
    _is_problem(api.get("/v1/units/not-a-uuid", expect=None), 422)


def test_conflicts_over_http(api: Api, network: Network, clock: Clock) -> None:
    volunteer = api.register(network.station)
    activity = api.publish(network.station, clock.now + timedelta(hours=1))
    path = f"/v1/activities/{activity}/signups"
    api.post(path, {"volunteer_id": volunteer}, expect=201)
    _is_problem(api.post(path, {"volunteer_id": volunteer}), 409, "already-signed-up")
    _is_problem(
        api.post(f"/v1/activities/{activity}/checkins", {"volunteer_id": str(uuid4())}),
        409,
        "not-signed-up",
    )
    suspended = api.post(f"/v1/volunteers/{volunteer}/suspend", {"reason": "核查中"}, expect=200)
    assert suspended.json()["status"] == "suspended"
    _is_problem(api.post(f"/v1/volunteers/{volunteer}/suspend", {"reason": "again"}), 409)


def test_request_id_is_echoed_or_generated(api: Api) -> None:
    echoed = api.client.get("/healthz", headers={"X-Request-ID": "req-123.abc"})
    assert echoed.headers["X-Request-ID"] == "req-123.abc"
    generated = api.client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert generated.headers["X-Request-ID"] != "bad id\twith junk"
    assert len(generated.headers["X-Request-ID"]) == 32


def test_openapi_documents_every_route(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    operations = [
        (path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
    ]
    pinned = {
        ("post", "/v1/units"),
        ("post", "/v1/volunteers"),
        ("post", "/v1/activities"),
        ("post", "/v1/activities/{activity_id}/signups"),
        ("delete", "/v1/activities/{activity_id}/signups/{volunteer_id}"),
        ("post", "/v1/activities/{activity_id}/checkins"),
        ("post", "/v1/activities/{activity_id}/checkouts"),
        ("post", "/v1/activities/{activity_id}/confirmations"),
        ("post", "/v1/passbooks/{volunteer_id}/awards"),
        ("post", "/v1/rewards"),
        ("post", "/v1/redemptions"),
        ("get", "/v1/passbooks/{volunteer_id}"),
        ("get", "/v1/leaderboards"),
        ("get", "/v1/units/{unit_id}/metrics"),
        ("get", "/v1/audit"),
    }
    assert pinned <= {(method, path) for path, method, _ in operations}
    for path, method, op in operations:
        assert op.get("summary"), (method, path)
        if path.startswith("/v1/"):
            problem = op["responses"]["401"]["content"]
            assert "application/problem+json" in problem, (method, path)
            assert op["security"], (method, path)


def test_unexpected_errors_are_a_bare_500(api: Api, network: Network) -> None:
    def broken() -> NoReturn:
        raise RuntimeError("database password is hunter2")

    api.app.dependency_overrides[get_platform] = broken
    try:
        response = api.get(f"/v1/units/{network.station}", expect=None)
    finally:
        api.app.dependency_overrides.clear()
    body = _is_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert body["detail"] == "an unexpected error occurred"


def test_access_log_has_one_line_per_request_and_no_secrets(api: Api, network: Network) -> None:
    headers = {**api.admin, "X-Request-ID": "trace-1"}
    with capture_logs(processors=[merge_contextvars]) as entries:
        api.client.get(f"/v1/units/{network.station}", headers=headers)
    access = [e for e in entries if e["event"] == "http.request"]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == "trace-1"
    assert entry["route"] == "/v1/units/{unit_id}"
    assert entry["status"] == 200
    assert entry["method"] == "GET"
    assert entry["actor"].startswith("key:")
    assert isinstance(entry["duration_ms"], float)
    token = api.admin["Authorization"].split()[1]
    assert token not in json.dumps(entries, default=str)
    assert network.station not in json.dumps(entry, default=str)
