"""The one way routes run a command and wait for read models."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Response

from services.api.problems import ProblemError
from services.api.schemas import WriteResponse
from services.bootstrap import Platform
from services.commands import Command
from services.principals import Principal

W = TypeVar("W", bound=WriteResponse)


def run(
    platform: Platform,
    principal: Principal,
    command: Command,
    idempotency_key: str | None,
    response: Response,
    model: type[W],
    *,
    location: Callable[[W], str] | None = None,
) -> W:
    """Execute ``command`` (blocking on the group commit: call from a sync route,
    which FastAPI runs in its thread pool) and shape its result as ``model``."""
    outcome = platform.app.execute(command, principal, idempotency_key)
    body = model.model_validate(
        {**outcome.result, "position": outcome.position, "replayed": outcome.replayed}
    )
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if location is not None:
        response.headers["Location"] = location(body)
    return body


def wait_for_projection(platform: Platform, name: str, min_position: int | None) -> None:
    """Read-your-writes: block until projection ``name`` has applied ``min_position``;
    503 with ``Retry-After`` when it does not catch up in time."""
    if min_position is None or min_position <= 0:
        return
    if min_position > platform.app.head():  # no write returned it: a client error
        raise ProblemError(
            422,
            "unknown-position",
            f"position {min_position} has not been recorded; pass the position a write returned",
        )
    runner = platform.runners.get(name)
    if runner is None:
        raise ProblemError(503, "projection-unavailable", f"the {name} read model is not running")
    if not platform.wait_for_view(name, min_position, platform.settings.read_wait_timeout):
        raise ProblemError(
            503,
            "projection-behind",
            f"the {name} read model has not reached position {min_position} yet",
            headers={"Retry-After": "1"},
        )
