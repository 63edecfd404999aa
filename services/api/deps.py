"""Request dependencies as ``Annotated`` aliases; tests swap them with
``app.dependency_overrides``."""

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


async def get_auth_limiter(request: Request) -> AuthFailureLimiter:
    limiter: AuthFailureLimiter = request.app.state.auth_limiter
    return limiter


PlatformDep = Annotated[Platform, Depends(get_platform)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
AuthLimiterDep = Annotated[AuthFailureLimiter, Depends(get_auth_limiter)]


async def authenticate(
    request: Request,
    limiter: AuthLimiterDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller's principal from its bearer key (cached lookups stay on the event
    loop; a cache miss reads the key store in the thread pool). Failed keys are
    rate-limited per client address (services/api/ratelimit.py)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("an API key is required", invalid=False)
    token = credentials.credentials
    # the key store straight from the app state: one dependency fewer to solve on
    # every request (each costs FastAPI tens of microseconds)
    keys: KeyStore = request.app.state.keys
    principal = keys.cached(token)
    if principal is None:
        principal = await run_in_threadpool(keys.authenticate, token)
    if principal is None:
        client = request.client.host if request.client is not None else "unknown"
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


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def idempotency_key(
    key: Annotated[
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
    ] = None,
) -> str | None:
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ProblemError(
            400,
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Everything a write route needs besides its command: who asks, the retry key,
    the request id, the platform, and the response whose headers it sets."""

    platform: Platform
    principal: Principal
    idempotency_key: str | None
    request_id: str | None
    response: Response

    @property
    def actor(self) -> str:
        return self.principal.actor


async def write_context(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyDep,
) -> WriteContext:
    """One dependency for every write route (FastAPI solves each dependency at a
    cost of tens of microseconds per request)."""
    state = request.scope.get("state") or {}
    return WriteContext(
        platform=request.app.state.platform,
        principal=principal,
        idempotency_key=idempotency_key,
        request_id=state.get("request_id"),
        response=response,
    )


WriteDep = Annotated[WriteContext, Depends(write_context)]
