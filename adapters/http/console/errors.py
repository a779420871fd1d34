"""Console routes answer with pages, errors included: a failure is an HTML page with its
status, a missing session a redirect to the sign-in page. Every response carries headers that
keep the pages out of frames, caches and other sites' reach."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.http.console.auth import SignInRequired, maybe_signed_in
from adapters.http.console.session import clear_session
from adapters.http.console.state import console_of
from adapters.http.console.templating import page
from adapters.http.errors import describe_validation, log_hidden
from adapters.http.security import SECURITY_HEADERS
from bot.errors import ParleyError

SIGN_IN = "/console/signin"
_SAFE_NEXT = re.compile(r"^/console(/[A-Za-z0-9/_.~%=&?+-]*)?$")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if target and _SAFE_NEXT.fullmatch(target) and "//" not in target:
        return target
    return "/console/conversations"


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def sign_in_redirect(request: Request, reason: str) -> Response:
    query = {"notice": reason}
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query["next"] = safe_next(target)
    response = RedirectResponse(f"{SIGN_IN}?{urlencode(query)}", status_code=303)
    if reason in ("expired", "revoked"):
        clear_session(response, request, console_of(request).codec)
    return response


def _describe(exc: Exception) -> tuple[int, str, dict[str, str]]:
    """The status, message and headers of a failure a person can act on, as the API answers
    it (each error says its own); re-raises a failure on our side (500) and anything not
    Parley's, for the app's handler to log and answer."""
    if isinstance(exc, RequestValidationError):
        return 422, describe_validation(list(exc.errors())), {}
    if not isinstance(exc, ParleyError) or exc.status == 500:
        raise exc
    log_hidden(exc, "a console page")
    return exc.status, exc.client_message(), exc.http_headers()


async def error_page(request: Request, exc: Exception) -> Response:
    status, message, headers = _describe(exc)
    user = await maybe_signed_in(request)
    return page(
        request,
        "error.html",
        user=user,
        status=status,
        headers=headers,
        status_code=status,
        message=message,
        section="",
    )


class ConsoleRoute(APIRoute):
    """A route whose failures become pages (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = sign_in_redirect(request, exc.reason)
            except Exception as exc:  # noqa: BLE001 - _describe re-raises what it does not know
                response = await error_page(request, exc)
            return secure(response)

        return console_handler
