"""``POST /slack/events``: Slack's HTTP mode, handed to Bolt through its FastAPI adapter.

The Slack adapter builds :class:`SlackEvents` and mounts it on the bot's HTTP server as soon
as it is given one (see :mod:`adapters.http.mounts`), so the route answers from the server's
start: 503 until the adapter serves HTTP mode, and again once it stopped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

from adapters.http.errors import error_response

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
_SECONDS = re.compile(r"[0-9]{1,12}")
"""Unix seconds, as Slack sends them (Bolt's ``int()`` would also take signs, spaces and
thousands of digits, or raise on other text)."""


class EventsHandler(AsyncSlackRequestHandler):
    """Bolt's handler of ``/slack/events``, answering 503 once the bot is stopping (its
    journal takes nothing new): Slack sends the request again, to a process that answers it
    now, instead of it waiting in the journal for the next one."""

    def __init__(self, app: AsyncApp, *, stopping: Callable[[], bool]) -> None:
        super().__init__(app)
        self._stopping = stopping

    async def handle(
        self, req: Request, addition_context_properties: dict[str, Any] | None = None
    ) -> Response:
        if self._stopping():
            return error_response(503, "Parley is stopping; Slack sends this again")
        return await super().handle(req, addition_context_properties)


class SlackEvents:
    """The ``/slack/events`` route (an :class:`adapters.http.mounts.PlatformRoutes`) and its
    slot: the adapter fills :attr:`handler` when it starts in HTTP mode, and empties it when
    it stops. ``max_body``: ``SLACK_MAX_BODY`` (Slack's events can be far over the API's)."""

    def __init__(self, *, max_body: int) -> None:
        self.handler: AsyncSlackRequestHandler | None = None
        self._max_body = max_body
        self._router = self._build_router()

    @property
    def router(self) -> APIRouter:
        return self._router

    @property
    def body_limits(self) -> Mapping[str, int]:
        return {EVENTS_PATH: self._max_body}

    def _build_router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.post(EVENTS_PATH)
        async def slack_events(request: Request) -> Response:
            handler = self.handler
            if handler is None:
                return error_response(503, "the Slack adapter is not running")
            stamps = request.headers.getlist(TIMESTAMP_HEADER)
            if any(_SECONDS.fullmatch(stamp) is None for stamp in stamps):
                logger.warning("refused a Slack request: X-Slack-Request-Timestamp is not a number")
                return error_response(401, "X-Slack-Request-Timestamp must be a number of seconds")
            return await handler.handle(request)

        return router
