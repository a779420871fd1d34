"""Slack's agent surface: the session status with its Stop button, loading messages, the
thread's title and suggested prompts.

Slack shows a thread of the bot's direct messages as an agent session. While a reply is being
written the session is ``processing`` (``agents.sessions.setStatus``: Slack then shows a Stop
button, see :meth:`MessageHandler.stop <adapters.slack.messages.MessageHandler.stop>`) and a
rotating loading message (``assistant.threads.setStatus`` with ``loading_messages``, the one
method that takes them); once it is shown the session is ``active`` again. The first exchange
names the session (``agents.sessions.rename``). Suggested prompts are set when a person opens
the bot's messages (``app_home_opened``), and in each new split-view thread. Every call here is
auxiliary: a workspace without the agent surface refuses it, which is logged, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.format import safe_plain_text
from adapters.slack.payloads import error_code
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


async def aux_call(what: str, call: Awaitable[object]) -> None:
    """An auxiliary Slack call (status, title, prompts, error lines): failures are logged,
    never fatal."""
    try:
        await call
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("%s failed: %s", what, error_code(exc))


class AgentSurface:
    """The agent-surface calls for one bot (its Web API client)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def working(self, key: PlatformKey, *, user: str) -> None:
        """The session is processing (Stop button) and shows loading messages."""
        await aux_call(
            "agents.sessions.setStatus",
            self._client.agents_sessions_setStatus(
                channel_id=key.channel,
                thread_ts=key.thread,
                status="processing",
                initiator_user_id=user or None,
            ),
        )
        await aux_call(
            "assistant.threads.setStatus",
            self._client.assistant_threads_setStatus(
                channel_id=key.channel,
                thread_ts=key.thread,
                status=THINKING,
                loading_messages=list(LOADING_MESSAGES),
            ),
        )

    async def idle(self, key: PlatformKey) -> None:
        """The reply is shown (or stopped): the session waits for the person again."""
        await aux_call(
            "agents.sessions.setStatus",
            self._client.agents_sessions_setStatus(
                channel_id=key.channel, thread_ts=key.thread, status="active"
            ),
        )

    async def title(self, key: PlatformKey, title: str) -> None:
        """Name the session after its conversation."""
        shown = safe_plain_text(title.strip())[:TITLE_LIMIT]
        if not shown:
            return
        await aux_call(
            "agents.sessions.rename",
            self._client.agents_sessions_rename(
                channel_id=key.channel, thread_ts=key.thread, title=shown
            ),
        )

    async def prompts(self, channel: str, *, agent_name: str, thread: str | None = None) -> None:
        """Suggested prompts for a direct-message channel (or one of its threads)."""
        await aux_call(
            "assistant.threads.setSuggestedPrompts",
            self._client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                thread_ts=thread,
                title=safe_plain_text(f"Talk to {agent_name}"),
                prompts=[dict(prompt) for prompt in SUGGESTED_PROMPTS],
            ),
        )
