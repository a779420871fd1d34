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
"""

from __future__ import annotations

from dataclasses import dataclass

import yarl

from adapters.discordpy import discord
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


async def use_gateway_of_api(http: discord.http.HTTPClient) -> yarl.URL:
    """Ask the API for its gateway (``GET /gateway/bot``, authenticated) and make it discord.py's
    default gateway. Needs a logged-in ``http``."""
    try:
        _, url, _ = await http.get_bot_gateway()
    except discord.GatewayNotFound as exc:
        raise ParleyError(f"Discord API at {Route.BASE} did not say where its gateway is") from exc
    gateway = yarl.URL(url)
    if gateway.scheme not in {"ws", "wss"}:
        raise ParleyError(f"Discord API at {Route.BASE} gave a gateway that is not a websocket")
    DiscordWebSocket.DEFAULT_GATEWAY = gateway
    return gateway


def restore(previous: Endpoints) -> None:
    Route.BASE = previous.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = previous.gateway
