"""Forms that change something carry the session's CSRF token; requests without it are refused.

Forms post ``application/x-www-form-urlencoded`` with a ``csrf`` field; the chat's script
sends the token in the ``X-CSRF-Token`` header. The token lives in the signed session, so a
page from another site can neither read nor forge it.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.requests import Request

from adapters.http.console.session import Session
from adapters.http.errors import ApiError
from bot.errors import ParleyError

FIELD = "csrf"
HEADER = "x-csrf-token"
_FORM_TYPE = "application/x-www-form-urlencoded"


class CsrfRefused(ParleyError):
    """The token is missing or is not this session's."""

    status = 403
    code = "forbidden"
    client_line = (
        "This form has expired or did not come from this console. Reload the page and try again."
    )


def check_token(session: Session | None, token: str | None) -> None:
    if (
        session is None
        or not token
        or not hmac.compare_digest(token.encode("utf-8"), session.csrf.encode("utf-8"))
    ):
        raise CsrfRefused


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the first value of each name)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type != _FORM_TYPE and (body or content_type):
        raise ApiError(415, "send the form as application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the form is not UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=100)
    except ValueError:
        raise ApiError(400, "the form has too many fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


async def checked_form(request: Request, session: Session | None) -> dict[str, str]:
    """The posted fields, once their CSRF token matched ``session``'s."""
    fields = await read_form(request)
    check_token(session, fields.get(FIELD))
    return fields
