"""The request middleware (pure ASGI, one layer): request id, access log, body
size limit and the last-resort 500.

* ``X-Request-ID``: taken from the request when it is sane (1-128 characters of
  ``[A-Za-z0-9._:-]``), generated otherwise (32 hex digits: a random prefix drawn
  once per process, then a counter); echoed on the response, kept in the request
  state (``request.state.request_id``) and bound to structlog's context variables
  for every log line of the request.
* One access log line per request: request id, actor (``key:<id>``, bound by the
  authentication dependency), method, route template (never the raw path or query,
  which may carry personal data), status and duration. Headers are never logged.
* Bodies larger than ``max_body_bytes`` are refused with 413: at once when
  ``Content-Length`` says so, or as soon as the streamed body passes the limit.
* An exception that escapes the app is logged with its traceback and answered
  with a bare 500 problem.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.problems import problem_response

ACCESS_LOGGER = "civic.access"

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIds:
    """Unique request ids, cheaply: 16 random hex digits drawn once per process
    (again in a forked child), then a 16-digit hex counter. Unique across processes
    like a uuid4, without reading the OS's random source on every request."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


request_ids = RequestIds()
os.register_at_fork(after_in_child=request_ids.reseed)


class BodyTooLargeError(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "the request body is too large")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
                return None
    return None


_DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return scope["path"] if scope.get("path") in _DOC_PATHS else "<unmatched>"


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        supplied = _header(scope, b"x-request-id")
        request_id = (
            supplied if supplied and _SANE_REQUEST_ID.match(supplied) else request_ids.next()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
            await send(message)

        try:
            length = _header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                if length.isdigit():
                    response = problem_response(
                        413,
                        "content-too-large",
                        f"the request body exceeds {self.max_body_bytes} bytes",
                        scope.get("path"),
                    )
                else:
                    response = problem_response(
                        400, "bad-request", "invalid Content-Length", scope.get("path")
                    )
                await response(scope, receive, send_wrapper)
                return
            await self.app(scope, self._limited(receive), send_wrapper)
        except Exception:
            structlog.get_logger(ACCESS_LOGGER).exception(
                "http.unhandled_error", route=_route_template(scope)
            )
            if response_started:
                raise
            response = problem_response(
                500, "internal-error", "an unexpected error occurred", scope.get("path")
            )
            await response(scope, receive, send_wrapper)
        finally:
            state: dict[str, Any] = scope.get("state") or {}
            # fetched per request (a few microseconds) so that reconfiguring logging,
            # e.g. structlog.testing.capture_logs, applies to it
            structlog.get_logger(ACCESS_LOGGER).info(
                "http.request",
                actor=state.get("actor"),
                method=scope.get("method"),
                route=_route_template(scope),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()

    def _limited(self, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError
            return message

        return receive_limited
