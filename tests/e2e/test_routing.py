"""Routes are matched in registration order (services/api/app.py puts the busiest
writes first): no route may shadow another, whatever that order is."""

from __future__ import annotations

import re

import pytest
from starlette.routing import compile_path

from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e

_PARAM = re.compile(r"\{[^}]+\}")
_SAMPLE = "00000000-0000-4000-8000-000000000000"  # a value every parameter accepts


def _operations(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every operation, in the order the app matches them (the
    OpenAPI document lists paths in routing order)."""
    schema = api.app.openapi()
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


def test_no_route_is_shadowed_by_one_matched_before_it(api: Api) -> None:
    operations = _operations(api)
    shadowed = []
    for i, (method, path) in enumerate(operations):
        sample = _PARAM.sub(_SAMPLE, path)
        for earlier_method, earlier in operations[:i]:
            regex, _, _ = compile_path(earlier)
            if earlier_method == method and earlier != path and regex.match(sample):
                shadowed.append(f"{method} {path} is taken by {earlier}")
    assert shadowed == []


def test_the_check_sees_a_shadowed_route() -> None:
    # a parameter matched first takes a literal segment after it
    regex, _, _ = compile_path("/v1/audit/{audit_id}")
    assert regex.match(_PARAM.sub(_SAMPLE, "/v1/audit/verify"))
    assert not regex.match(_PARAM.sub(_SAMPLE, "/v1/audit/{audit_id}/events"))


def test_every_parameterless_read_reaches_its_route(api: Api) -> None:
    """An admin's GET of each documented path without parameters is served (an
    unmatched path would be a 404, a path matched for another method a 405)."""
    served = {}
    for method, path in _operations(api):
        if method == "GET" and "{" not in path:
            served[path] = api.client.get(path, headers=api.admin).status_code
    assert "/v1/leaderboards" in served
    assert {path: status for path, status in served.items() if status in (404, 405)} == {}
