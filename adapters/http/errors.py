"""Every error the HTTP server answers is ``{"error": {"code", "message"}}`` with its status.

Known failures map to their status; anything else is a 500 with a generic line, logged here
with its traceback. No traceback and no secret ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.catalog import ReadOnlyAgent
from bot.engine import ConversationBusy, EngineBusy, KeyBusy, NoGoal, UnknownAgent
from bot.errors import ConfigError, Conflict, NotFound, StoreError, StoreUnavailable

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


_UNPARSABLE_BODY = "There was an error parsing the body"
"""FastAPI's 400 for a JSON body it could not decode at all (bytes that are not UTF-8)."""


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """Raised by routes: becomes an error body with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers


class BodyTooLarge(StarletteHTTPException):
    """The request body passed the limit (raised while it is being read).

    An HTTPException because FastAPI, reading a JSON body, lets only those through: it turns
    any other error raised by ``receive`` into a 400 "error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit

    def __str__(self) -> str:
        return str(self.detail)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def describe_validation(errors: list[Any]) -> str:
    """``text: Field required; tags.0: ...``: each problem with the field it is about."""
    parts = []
    for error in errors[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        loc = [p for p in loc if not p.startswith("function-")]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return "; ".join(parts) or "invalid request"


_PLAIN: dict[type[Exception], tuple[int, str | None, dict[str, str] | None]] = {
    BodyTooLarge: (413, None, None),
    ConfigError: (422, None, None),
    ReadOnlyAgent: (409, "read_only", None),
    Conflict: (409, None, None),
    NoGoal: (409, "no_goal", None),
    UnknownAgent: (404, None, None),
    NotFound: (404, None, None),
    KeyBusy: (429, "too_many_turns", {"Retry-After": str(KeyBusy.retry_after)}),
    ConversationBusy: (
        429,
        "conversation_busy",
        {"Retry-After": str(ConversationBusy.retry_after)},
    ),
    EngineBusy: (503, "busy", {"Retry-After": str(EngineBusy.retry_after)}),
}
"""Errors whose own message is what the client reads: status, code (else the status's), headers.
Starlette picks the handler of the nearest class, so ReadOnlyAgent wins over Conflict."""


def plain_error(exc: Exception) -> tuple[int, dict[str, str] | None] | None:
    """The status and headers of an error whose own message is what people read (the table
    above, nearest class first), or None; the console renders the same mapping as pages."""
    for kind in type(exc).__mro__:
        found = _PLAIN.get(kind)
        if found is not None:
            status, _, headers = found
            return status, headers
    return None


def _plain(
    status: int, code: str | None, headers: dict[str, str] | None
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(status, str(exc), code=code, headers=headers)

    return handle


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(error.get("type") == "json_invalid" for error in errors):
            return error_response(400, "the body is not valid JSON", code="bad_json")
        return error_response(422, describe_validation(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 400 and message == _UNPARSABLE_BODY:  # FastAPI's, e.g. not UTF-8
            return error_response(400, "the body is not valid JSON", code="bad_json")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return error_response(exc.status_code, message, headers=exc.headers)

    for kind, (status, code, headers) in _PLAIN.items():
        app.add_exception_handler(kind, _plain(status, code, headers))

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        logger.warning("store unavailable: %s", exc)
        return error_response(
            503, "the store cannot be reached; try again shortly", code="store_unavailable"
        )

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        logger.warning("store error: %s", exc)
        return error_response(503, "the store failed; try again shortly", code="store_error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "something went wrong on our side")
