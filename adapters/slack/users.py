"""People in Slack: display names (cached, bounded) and whether someone may administer the bot."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.payloads import error_code
from bot.lru import BoundedLRU

logger = logging.getLogger(__name__)


class UserDirectory:
    """``users.info`` lookups. Names are cached (they rarely change); permissions never are."""

    def __init__(self, client: AsyncWebClient, *, capacity: int = 1000) -> None:
        self._client = client
        self._names: BoundedLRU[str, str] = BoundedLRU(capacity)

    async def display_name(self, user_id: str) -> str:
        """The name people see, else the user id (a lookup that fails is not cached)."""
        cached = self._names.get(user_id)
        if cached is not None:
            return cached
        user = await self._user(user_id)
        if user is None:
            return user_id
        name = _display_name(user) or user_id
        self._names.put(user_id, name)
        return name

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        return {user_id: await self.display_name(user_id) for user_id in user_ids}

    async def can_administer(self, user_id: str) -> bool:
        """Workspace owners and admins may bind channels to agents. Always asked afresh."""
        user = await self._user(user_id)
        if user is None:
            return False
        return any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))

    async def _user(self, user_id: str) -> dict[str, Any] | None:
        try:
            response = await self._client.users_info(user=user_id)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("users.info for %s failed: %s", user_id, error_code(exc))
            return None
        user = response.get("user")
        return user if isinstance(user, dict) else None


def _display_name(user: dict[str, Any]) -> str:
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    for value in (
        (profile or {}).get("display_name"),
        (profile or {}).get("real_name"),
        user.get("real_name"),
        user.get("name"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
