"""Sign in with an API key (exchanged for a session cookie; the key is not kept) and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from adapters.http.auth import TooManyFailures, authenticate
from adapters.http.console.auth import maybe_signed_in
from adapters.http.console.csrf import FIELD, CsrfRefused, check_token, read_form
from adapters.http.console.errors import SIGN_IN, ConsoleRoute, safe_next
from adapters.http.console.session import Session, clear_session, read_session, set_session
from adapters.http.console.state import console_of
from adapters.http.console.templating import page
from adapters.http.ratelimit import RateLimiter

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _form(
    request: Request, session: Session, *, target: str, status: int = 200, error: str = ""
) -> Response:
    response = page(
        request,
        "signin.html",
        user=None,
        status=status,
        csrf=session.csrf,
        next=target,
        error=error,
        section="signin",
    )
    set_session(response, request, console_of(request).codec, session)
    return response


def _anonymous(request: Request) -> Session:
    console = console_of(request)
    session = read_session(request, console.codec)
    if session is not None and not session.signed_in:
        return session
    return Session.anonymous(now=console.codec.now())


@router.get(SIGN_IN)
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if await maybe_signed_in(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _form(request, _anonymous(request), target=target)


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    console = console_of(request)
    fields = await read_form(request)
    target = safe_next(fields.get("next"))
    session = read_session(request, console.codec)
    try:
        check_token(session, fields.get(FIELD))
    except CsrfRefused:
        return _form(
            request,
            _anonymous(request),
            target=target,
            status=403,
            error="The sign-in form had expired. Please try again.",
        )
    assert session is not None  # noqa: S101 - check_token refuses a missing session
    try:
        record = await authenticate(console.services, request, fields.get("key", "").strip())
    except TooManyFailures as exc:
        seconds = RateLimiter.retry_after_header(exc.wait)
        response = _form(
            request,
            session,
            target=target,
            status=429,
            error=f"Too many failed sign-ins; wait {seconds} seconds and try again.",
        )
        response.headers["Retry-After"] = seconds
        return response
    if record is None:
        return _form(
            request,
            session,
            target=target,
            status=401,
            error="That key is unknown or revoked.",
        )
    signed = console.codec.new(
        key_id=record.id, scope=record.scope, agents=record.agents, hours=console.session_hours
    )
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, console.codec, signed)
    return response


@router.post("/console/signout")
async def sign_out(request: Request) -> Response:
    console = console_of(request)
    fields = await read_form(request)
    session = read_session(request, console.codec)
    if session is not None and session.signed_in:
        check_token(session, fields.get(FIELD))
        console.codec.sign_out(session)
    response = RedirectResponse(f"{SIGN_IN}?notice=signed-out", status_code=303)
    clear_session(response, request, console_of(request).codec)
    return response
