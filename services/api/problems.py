"""RFC 9457 problem details: every error the API returns, as ``application/problem+json``.

Domain errors map by family (not found 404, conflict 409, rule violation 422),
the caller's reach to 403, authentication to 401, malformed requests to 400/413/
422. Anything unexpected becomes a bare 500 problem, logged with its traceback by
the request middleware; internals never reach the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from domain.errors import ConflictError, DomainError, NotFoundError, RuleViolationError
from infra.event_store import EventStoreFullError
from services.application import IdempotencyMismatchError
from services.principals import ForbiddenError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:civic:problem:"


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="where: e.g. ['body', 'capacity']")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": "urn:civic:problem:out-of-stock",
                "title": "Conflict",
                "status": 409,
                "detail": "only 0 left in stock, 1 requested",
                "instance": "/v1/redemptions",
                "code": "out-of-stock",
            }
        }
    )

    type: str = Field(description="a URI identifying the problem type")
    title: str = Field(description="a short summary of the problem type")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request")
    instance: str | None = Field(default=None, description="the request path")
    code: str = Field(description="stable machine-readable error code")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="field-level validation errors (422)"
    )


class AuthenticationError(Exception):
    """No credentials, or credentials that do not identify an active key."""

    code = "unauthenticated"

    def __init__(self, detail: str, *, invalid: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.invalid = invalid


class ProblemError(Exception):
    """A problem raised by the HTTP layer itself (bad header, timeout...)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = errors


def problem_body(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{TYPE_BASE}{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, instance, errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers) if headers else None,
    )


def status_for(exc: DomainError | ForbiddenError) -> int:
    """The HTTP status of a domain or authorisation error (also used per batch item)."""
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):  # includes the application's ConcurrencyError
        return 409
    if isinstance(exc, RuleViolationError | IdempotencyMismatchError):
        return 422
    return 422


def clean_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors without ``input``/``ctx``/``url``: the input may echo personal
    data (an identity number), and ``ctx`` may hold non-JSON objects."""
    cleaned = []
    for e in errors:
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
        cleaned.append({"loc": loc, "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))})
    return cleaned


# -- handlers ------------------------------------------------------------------------


def _instance(request: Request) -> str:
    return request.url.path


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError | ForbiddenError)  # noqa: S101 - registered for these
    return problem_response(status_for(exc), exc.code, exc.detail, _instance(request))


async def _authentication_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthenticationError)  # noqa: S101 - registered for it
    challenge = 'Bearer error="invalid_token"' if exc.invalid else "Bearer"
    return problem_response(
        401, exc.code, exc.detail, _instance(request), headers={"WWW-Authenticate": challenge}
    )


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)  # noqa: S101 - registered for it
    return problem_response(
        exc.status,
        exc.code,
        exc.detail,
        _instance(request),
        errors=exc.errors,
        headers=exc.headers,
    )


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(
            400, "malformed-json", "the request body is not valid JSON", _instance(request)
        )
    return problem_response(
        422,
        "invalid-request",
        "the request does not match the expected schema",
        _instance(request),
        errors=clean_errors(errors),
    )


async def _pydantic_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)  # noqa: S101 - registered for it
    return problem_response(
        422,
        "invalid-request",
        "the request does not match the expected schema",
        _instance(request),
        errors=clean_errors(exc.errors()),
    )


STORE_RETRY_AFTER = "1"  # seconds: a write lock is usually released within one


async def _persistence_error(request: Request, exc: Exception) -> JSONResponse:
    """The event store could not record the command (nothing was written): 507 when
    the disk is full, else 503 with ``Retry-After`` (busy, unavailable)."""
    assert isinstance(exc, PersistenceError)  # noqa: S101 - registered for it
    code = str(getattr(exc, "code", "event-store-unavailable"))
    log.warning("event_store.write_refused", code=code, error=str(exc), path=_instance(request))
    if isinstance(exc, EventStoreFullError):
        return problem_response(
            507,
            code,
            "the event store is out of space: nothing was recorded; retry once space is freed",
            _instance(request),
        )
    return problem_response(
        503,
        code,
        "the event store cannot record commands right now: nothing was recorded; retry",
        _instance(request),
        headers={"Retry-After": STORE_RETRY_AFTER},
    )


_HTTP_CODES = {
    400: ("malformed-body", "the request body could not be parsed as UTF-8 JSON"),
    404: ("not-found", "no such resource"),
    405: ("method-not-allowed", "this method is not allowed on this resource"),
    413: ("content-too-large", "the request body is too large"),
}


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it
    code, detail = _HTTP_CODES.get(
        exc.status_code, (HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-"), "")
    )
    return problem_response(
        exc.status_code,
        code,
        detail or HTTPStatus(exc.status_code).description or HTTPStatus(exc.status_code).phrase,
        _instance(request),
        headers=exc.headers,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(ForbiddenError, _domain_error)
    app.add_exception_handler(AuthenticationError, _authentication_error)
    app.add_exception_handler(ProblemError, _api_problem)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(ValidationError, _pydantic_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(PersistenceError, _persistence_error)


# -- OpenAPI -------------------------------------------------------------------------

_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, bad header)",
    401: "Missing or invalid API key",
    403: "The key may not do this (role, or outside its unit's subtree)",
    404: "No such resource",
    409: "Conflicts with the current state",
    413: "Request body too large",
    422: "Invalid input or a broken business rule",
    429: "Too many failed authentications from this address (retry after Retry-After)",
    503: "The read model has not caught up yet, or the event store is busy "
    "(retry after the Retry-After delay)",
    507: "The event store is out of space (nothing was recorded)",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem bodies. 400, 401, 413, 422 and
    429 always: every route parses headers and bodies, authenticates and validates."""
    return {
        s: {"model": Problem, "description": _DESCRIPTIONS.get(s, HTTPStatus(s).phrase)}
        for s in sorted({400, 401, 413, 422, 429, *statuses})
    }


def problem_media_type_in_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Document error responses as ``application/problem+json`` (FastAPI documents
    every response model as ``application/json``)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content")
                if str(status)[0] not in "45" or not content:
                    continue
                for media in list(content):
                    ref = content[media].get("schema", {}).get("$ref", "")
                    if media == "application/json" or ref.endswith("/Problem"):
                        # (a plain-text route documents its problems as text/plain)
                        content[PROBLEM_JSON] = content.pop(media)
    return schema
