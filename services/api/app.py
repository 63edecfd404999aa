"""The app factory. Nothing connects at import time: the lifespan builds the
platform (unless one is given), opens the key store, starts the projection
runners, and closes what it opened on shutdown.

Run it with ``uvicorn services.api.app:create_app --factory``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from infra.logging import configure_logging, flush_logs
from infra.settings import Settings
from services.api import problems
from services.api.middleware import RequestMiddleware
from services.api.ratelimit import AuthFailureLimiter
from services.api.routes import (
    activities,
    audit,
    audit_replay,
    batch,
    corrections,
    funds,
    health,
    keys,
    orders,
    passbooks,
    reports,
    rewards,
    service_menu,
    teams,
    units,
    venture,
    volunteers,
    wishes,
)
from services.bootstrap import Platform
from services.keys import KeyStore

log = structlog.get_logger(__name__)

DESCRIPTION = """
The civic volunteering platform of a New Era Civilization Practice network
(新时代文明实践): practice units, volunteers, activities, the love passbook
(爱心存折) and the charity exchange bank (公益兑换储蓄银行).

* **Authentication**: every route except the probes needs an API key,
  `Authorization: Bearer civic_<key_id>_<secret>`. A unit admin or service key acts
  and reads only within its unit's subtree; an auditor reads everything and writes
  nothing.
* **Retries**: send an `Idempotency-Key` header with every POST and DELETE; a retry
  with the same key and body returns the original result with
  `Idempotent-Replayed: true`.
* **Read-your-writes**: every write returns the `position` of its last event; pass
  it as `min_position` to the leaderboard, metrics and audit reads.
* **Errors** are RFC 9457 problem details (`application/problem+json`) with a stable
  `code`.
"""

TAGS = [
    {"name": "units", "description": "The center > institute > station hierarchy"},
    {"name": "volunteers", "description": "Registration and profiles"},
    {"name": "activities", "description": "Activities, sign-ups, attendance, confirmation"},
    {"name": "passbooks", "description": "Points: balance, lots, statement, awards"},
    {"name": "rewards", "description": "The exchange bank's catalogue"},
    {"name": "redemptions", "description": "Points exchanged for rewards"},
    {"name": "wishes", "description": "Micro-wishes (微心愿): post, claim, fulfil, confirm"},
    {"name": "venture", "description": "Venture philanthropy calls (公益创投) and projects"},
    {"name": "funds", "description": "Community charity funds (社区慈善基金), amounts in fen"},
    {"name": "teams", "description": "Volunteer teams (志愿服务队): corps, detachments, teams"},
    {"name": "service menu", "description": "Each unit's menu of services residents may order"},
    {
        "name": "orders",
        "description": "Service orders: 点单→审单→派单→接单→评单→晒单, timers and overdue lists",
    },
    {"name": "batch", "description": "Many commands in one transaction"},
    {"name": "reports", "description": "Leaderboards (from the read models)"},
    {"name": "audit", "description": "Who did what, when"},
    {"name": "corrections", "description": "Corrections of service records"},
    {"name": "keys", "description": "API keys"},
    {"name": "operations", "description": "Probes and read-model status"},
]


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    settings = platform.settings if platform is not None else (settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_format, settings.log_level, background=True)
        owned = platform is None
        running = Platform.build(settings) if platform is None else platform
        key_store = KeyStore(settings.keys_db)
        app.state.platform = running
        app.state.keys = key_store
        try:
            running.start()
            log.info("api.started", projections=sorted(running.runners))
            yield
        finally:
            key_store.close()
            if owned:
                running.close()
            log.info("api.stopped")
            flush_logs()

    app = FastAPI(
        title="Civic volunteering platform",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    problems.install(app)
    app.state.auth_limiter = AuthFailureLimiter(
        settings.auth_failure_limit, settings.auth_failure_window
    )
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes)
    # Requests are matched against the routers in this order, route by route (and the
    # matching router's routes twice over): the busiest writes come first.
    # Documentation order is the tags' (TAGS); tests/e2e/test_routing.py checks that
    # no route shadows another, whatever the order.
    for router in (
        activities.router,
        passbooks.router,
        batch.router,
        rewards.redemptions,
        orders.router,
        units.router,
        volunteers.router,
        rewards.rewards,
        wishes.router,
        venture.router,
        funds.router,
        teams.router,
        service_menu.router,
        reports.router,
        audit_replay.router,
        corrections.router,
        audit.router,
        keys.router,
        health.router,
    ):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = problems.problem_media_type_in_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    return app
