"""The app and its server together: what the runtime starts first and stops last."""

from __future__ import annotations

from fastapi import FastAPI

from adapters.http.app import build_app
from adapters.http.mounts import PlatformRoutes, mount
from adapters.http.server import HttpServer
from adapters.http.services import Services
from config.settings import Settings


class WebHost:
    """One FastAPI app on one port. A platform adapter that receives events over HTTP mounts
    its routes (:meth:`mount`) and calls :meth:`start`, which is a no-op when the runtime
    already started it.

    ``settings`` (else the services', else the defaults) give the body limits, the header
    timeout, the connection cap, the trusted proxies and whether requests are logged (in JSON
    log mode)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        services: Services | None = None,
        settings: Settings | None = None,
    ) -> None:
        if settings is None:
            settings = services.settings if services is not None else Settings.model_construct()
        self.app: FastAPI = build_app(services=services, settings=settings)
        self.server = HttpServer(
            self.app,
            host=host,
            port=port,
            header_timeout=settings.http_header_timeout,
            max_connections=settings.http_max_connections,
            trusted_proxies=settings.trusted_proxy_list,
            access_log=settings.log_format == "json",
        )

    def mount(self, routes: PlatformRoutes) -> None:
        """Serve a platform's ``routes`` (and their body limits) on this app."""
        mount(self.app, routes)

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
