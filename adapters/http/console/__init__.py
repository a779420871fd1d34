"""The web console at ``/console``: server-rendered pages over the API's services.

``install_console(app, services)`` mounts its stylesheet and script and adds its routes (and
the body limit of its document upload).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from adapters.http.console import actions, chat, documents, memories, pages, signin
from adapters.http.console.state import Console
from adapters.http.mounts import BODY_LIMITS
from adapters.http.services import Services

STATIC_PATH = "/console/static"


def install_console(app: FastAPI, services: Services) -> None:
    app.state.console = Console.build(services)
    static = resources.files("adapters.http.console") / "static"
    app.mount(STATIC_PATH, StaticFiles(directory=str(static)), name="console-static")
    limits: dict[str, int] = getattr(app.state, BODY_LIMITS)
    limits.update(documents.BODY_LIMITS)
    for router in (
        signin.router,
        actions.router,
        chat.router,
        chat.stream_router,
        memories.router,
        documents.router,
        pages.router,  # last: its catch-all answers every other console path
    ):
        app.include_router(router)


__all__ = ["install_console"]
