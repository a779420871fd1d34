"""``Authorization: Bearer KEY`` on every API route, with the key's scope, agents and rate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.http.errors import ApiError
from adapters.http.services import Services
from bot.keys import agent_allowed, scope_allows
from memory.base import ApiKeyRecord, Scope

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_BEARER = HTTPBearer(
    auto_error=False,
    description="An API key: python -m bot keys create --name NAME --scope read|write|admin",
)
"""Declares the scheme in the OpenAPI document (so /api/docs can send a key); the header is
checked below, with this module's own error bodies."""


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
        record = await found.keys.authenticate(token.strip())
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
