"""Slack's agent surface: the session status with its Stop button, loading messages, the
thread's title and suggested prompts.

Slack shows a thread of the bot's direct messages as an agent session. While a reply is being
written the session is ``processing`` (``agents.sessions.setStatus``: Slack then shows a Stop
button, see :meth:`MessageHandler.stop <adapters.slack.messages.MessageHandler.stop>`) and a
rotating loading message (``assistant.threads.setStatus`` with ``loading_messages``, the one
method that takes them); once it is shown the session is ``active`` again. The first exchange
names the session (``agents.sessions.rename``). Suggested prompts are set when a person opens
the bot's messages (``app_home_opened``), and in each new split-view thread. Every call here is
auxiliary: a refusal is logged, never fatal, and a workspace whose Slack refuses the agent
surface (no paid plan, the feature off) is not asked again for an hour, so it costs one call
and one log line an hour rather than three a reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.format import safe_plain_text
from adapters.slack.payloads import error_code
from bot.lru import BoundedLRU
from memory.base import PlatformKey

logger = logging.getLogger(__name__)

THINKING = "is thinking…"
LOADING_MESSAGES = (
    "Reading the conversation…",
    "Remembering what you told me…",
    "Writing a reply…",
)
"""What Slack rotates under the thread while the model works."""
SUGGESTED_PROMPTS = (
    {"title": "What can you do?", "message": "What can you help me with?"},
    {"title": "Get started", "message": "Hello! Let's get started."},
)
TITLE_LIMIT = 200
"""Characters at most in an agent session's title."""
REFUSED_FOR = 3600.0
"""Seconds a workspace that refused the agent surface goes without it."""
WORKSPACES_KEPT = 10_000
PASSING = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "invalid_arguments",
        "channel_not_found",
        "thread_not_found",
        "invalid_thread_ts",
        "message_not_found",
    }
)
"""Refusals about one call or one thread, not the workspace: they do not turn the surface off."""


async def aux_call(what: str, call: Awaitable[object]) -> None:
    """An auxiliary Slack call (status, title, prompts, error lines): failures are logged,
    never fatal."""
    try:
        await call
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("%s failed: %s", what, error_code(exc))


class AgentSurface:
    """The agent-surface calls for one bot (its Web API client)."""

    def __init__(
        self, client: AsyncWebClient, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._clock = clock
        self._refused: BoundedLRU[str, float] = BoundedLRU(WORKSPACES_KEPT)
        """Workspaces that refused the surface, and until when they are left alone."""

    async def _call(self, team: str, what: str, call: Callable[[], Awaitable[object]]) -> None:
        until = self._refused.get(team)
        if until is not None and self._clock() < until:
            return
        try:
            await call()
        except SlackApiError as exc:
            code = error_code(exc)
            if code in PASSING or exc.response.status_code == 429:
                logger.warning("%s failed: %s", what, code)
                return
            self._refused.put(team, self._clock() + REFUSED_FOR)
            logger.warning(
                "Slack's agent surface is refused in workspace %s (%s: %s); not asked again "
                "for an hour",
                team or "-",
                what,
                code,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("%s failed: %s", what, error_code(exc))

    async def working(self, key: PlatformKey, *, user: str) -> None:
        """The session is processing (Stop button) and shows loading messages."""
        await self._call(
            key.workspace,
            "agents.sessions.setStatus",
            lambda: self._client.agents_sessions_setStatus(
                channel_id=key.channel,
                thread_ts=key.thread,
                status="processing",
                initiator_user_id=user or None,
            ),
        )
        await self._call(
            key.workspace,
            "assistant.threads.setStatus",
            lambda: self._client.assistant_threads_setStatus(
                channel_id=key.channel,
                thread_ts=key.thread,
                status=THINKING,
                loading_messages=list(LOADING_MESSAGES),
            ),
        )

    async def idle(self, key: PlatformKey) -> None:
        """The reply is shown (or stopped): the session waits for the person again."""
        await self._call(
            key.workspace,
            "agents.sessions.setStatus",
            lambda: self._client.agents_sessions_setStatus(
                channel_id=key.channel, thread_ts=key.thread, status="active"
            ),
        )

    async def title(self, key: PlatformKey, title: str) -> None:
        """Name the session after its conversation."""
        shown = safe_plain_text(title.strip())[:TITLE_LIMIT]
        if not shown:
            return
        await self._call(
            key.workspace,
            "agents.sessions.rename",
            lambda: self._client.agents_sessions_rename(
                channel_id=key.channel, thread_ts=key.thread, title=shown
            ),
        )

    async def prompts(
        self, team: str, channel: str, *, agent_name: str, thread: str | None = None
    ) -> None:
        """Suggested prompts for a direct-message channel (or one of its threads)."""
        await self._call(
            team,
            "assistant.threads.setSuggestedPrompts",
            lambda: self._client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                thread_ts=thread,
                title=safe_plain_text(f"Talk to {agent_name}"),
                prompts=[dict(prompt) for prompt in SUGGESTED_PROMPTS],
            ),
        )
