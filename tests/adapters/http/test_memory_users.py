"""API conversations linked to a user of the caller's system: agents that remember people keep
and use that user's memories, across the user's conversations and no one else's; a
conversation without a user keeps none (an API key speaks for any number of people)."""

from __future__ import annotations

from typing import Any

import httpx

from bot.memory import MEMORY_HEADING
from memory.base import MemoryQuery
from tests.adapters.http.helpers import client_with, create_conversation, say
from tests.support.agents import agents_file, chef
from tests.support.api import ApiFactory
from tests.support.fake_openai import FakeOpenAI


def memory_in_last_prompt(fake_openai: FakeOpenAI) -> str:
    heading = MEMORY_HEADING.split("{name}")[0]
    request = [r for r in fake_openai.chat_requests() if "[parley:" not in r.system_text][-1]
    for message in request.messages:
        content = str(message.get("content"))
        if message.get("role") == "system" and content.startswith(heading):
            return content
    return ""


async def new(client: httpx.AsyncClient, **body: Any) -> str:
    conversation = await create_conversation(client, agent_id="chef", **body)
    return str(conversation["id"])


async def test_a_users_facts_follow_them_across_their_api_conversations(
    api_factory: ApiFactory, fake_openai: FakeOpenAI
) -> None:
    api = await api_factory(agents=agents_file(chef(memory={"extract": "inline"})))
    async with client_with(api, await api.key("write")) as client:
        first = await create_conversation(client, agent_id="chef", user="crm-42")
        assert first["user"] == "crm-42"
        await say(client, first["id"], "I am allergic to peanuts.")

        await say(client, await new(client, user="crm-42"), "What can I cook?")
        assert "I am allergic to peanuts." in memory_in_last_prompt(fake_openai)

        await say(client, await new(client, user="crm-7"), "What can I cook?")
        assert memory_in_last_prompt(fake_openai) == "", "another user's are never used"

        anonymous = await new(client)
        await say(client, anonymous, "I am vegan.")
        await say(client, anonymous, "What can I cook?")
        assert memory_in_last_prompt(fake_openai) == "", "no user, no memory"
    kept = await api.services.engine.store.list_memories(MemoryQuery(platform="api"))
    assert [(m.scope.person, m.text) for m in kept] == [("crm-42", "I am allergic to peanuts.")]


async def test_a_user_is_a_short_plain_string(api_factory: ApiFactory) -> None:
    api = await api_factory()
    async with client_with(api, await api.key("write")) as client:
        for bad in ("", "x" * 129, "line\nbreak"):
            response = await client.post(
                "/api/v1/conversations", json={"agent_id": "chef", "user": bad}
            )
            assert response.status_code == 422, (bad, response.text)
            assert "user" in response.json()["error"]["message"]
