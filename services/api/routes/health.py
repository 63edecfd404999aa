"""Liveness and readiness probes (no key needed)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from infra.metrics import render_prometheus
from services.api.deps import PlatformDep, PrincipalDep
from services.api.problems import problems
from services.api.routes.reports import runner_alive

router = APIRouter(tags=["operations"])
log = structlog.get_logger(__name__)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    event_store: bool
    projections: dict[str, str]


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the event store answers and every read model runs healthily",
    responses={503: {"model": Readiness, "description": "not ready"}},
)
def readyz(platform: PlatformDep) -> JSONResponse:
    try:
        platform.app.head()
        store_ok = True
    except Exception:  # any failure to read the store means "not ready", never a 500
        log.warning("readyz.event_store_unreachable", exc_info=True)
        store_ok = False
    states: dict[str, str] = {}
    for name, runner in platform.runners.items():
        if platform.settings.run_projections and not runner_alive(platform, name):
            states[name] = "stopped"
        elif not runner.healthy:
            states[name] = "dead-letters"
        else:
            states[name] = "ok"
    ready = store_ok and all(s == "ok" for s in states.values())
    body = Readiness(
        status="ready" if ready else "not-ready", event_store=store_ok, projections=states
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics: read-model positions, lag, failures; relay lag",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain; version=0.0.4": {}}}, **problems()},
)
def metrics(platform: PlatformDep, principal: PrincipalDep) -> PlainTextResponse:
    """Scrape with a bearer key (Prometheus ``authorization`` config); any role may read."""
    return PlainTextResponse(
        render_prometheus(platform), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
