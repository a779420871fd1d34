"""``POST /slack/events``: Slack's HTTP mode, handed to Bolt through its FastAPI adapter."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request, Response

from adapters.http.errors import error_response
from adapters.http.services import SlackRoute

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
_SECONDS = re.compile(r"[0-9]{1,12}")
"""Unix seconds, as Slack sends them (Bolt's ``int()`` would also take signs, spaces and
thousands of digits, or raise on other text)."""


def slack_router(route: SlackRoute) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post(EVENTS_PATH)
    async def slack_events(request: Request) -> Response:
        if route.handler is None:
            return error_response(503, "the Slack adapter is not running")
        stamps = request.headers.getlist(TIMESTAMP_HEADER)
        if any(_SECONDS.fullmatch(stamp) is None for stamp in stamps):
            logger.warning("refused a Slack request: X-Slack-Request-Timestamp is not a number")
            return error_response(401, "X-Slack-Request-Timestamp must be a number of seconds")
        return await route.handler.handle(request)

    return router
