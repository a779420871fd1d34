"""The bot's FastAPI application: health, the API, the console, and what platforms mount.

``build_app(services=None)`` serves only health (and the routes platform adapters mount, see
:mod:`adapters.http.mounts`: what an adapter that receives events over HTTP needs on its own);
with services it adds ``/api/v1`` (and the seed's ``/chat``), the OpenAPI
document at ``/api/v1/openapi.json`` and its interactive docs at ``/api/docs``, served from
files shipped in the package (no CDN).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from adapters.http.console import install_console
from adapters.http.errors import install_error_handlers
from adapters.http.limits import BodyLimit
from adapters.http.mounts import BODY_LIMITS, PlatformRoutes, mount
from adapters.http.openapi import install_openapi
from adapters.http.routes import (
    agents,
    chat,
    conversations,
    documents,
    health,
    memories,
    messages,
    usage,
)
from adapters.http.security import SECURITY_HEADERS, inline_script_hashes, with_directives
from adapters.http.services import Services
from config.settings import Settings

API_PREFIX = "/api/v1"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = "/api/docs"
_DOCS_STATIC = "/api/docs/static"


def build_app(
    *,
    services: Services | None = None,
    settings: Settings | None = None,
    routes: Sequence[PlatformRoutes] = (),
) -> FastAPI:
    """``settings`` defaults to the services' (else to the settings' defaults): they give the
    body limit, ``API_MAX_BODY``, for everything but what ``routes`` (and the routes mounted
    later) ask for their own paths."""
    if settings is None:
        settings = services.settings if services is not None else Settings.model_construct()
    app = FastAPI(
        title="Parley API",
        version="1",
        summary="AI agents that remember: conversations, structured replies and goal checks.",
        openapi_url=OPENAPI_PATH if services is not None else None,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health.router)
    limits: dict[str, int] = {}
    setattr(app.state, BODY_LIMITS, limits)
    for platform in routes:
        mount(app, platform)
    if services is not None:
        app.state.services = services
        api = APIRouter(prefix=API_PREFIX)
        for module in (agents, documents, conversations, messages, memories, usage):
            api.include_router(module.router)
        limits[API_PREFIX + documents.UPLOAD_PATH] = documents.UPLOAD_LIMIT
        api.include_router(chat.router)
        app.include_router(api)
        app.include_router(chat.router)
        _install_docs(app)
        if services.settings.console_enabled:
            install_console(app, services)
        if services.settings.cors_origins:
            app.add_middleware(
                CORSMiddleware,
                allow_origins=services.settings.cors_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Accept"],
                max_age=600,
            )
    app.add_middleware(BodyLimit, limit=settings.api_max_body, by_path=limits)
    return app


def _docs_page() -> tuple[str, dict[str, str]]:
    """Swagger UI's page with the console's security headers, adjusted to what Swagger UI
    needs: its inline start-up script allowed by hash (no ``'unsafe-inline'``), and no
    referrer (people paste keys on this page). Its styles come from its stylesheet and the
    CSSOM, which ``style-src 'self'`` allows."""
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_PATH,
        title="Parley API",
        swagger_js_url=f"{_DOCS_STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{_DOCS_STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{_DOCS_STATIC}/favicon.png",
    )
    html = bytes(page.body).decode()
    policy = with_directives(
        SECURITY_HEADERS["Content-Security-Policy"],
        {"script-src": " ".join(["'self'", *inline_script_hashes(html)])},
    )
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
    }
    return html, headers


def _install_docs(app: FastAPI) -> None:
    static = resources.files("fastapi_offline") / "static"
    app.mount(_DOCS_STATIC, StaticFiles(directory=str(static)), name="docs-static")
    html, headers = _docs_page()

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)
