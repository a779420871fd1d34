"""The web console at ``/console``: server-rendered pages over the API's services.

``install_console(app, services)`` mounts its stylesheet and script and adds its routes.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from adapters.http.console import actions, chat, memories, pages, signin
from adapters.http.console.state import Console
from adapters.http.services import Services

STATIC_PATH = "/console/static"


def install_console(app: FastAPI, services: Services) -> None:
    app.state.console = Console.build(services)
    static = resources.files("adapters.http.console") / "static"
    app.mount(STATIC_PATH, StaticFiles(directory=str(static)), name="console-static")
    for router in (
        signin.router,
        actions.router,
        chat.router,
        chat.stream_router,
        memories.router,
        pages.router,  # last: its catch-all answers every other console path
    ):
        app.include_router(router)


__all__ = ["install_console"]
