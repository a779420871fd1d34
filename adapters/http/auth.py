"""``Authorization: Bearer KEY`` on every API route, with the key's scope, agents and rate.

Failed authentications are throttled per client address (``AUTH_FAILURE_RATE`` and
``AUTH_FAILURE_BURST``, one budget shared with the console's sign-in): past it the answer is
429 before the key is even looked up, so guessing stops; a key that works costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.http.errors import ApiError
from adapters.http.ratelimit import RateLimiter
from adapters.http.services import Services
from bot.errors import ParleyError
from bot.keys import agent_allowed, scope_allows
from memory.base import ApiKeyRecord, Scope

logger = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_BEARER = HTTPBearer(
    auto_error=False,
    description="An API key: python -m bot keys create --name NAME --scope read|write|admin",
)
"""Declares the scheme in the OpenAPI document (so /api/docs can send a key); the header is
checked below, with this module's own error bodies."""


class TooManyFailures(ParleyError):
    """The client address failed to authenticate too often; ``wait`` seconds until the next
    attempt is looked at."""

    status = 429
    code = "rate_limited"
    client_line = None

    def __init__(self, wait: float) -> None:
        seconds = RateLimiter.retry_after_header(wait)
        super().__init__(f"too many failed authentications from this address; retry in {seconds}s")
        self.wait = wait
        self.retry_after = int(seconds)


def client_address(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded (the server's
    ``forwarded_allow_ips`` rewrites it before the app sees the request)."""
    return request.client.host if request.client else "unknown"


async def authenticate(found: Services, request: Request, key: str) -> ApiKeyRecord | None:
    """The key's record, or None (logged with the client's address, never the key).

    Raises :class:`TooManyFailures` without looking the key up when the address is over its
    budget of failures. The token is taken before the lookup and given back on success, so
    concurrent guesses cannot all pass a check made before any of them failed. A key that
    authenticated here lately is looked up even when the budget is spent: a client with many
    requests in flight holds many tokens at once, and is not refused for that."""
    address = client_address(request)
    wait = found.auth_failures.take(address)
    if wait is not None and not found.keys.vouched(key):
        raise TooManyFailures(wait)
    record = await found.keys.authenticate(key)
    if record is None:
        logger.warning(
            "authentication failed from %s on %s %s: unknown or revoked key",
            address,
            request.method,
            request.url.path,
        )
        return None
    if wait is None:
        found.auth_failures.give_back(address)
    return record


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def _services(request: Request) -> Services:
    """The dependency is async: FastAPI runs a plain ``def`` dependency in a worker thread,
    a thread hop on every request for a dictionary lookup."""
    return services(request)


ServicesDep = Annotated[Services, Depends(_services)]


def require(scope: Scope) -> Callable[..., Awaitable[ApiKeyRecord]]:
    """A dependency: the caller's key, which must have ``scope`` and be within its rate."""

    async def authorised(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> ApiKeyRecord:
        found = services(request)
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise ApiError(401, "send an API key: Authorization: Bearer KEY", headers=_CHALLENGE)
        record = await authenticate(found, request, token.strip())
        if record is None:
            raise ApiError(401, "the API key is unknown or revoked", headers=_CHALLENGE)
        wait = found.limiter.take(record.id)
        if wait is not None:
            raise ApiError(
                429,
                f"too many requests for this key; retry in {wait:.1f}s",
                headers={"Retry-After": found.limiter.retry_after_header(wait)},
            )
        if not scope_allows(record.scope, scope):
            raise ApiError(403, f"this key has scope {record.scope!r}; this needs {scope!r}")
        return record

    return authorised


def check_agent(record: ApiKeyRecord, agent_id: str) -> None:
    if not agent_allowed(record, agent_id):
        raise ApiError(403, f"this key may not use agent {agent_id!r}")


Reader = Annotated[ApiKeyRecord, Depends(require("read"))]
Writer = Annotated[ApiKeyRecord, Depends(require("write"))]
Admin = Annotated[ApiKeyRecord, Depends(require("admin"))]
