"""Batches: many commands, one transaction, one outcome per item."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services import commands as c
from services.api.deps import WriteDep
from services.api.problems import ProblemError, problem_body, problems, status_for
from services.api.schemas import BatchItemResult, BatchResponse
from services.application import BatchItem

router = APIRouter(prefix="/v1", tags=["batch"])

IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]

# commands whose single-request route answers 201 Created
CREATING: frozenset[type[c.Command]] = frozenset(
    {
        c.OpenUnit,
        c.RegisterVolunteer,
        c.PublishActivity,
        c.SignUp,
        c.CheckIn,
        c.CheckOut,
        c.ConfirmService,
        c.AwardPoints,
        c.AdjustPoints,
        c.ListReward,
        c.Redeem,
        c.FormTeam,
        c.JoinTeam,
        c.AddMenuItem,
        c.PlaceOrder,
    }
)


class BatchItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: IdempotencyKey | None = Field(
        default=None, description="makes this item safe to retry (as the header does)"
    )
    command: c.AnyCommand


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItemIn] = Field(min_length=1)


def _item_key(batch_key: str | None, index: int) -> str | None:
    if batch_key is None:
        return None
    key = f"{batch_key}/{index}"
    if len(key) > 255:
        key = f"{hashlib.sha256(batch_key.encode()).hexdigest()}/{index}"
    return key


@router.post(
    "/batch",
    summary="Run many commands in one transaction; each item succeeds or fails on its own",
    description=(
        "Items run in order (later items see earlier items' changes); the events of "
        "every successful item commit together in one transaction, failed items leave "
        "no trace. Each item reports the status it would have had as a single request. "
        "An `Idempotency-Key` header gives items without their own key the key "
        "`<header key>/<index>`, so a retried batch replays its successful items."
    ),
    responses=problems(400, 413),
)
async def run_batch(body: BatchRequest, write: WriteDep) -> BatchResponse:
    limit = write.platform.settings.max_batch_items
    if len(body.items) > limit:
        raise ProblemError(422, "too-many-items", f"a batch holds at most {limit} items")
    items = [
        BatchItem(item.command, item.idempotency_key or _item_key(write.idempotency_key, i))
        for i, item in enumerate(body.items)
    ]
    outcomes = await asyncio.wrap_future(write.platform.app.submit_batch(items, write.principal))
    results: list[BatchItemResult] = []
    for i, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
        if outcome.ok:
            results.append(
                BatchItemResult(
                    index=i,
                    status=201 if type(item.command) in CREATING else 200,
                    result=outcome.result,
                    position=outcome.position,
                    replayed=outcome.replayed,
                )
            )
        else:
            assert outcome.error is not None  # noqa: S101 - a failed outcome has its error
            status = status_for(outcome.error)
            problem = problem_body(
                status, outcome.error.code, outcome.error.detail, f"/v1/batch#/items/{i}"
            )
            results.append(BatchItemResult(index=i, status=status, problem=problem))
    if results and all(r.replayed for r in results):
        write.response.headers["Idempotent-Replayed"] = "true"
    positions = [r.position for r in results if r.position is not None]
    succeeded = sum(1 for r in results if r.problem is None)
    return BatchResponse(
        succeeded=succeeded,
        failed=len(results) - succeeded,
        position=max(positions) if positions else None,
        items=results,
    )
