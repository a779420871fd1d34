"""``POST /slack/events``: Slack's HTTP mode, handed to Bolt through its FastAPI adapter."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from adapters.http.errors import error_response
from adapters.http.services import SlackRoute

EVENTS_PATH = "/slack/events"


def slack_router(route: SlackRoute) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post(EVENTS_PATH)
    async def slack_events(request: Request) -> Response:
        if route.handler is None:
            return error_response(503, "the Slack adapter is not running")
        return await route.handler.handle(request)

    return router
