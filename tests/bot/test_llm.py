"""The model client as logs and reprs show it, and the cap on calls in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bot.llm import BoundedModelClient, ChatRequest, ModelError, OpenAIModelClient
from bot.prompt import ChatMessage
from tests.support.fake_openai import FakeOpenAI, HeldModel, RecordedRequest, Reply


async def test_the_base_url_is_shown_without_its_password() -> None:
    client = OpenAIModelClient(
        api_key="sk-x", base_url="http://u:hunter2@llm:8000/v1", timeout=1.0, max_retries=0
    )
    assert client.description == "OpenAI-compatible API at http://u:***@llm:8000/v1"
    assert "hunter2" not in repr(client)
    bounded = BoundedModelClient(client, limit=4)
    assert bounded.description == client.description
    assert "hunter2" not in repr(bounded)


def ask(text: str) -> ChatRequest:
    return ChatRequest(model="fake-model", messages=(ChatMessage(role="user", content=text),))


@pytest.fixture
async def bounded(fake_openai: FakeOpenAI) -> AsyncIterator[Callable[[int], BoundedModelClient]]:
    made: list[BoundedModelClient] = []

    def make(limit: int) -> BoundedModelClient:
        inner = OpenAIModelClient(
            api_key="k", base_url=fake_openai.base_url, timeout=10, max_retries=0
        )
        made.append(BoundedModelClient(inner, limit=limit))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - the client's counters have no event
            await asyncio.sleep(0.005)


async def collect(client: BoundedModelClient, text: str) -> str:
    return "".join([piece async for piece in client.stream(ask(text))])


async def test_calls_past_the_cap_wait_and_reach_the_model_cap_at_a_time(
    fake_openai: FakeOpenAI, bounded: Callable[[int], BoundedModelClient]
) -> None:
    cap = 3
    client = bounded(cap)
    held = HeldModel()
    in_model = peak = 0

    async def counting(request: RecordedRequest) -> Reply:
        nonlocal in_model, peak
        in_model += 1
        peak = max(peak, in_model)
        try:
            return await held(request)
        finally:
            in_model -= 1

    fake_openai.handle(counting)
    calls = [
        asyncio.create_task(
            client.complete(ask(f"call {n}")) if n % 2 else collect(client, f"call {n}")
        )
        for n in range(cap + 3)
    ]
    try:
        await held.until(cap)
        await until(lambda: client.waiting == 3)
        assert held.arrived == cap, "the three past the cap wait in the client"
        assert client.in_flight == cap
    finally:
        held.release()
    answers = await asyncio.gather(*calls)

    assert answers == [f"You said: call {n}" for n in range(cap + 3)]
    assert held.arrived == cap + 3
    assert peak <= cap
    assert (client.in_flight, client.waiting) == (0, 0)


async def test_a_stream_keeps_its_place_until_it_is_closed(
    fake_openai: FakeOpenAI, bounded: Callable[[int], BoundedModelClient]
) -> None:
    client = bounded(1)
    fake_openai.script(Reply(content="a long answer in many pieces", chunk_size=4))
    stream = client.stream(ask("first"))
    assert isinstance(stream, AsyncIterator)
    assert await anext(stream) == "a lo"

    second = asyncio.create_task(client.complete(ask("second")))
    await until(lambda: client.waiting == 1)
    assert len(fake_openai.chat_requests()) == 1, "the open stream holds the only place"

    await stream.aclose()  # type: ignore[attr-defined]
    assert await second == "You said: second"
    assert (client.in_flight, client.waiting) == (0, 0)


async def test_a_failed_or_cancelled_call_gives_its_place_back(
    fake_openai: FakeOpenAI, bounded: Callable[[int], BoundedModelClient]
) -> None:
    client = bounded(1)
    fake_openai.script(Reply(status=500), Reply(status=500))
    with pytest.raises(ModelError):
        await client.complete(ask("fails"))
    with pytest.raises(ModelError):
        await collect(client, "fails too")

    held = HeldModel()
    fake_openai.handle(held)
    running = asyncio.create_task(client.complete(ask("cancelled")))
    queued = asyncio.create_task(client.complete(ask("cancelled while waiting")))
    await held.until(1)
    await until(lambda: client.waiting == 1)
    queued.cancel()
    running.cancel()
    await asyncio.gather(running, queued, return_exceptions=True)
    assert (client.in_flight, client.waiting) == (0, 0)
    held.release()
    assert await client.complete(ask("after")) == "You said: after"


@pytest.fixture
async def client(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIModelClient]:
    made = OpenAIModelClient(api_key="k", base_url=fake_openai.base_url, timeout=10, max_retries=0)
    yield made
    await made.close()


def capped(model: str, text: str = "hi", temperature: float | None = None) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(ChatMessage(role="user", content=text),),
        max_tokens=64,
        temperature=temperature,
    )


async def test_a_reasoning_model_that_refuses_max_tokens_is_answered(
    fake_openai: FakeOpenAI, client: OpenAIModelClient
) -> None:
    assert await client.complete(capped("gpt-5")) == "You said: hi"

    refused, answered = fake_openai.chat_requests()
    assert refused.body["max_tokens"] == 64
    assert "max_tokens" not in answered.body
    assert answered.body["max_completion_tokens"] == 64


async def test_the_refusal_is_remembered_per_model(
    fake_openai: FakeOpenAI, client: OpenAIModelClient
) -> None:
    await client.complete(capped("o3-mini"))
    assert len(fake_openai.chat_requests()) == 2

    streamed = "".join([piece async for piece in client.stream(capped("o3-mini", "again"))])

    assert streamed == "You said: again"
    assert len(fake_openai.chat_requests()) == 3  # straight to max_completion_tokens
    assert fake_openai.chat_requests()[-1].body["max_completion_tokens"] == 64
    await client.complete(capped("fake-model"))
    assert fake_openai.chat_requests()[-1].body["max_tokens"] == 64  # other models unchanged


async def test_a_streamed_call_is_sent_again_too(
    fake_openai: FakeOpenAI, client: OpenAIModelClient
) -> None:
    streamed = "".join([piece async for piece in client.stream(capped("o1", temperature=0))])

    assert streamed == "You said: hi"
    bodies = [request.body for request in fake_openai.chat_requests()]
    assert [("max_tokens" in b, "temperature" in b) for b in bodies] == [
        (True, True),
        (False, True),  # max_tokens became max_completion_tokens
        (False, False),  # the default temperature is the only one it takes
    ]
    assert bodies[-1]["max_completion_tokens"] == 64


async def test_other_bad_requests_are_not_sent_again(
    fake_openai: FakeOpenAI, client: OpenAIModelClient
) -> None:
    fake_openai.script(
        Reply(status=400, error_message="max_tokens is too large", error_param="max_tokens")
    )

    with pytest.raises(ModelError, match="HTTP 400"):
        await client.complete(capped("fake-model"))
    assert len(fake_openai.chat_requests()) == 1
