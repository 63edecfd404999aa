"""The one way routes run a command and wait for read models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from services.api.deps import WriteContext
from services.api.problems import ProblemError
from services.api.schemas import WriteResponse
from services.bootstrap import Platform
from services.commands import Command

W = TypeVar("W", bound=WriteResponse)


async def run(
    write: WriteContext,
    command: Command,
    model: type[W],
    *,
    location: Callable[[W], str] | None = None,
) -> W:
    """Submit ``command`` to the application's single writer, await its durable
    commit without holding a thread, and shape its result as ``model``: the
    ``Idempotent-Replayed`` header on a replay, ``Location`` when given. A refusal
    raises its domain error, which the problem handlers turn into a problem."""
    future = write.platform.app.submit(command, write.principal, write.idempotency_key)
    outcome = await asyncio.wrap_future(future)
    body = model.model_validate(
        {**outcome.result, "position": outcome.position, "replayed": outcome.replayed}
    )
    if outcome.replayed:
        write.response.headers["Idempotent-Replayed"] = "true"
    if location is not None:
        write.response.headers["Location"] = location(body)
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
