"""Agents on different model servers in one bot: the runtime builds one client per provider
and every call of an agent (replies, summaries, goal checks, memory) goes to its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.engine import IncomingMessage
from bot.llm import BoundedModelClient, ChatRequest
from bot.prompt import ChatMessage
from bot.providers import ModelRouter, UnknownProvider
from bot.runtime import Runtime, build_model_client
from config.settings import Settings
from memory.base import PlatformKey
from tests.support.agents import agents_file, chef, plain
from tests.support.fake_openai import EXTRACT_MARKER, GOAL_MARKER, SUMMARY_MARKER, FakeOpenAI
from tests.support.waiting import eventually

LOCAL_KEY = "sk-local-secret-key"


@pytest.fixture
async def local_model() -> AsyncIterator[FakeOpenAI]:
    """A second model server, on a port of its own (the local Ollama of the tests)."""
    async with FakeOpenAI() as fake:
        yield fake


def settings_for(tmp_path: Path, cloud: FakeOpenAI, local: FakeOpenAI, **more: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_base_url=cloud.base_url,
        openai_api_key="sk-cloud",
        bot_data_dir=tmp_path,
        api_enabled=False,
        model_providers={
            "local": {"base_url": local.base_url, "model": "llama3.1", "api_key": LOCAL_KEY},
            **more,
        },
    )


def said(text: str, thread: str) -> IncomingMessage:
    key = PlatformKey(platform="slack", workspace="T1", channel="C1", thread=thread)
    return IncomingMessage(key=key, text=text, author_id="U1", author_name="Ada")


def purposes(fake: FakeOpenAI) -> set[str]:
    found = set()
    for request in fake.chat_requests():
        system = request.system_text
        for marker, purpose in (
            (SUMMARY_MARKER, "summary"),
            (GOAL_MARKER, "goal"),
            (EXTRACT_MARKER, "memory"),
        ):
            if marker in system:
                found.add(purpose)
        if request.stream:
            found.add("reply")
    return found


async def test_two_agents_are_each_answered_by_their_own_server(
    tmp_path: Path, fake_openai: FakeOpenAI, local_model: FakeOpenAI, clean_env: pytest.MonkeyPatch
) -> None:
    assert fake_openai.base_url != local_model.base_url
    agents = agents_file(
        chef(context_tokens=200),
        plain(
            provider="local",
            goal="The person chose a recipe.",
            context_tokens=200,
            memory={"extract": "background"},
        ),
    )
    settings = settings_for(tmp_path, fake_openai, local_model)

    async with Runtime(settings, agents) as runtime:
        engine = runtime.engine
        for n in range(8):
            cloud = await engine.reply(said(f"Cloud message {n}, my name is Bob", "1.1")).result()
            local = await engine.reply(
                IncomingMessage(
                    key=said("", "2.2").key,
                    text=f"I like figs, message {n}. My name is Ann",
                    author_id="U2",
                    author_name="Ann",
                    agent_id="plain",
                )
            ).result()
        await engine.check_goal(cloud.conversation.id)
        await engine.check_goal(local.conversation.id)
        await eventually(lambda: _has(local_model, "memory"))

    assert cloud.conversation.agent_id == "chef"
    assert local.conversation.agent_id == "plain"
    assert local.text.startswith("You said: Ann: I like figs")
    assert purposes(fake_openai) == {"reply", "summary", "goal"}
    assert purposes(local_model) == {"reply", "summary", "goal", "memory"}
    assert all("figs" not in str(r.messages) for r in fake_openai.chat_requests())
    assert all("Cloud message" not in str(r.messages) for r in local_model.chat_requests())
    assert {r.body["model"] for r in local_model.chat_requests()} == {"llama3.1"}
    assert {r.body["model"] for r in fake_openai.chat_requests()} == {"gpt-4o-mini"}
    assert {r.headers["authorization"] for r in local_model.chat_requests()} == {
        f"Bearer {LOCAL_KEY}"
    }
    assert LOCAL_KEY not in runtime.model.description
    assert LOCAL_KEY not in repr(runtime.model)


async def _has(fake: FakeOpenAI, purpose: str) -> bool:
    return purpose in purposes(fake)


async def test_each_provider_has_its_own_cap_on_calls_in_flight(
    tmp_path: Path, fake_openai: FakeOpenAI, local_model: FakeOpenAI
) -> None:
    settings = settings_for(
        tmp_path,
        fake_openai,
        local_model,
        slow={"base_url": local_model.base_url, "concurrency": 2},
    )
    router = build_model_client(settings)
    try:
        assert isinstance(router, ModelRouter)
        limits = {
            name: client.limit
            for name in ("default", "local", "slow")
            if isinstance(client := router.client(name), BoundedModelClient)
        }
        assert limits == {"default": 16, "local": 16, "slow": 2}
    finally:
        await router.close()


async def test_a_provider_that_is_not_configured_is_a_model_error(
    tmp_path: Path, fake_openai: FakeOpenAI, local_model: FakeOpenAI
) -> None:
    router = build_model_client(settings_for(tmp_path, fake_openai, local_model))
    request = ChatRequest(
        model="m", messages=(ChatMessage(role="user", content="hi"),), provider="gone"
    )
    try:
        with pytest.raises(UnknownProvider, match="'gone' is not configured"):
            await router.complete(request)
        with pytest.raises(UnknownProvider):
            [piece async for piece in router.stream(request)]
    finally:
        await router.close()
    assert fake_openai.chat_requests() == []
    assert local_model.chat_requests() == []


async def test_an_agent_on_an_unknown_provider_apologises(
    tmp_path: Path, fake_openai: FakeOpenAI, local_model: FakeOpenAI, clean_env: pytest.MonkeyPatch
) -> None:
    """A stored agent that outlived its provider: its turns fail like a failing model."""
    agents = agents_file(plain(provider="gone"))  # not checked: no providers given
    async with Runtime(settings_for(tmp_path, fake_openai, local_model), agents) as runtime:
        result = await runtime.engine.reply(said("hello", "3.3")).result()

    assert result.failed
    assert result.text == agents.default.apology


async def test_a_format_one_provider_refuses_is_remembered_for_that_provider_only(
    tmp_path: Path, fake_openai: FakeOpenAI, local_model: FakeOpenAI, clean_env: pytest.MonkeyPatch
) -> None:
    local_model.reject_json_schema = True
    agents = agents_file(chef(), chef(id="local-chef", provider="local", model="gpt-4o-mini"))
    async with Runtime(settings_for(tmp_path, fake_openai, local_model), agents) as runtime:
        for thread, agent_id in (("1.1", "local-chef"), ("2.2", "chef"), ("1.1", "local-chef")):
            incoming = said("hello", thread)
            await runtime.engine.reply(
                IncomingMessage(key=incoming.key, text="hello", author_id="U1", agent_id=agent_id)
            ).result()

    def formats(fake: FakeOpenAI) -> list[str | None]:
        return [(r.response_format or {}).get("type") for r in fake.chat_requests()]

    assert formats(local_model) == ["json_schema", "json_object", "json_object"]
    assert formats(fake_openai) == ["json_schema"], "the same model name elsewhere is not affected"
