"""Point discord.py at another Discord API (``DISCORD_API_URL``): a proxy, or a fake in tests.

discord.py builds every REST URL from the class attribute ``Route.BASE``. Its gateway URL does
not come from that API: a plain ``Client`` dials ``DiscordWebSocket.DEFAULT_GATEWAY``
(``wss://gateway.discord.gg/``) for its first connection and after a session is invalidated,
and the READY event's ``resume_gateway_url`` for resumes; only ``AutoShardedClient`` asks
``GET /gateway/bot``, and only for its first connections. So with an API URL set, Parley asks
that API for the gateway the usual way (``GET /gateway/bot``) and makes the answer discord.py's
default gateway; resumes then follow ``resume_gateway_url`` as the API sends it.

Both are process-wide class attributes (one Discord connection per process); :func:`restore`
puts the previous values back when the adapter stops.

The same answer carries the ``session_start_limit`` (:func:`ask_gateway`): how many IDENTIFYs
the token has left until ``reset_after``. The adapter reads it before connecting, so that a
restarting bot waits rather than burning the day's identifies.
"""

from __future__ import annotations

from dataclasses import dataclass

import yarl

from adapters.discord.discordpy import discord
from bot.errors import ParleyError

Route = discord.http.Route
DiscordWebSocket = discord.gateway.DiscordWebSocket


@dataclass(frozen=True, slots=True)
class Endpoints:
    """discord.py's REST base and default gateway, as they were before an override."""

    api_base: str
    gateway: yarl.URL


def current() -> Endpoints:
    return Endpoints(api_base=Route.BASE, gateway=DiscordWebSocket.DEFAULT_GATEWAY)


def use_api(api_url: str) -> Endpoints:
    """Send discord.py's REST calls to ``api_url`` (which includes the version, ``.../api/v10``).

    Returns the endpoints in use before, for :func:`restore`.
    """
    previous = current()
    Route.BASE = api_url.rstrip("/")
    return previous


@dataclass(frozen=True, slots=True)
class SessionStartLimit:
    """``session_start_limit`` of ``GET /gateway/bot``: IDENTIFYs left for the token."""

    total: int
    remaining: int
    reset_after: float
    """Seconds until ``remaining`` is back to ``total`` (Discord sends milliseconds)."""
    max_concurrency: int
    """IDENTIFYs allowed per five seconds."""


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """``GET /gateway/bot``: where to connect, how many shards Discord recommends, and the
    session start limit."""

    url: yarl.URL
    shards: int
    limit: SessionStartLimit


async def ask_gateway(http: discord.http.HTTPClient) -> GatewayInfo:
    """``GET /gateway/bot`` (authenticated; needs a logged-in ``http``)."""
    try:
        shards, url, limit = await http.get_bot_gateway()
    except discord.GatewayNotFound as exc:
        raise ParleyError(f"Discord API at {Route.BASE} did not say where its gateway is") from exc
    gateway = yarl.URL(url)
    if gateway.scheme not in {"ws", "wss"}:
        raise ParleyError(f"Discord API at {Route.BASE} gave a gateway that is not a websocket")
    try:
        return GatewayInfo(
            url=gateway,
            shards=max(1, int(shards)),
            limit=SessionStartLimit(
                total=int(limit["total"]),
                remaining=int(limit["remaining"]),
                reset_after=max(0.0, float(limit["reset_after"]) / 1000),
                max_concurrency=max(1, int(limit["max_concurrency"])),
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ParleyError(
            f"Discord API at {Route.BASE} gave no usable session_start_limit"
        ) from exc


def use_gateway(gateway: yarl.URL) -> None:
    """Make ``gateway`` discord.py's default gateway (see the module's docstring)."""
    DiscordWebSocket.DEFAULT_GATEWAY = gateway


def restore(previous: Endpoints) -> None:
    Route.BASE = previous.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = previous.gateway
