"""Request dependencies as ``Annotated`` aliases; tests swap them with
``app.dependency_overrides`` (or, for the key store and the authentication
limiter, which are read from the app state, by swapping ``app.state``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from infra.settings import Settings
from services.api.problems import AuthenticationError, ProblemError
from services.api.ratelimit import AuthFailureLimiter
from services.bootstrap import Platform
from services.keys import KeyStore
from services.principals import Principal

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer civic_<key_id>_<secret>`",
)
log = structlog.get_logger(__name__)
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.platform.settings
    return settings


async def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


PlatformDep = Annotated[Platform, Depends(get_platform)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller's principal from its bearer key (cached lookups stay on the event
    loop; a cache miss reads the key store in the thread pool). Failed keys are
    rate-limited per client address (services/api/ratelimit.py).

    The key store and the limiter come straight from the app state, not as
    dependencies: each dependency costs FastAPI tens of microseconds per request
    (tests swap ``app.state.auth_limiter``)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("an API key is required", invalid=False)
    token = credentials.credentials
    keys: KeyStore = request.app.state.keys
    principal = keys.cached(token)
    if principal is None:
        principal = await run_in_threadpool(keys.authenticate, token)
    if principal is None:
        client = request.client.host if request.client is not None else "unknown"
        limiter: AuthFailureLimiter = request.app.state.auth_limiter
        retry_after = limiter.failed(client)
        if retry_after is not None:
            log.warning("auth.rate_limited", client=client, retry_after=retry_after)
            raise ProblemError(
                429,
                "too-many-authentication-failures",
                "too many failed authentications from this address; retry later",
                headers={"Retry-After": str(retry_after)},
            )
        raise AuthenticationError("the API key is invalid or revoked", invalid=True)
    request.state.actor = principal.actor
    structlog.contextvars.bind_contextvars(actor=principal.actor)
    return principal


async def authenticate(request: Request, credentials: BearerDep) -> Principal:
    return await _principal(request, credentials)


PrincipalDep = Annotated[Principal, Depends(authenticate)]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Makes the request safe to retry: a retry with the same key and body "
            "returns the original result (with `Idempotent-Replayed: true`) and "
            "records nothing new. 1-255 visible ASCII characters."
        ),
        json_schema_extra={"pattern": _IDEMPOTENCY_KEY.pattern},
    ),
]


def _checked_idempotency_key(key: str | None) -> str | None:
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ProblemError(
            400,
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
    return key


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Everything a write route needs besides its command: who asks, the retry key,
    the platform, and the response whose headers it sets. (The request id reaches the
    writer's log lines through the structlog context ``submit`` captures.)"""

    platform: Platform
    principal: Principal
    idempotency_key: str | None
    response: Response


async def write_context(
    request: Request,
    response: Response,
    credentials: BearerDep,
    key: IdempotencyKeyHeader = None,
) -> WriteContext:
    """The one dependency of every write route: authentication and the
    ``Idempotency-Key`` header are solved here directly rather than as dependencies
    of their own (FastAPI solves each dependency at a cost of tens of microseconds
    per request: this leaves two per write, this one and the bearer scheme)."""
    principal = await _principal(request, credentials)
    return WriteContext(
        platform=request.app.state.platform,
        principal=principal,
        idempotency_key=_checked_idempotency_key(key),
        response=response,
    )


WriteDep = Annotated[WriteContext, Depends(write_context)]
