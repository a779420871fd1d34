"""Who is signed in: the session's key, re-checked as still active on every request.

Every signed-in request counts against the key's rate, as the API's requests do: pages
read the store and render what anyone in a conversation wrote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from adapters.http.console.session import COOKIE, Session
from adapters.http.console.state import console_of
from adapters.http.errors import ApiError
from adapters.http.ratelimit import RateLimiter
from bot.keys import place_allowed, place_limited, scope_allows
from memory.base import ApiKeyRecord


class SignInRequired(Exception):
    """No usable session; ``reason`` is a notice code of the sign-in page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConsoleUser:
    session: Session
    key: ApiKeyRecord
    """The key's current record (never the key itself)."""

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def can_write(self) -> bool:
        return scope_allows(self.key.scope, "write")

    @property
    def can_delete(self) -> bool:
        """Deleting (memories) needs ``admin``, as deleting through the API does."""
        return scope_allows(self.key.scope, "admin")

    @property
    def can_manage_agents(self) -> bool:
        """Changing an agent (its documents) needs ``admin`` and every platform and
        workspace, as through the API (:func:`adapters.http.routes.agents.check_manages`)."""
        return self.can_delete and not place_limited(self.key)

    @property
    def can_chat(self) -> bool:
        """Chats are API conversations: a key limited to other places cannot start one."""
        return self.can_write and place_allowed(self.key, "api", "")


async def signed_in(request: Request) -> ConsoleUser:
    console = console_of(request)
    raw = request.cookies.get(COOKIE)
    session = console.codec.decode(raw)
    if session is None or not session.signed_in:
        raise SignInRequired("expired" if raw and session is None else "signin")
    key = await console.services.keys.active(session.key_id)
    if key is None:
        raise SignInRequired("revoked")
    return ConsoleUser(session=session, key=key)


async def maybe_signed_in(request: Request) -> ConsoleUser | None:
    try:
        return await signed_in(request)
    except SignInRequired:
        return None


def spend(limiter: RateLimiter, user: ConsoleUser) -> None:
    """Count a request against the key's rate, as the API does (429 past it)."""
    wait = limiter.take(user.key.id)
    if wait is not None:
        raise ApiError(
            429,
            f"too many requests for this key; retry in {wait:.1f}s",
            headers={"Retry-After": limiter.retry_after_header(wait)},
        )


async def signed_in_reader(request: Request) -> ConsoleUser:
    user = await signed_in(request)
    spend(console_of(request).services.limiter, user)
    return user


async def signed_in_writer(request: Request) -> ConsoleUser:
    user = await signed_in(request)
    if not user.can_write:
        raise ApiError(403, f"this key has scope {user.key.scope!r}; this needs 'write'")
    spend(console_of(request).services.limiter, user)
    return user


async def signed_in_admin(request: Request) -> ConsoleUser:
    user = await signed_in(request)
    if not user.can_delete:
        raise ApiError(403, f"this key has scope {user.key.scope!r}; this needs 'admin'")
    spend(console_of(request).services.limiter, user)
    return user


User = Annotated[ConsoleUser, Depends(signed_in_reader)]
Editor = Annotated[ConsoleUser, Depends(signed_in_writer)]
Admin = Annotated[ConsoleUser, Depends(signed_in_admin)]
