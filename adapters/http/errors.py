"""Every error the HTTP server answers is ``{"error": {"code", "message"}}`` with its status.

A :class:`~bot.errors.ParleyError` says its own status, code, client line and Retry-After;
anything else is a 500 with a generic line, logged here with its traceback. No traceback and
no secret ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.errors import ParleyError

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


class ApiError(ParleyError):
    """Raised by routes: becomes an error body with ``status``, the message as it is."""

    status = 400
    code = "bad_request"
    client_line = None

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

    def http_headers(self) -> dict[str, str]:
        return dict(self.headers or {})


class BodyTooLarge(StarletteHTTPException, ParleyError):
    """The request body passed the limit (raised while it is being read).

    An HTTPException because FastAPI, reading a JSON body, lets only those through: it turns
    any other error raised by ``receive`` into a 400 "error parsing the body"."""

    status = 413
    code = "payload_too_large"
    client_line = None

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


_UNEXPECTED = ParleyError()
"""What a client reads about an exception Parley did not raise on purpose."""


def log_hidden(exc: Exception, where: str) -> None:
    """Log a failure on our side that the client is not told about: a 500 with its traceback,
    a known outage (the store's 503) as one line. Refusals (4xx, or a 503 whose message the
    client reads, such as busy) are the client's to act on, and not logged."""
    if not isinstance(exc, ParleyError) or exc.status == 500:
        logger.error("unhandled error on %s", where, exc_info=exc)
    elif exc.status >= 500 and exc.client_line is not None:
        logger.warning("%s on %s: %s", exc.code, where, exc)


def parley_response(exc: ParleyError) -> JSONResponse:
    return error_response(
        exc.status, exc.client_message(), code=exc.code, headers=exc.http_headers()
    )


def install_error_handlers(app: FastAPI) -> None:
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

    @app.exception_handler(ParleyError)
    async def _parley(request: Request, exc: ParleyError) -> JSONResponse:
        log_hidden(exc, f"{request.method} {request.url.path}")
        return parley_response(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log_hidden(exc, f"{request.method} {request.url.path}")
        return parley_response(_UNEXPECTED)
