"""Routes a platform adapter serves on the bot's HTTP server, beside the API and the console.

A platform that receives its events as HTTP requests (a webhook) owns its route: the adapter
builds it and mounts it on the :class:`adapters.http.host.WebHost` it is given, and this
package knows it only through :class:`PlatformRoutes`. Mounting may happen before or after
the server starts; the body limits it brings apply from then on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from fastapi import FastAPI
from fastapi.routing import APIRouter

BODY_LIMITS = "body_limits"
"""The app state's path-prefix -> largest body table, which :class:`BodyLimit` reads."""


class PlatformRoutes(Protocol):
    """What a platform adapter mounts on the bot's HTTP server."""

    @property
    def router(self) -> APIRouter:
        """Its routes (left out of the OpenAPI document, which is the API's)."""
        ...

    @property
    def body_limits(self) -> Mapping[str, int]:
        """Largest request body per path prefix, where the platform sends more than
        ``API_MAX_BODY`` allows (empty when it does not)."""
        ...


def mount(app: FastAPI, routes: PlatformRoutes) -> None:
    """Serve ``routes`` on ``app`` (built by :func:`adapters.http.app.build_app`)."""
    limits: dict[str, int] = getattr(app.state, BODY_LIMITS)
    limits.update(routes.body_limits)
    app.include_router(routes.router)
