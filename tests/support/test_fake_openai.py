"""The fake OpenAI server, driven by the real ``openai`` SDK."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)

from tests.support.fake_openai import (
    JSON_SCHEMA_REFUSAL,
    MAX_TOKENS_REFUSAL,
    FakeOpenAI,
    RecordedRequest,
    Reply,
    fill_schema,
    schema_in_text,
)

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "array", "items": {"type": "number"}},
        "ok": {"type": "boolean"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "mood": {"type": "string", "enum": ["calm", "busy"]},
        "nickname": {"type": ["string", "null"]},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "integer"}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["answer", "tags", "scores", "ok", "count", "ratio", "mood", "nickname", "address"],
    "additionalProperties": False,
}
GOAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal_reached": {"type": "boolean"},
        "summary": {"type": "string"},
        "missing": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["goal_reached", "summary", "missing"],
    "additionalProperties": False,
}


@pytest.fixture
async def client(fake_openai: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    sdk = AsyncOpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=0, timeout=5.0)
    yield sdk
    await sdk.close()


def user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}


def system(text: str) -> ChatCompletionSystemMessageParam:
    return {"role": "system", "content": text}


def assistant(text: str) -> ChatCompletionAssistantMessageParam:
    return {"role": "assistant", "content": text}


async def ask(client: AsyncOpenAI, *messages: ChatCompletionMessageParam, **params: Any) -> str:
    response = await client.chat.completions.create(
        model="fake-model", messages=list(messages), **params
    )
    return response.choices[0].message.content or ""


async def test_base_url_is_loopback_v1(fake_openai: FakeOpenAI) -> None:
    assert fake_openai.base_url.startswith("http://127.0.0.1:")
    assert fake_openai.base_url.endswith("/v1")


async def test_plain_completion_has_the_real_shape(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    before = int(time.time())
    response = await client.chat.completions.create(
        model="my-model", messages=[system("Be brief."), user("Ada: hello there")]
    )

    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.created >= before
    assert response.model == "my-model"
    [choice] = response.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "You said: Ada: hello there"
    assert response.usage is not None
    assert response.usage.prompt_tokens == 5
    assert response.usage.completion_tokens == 5
    assert response.usage.total_tokens == 10


async def test_requests_are_recorded_with_body_and_headers(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    await ask(client, user("hi"), temperature=0.2)

    [recorded] = fake_openai.chat_requests()
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.body["temperature"] == 0.2
    assert recorded.messages == [user("hi")]
    assert recorded.stream is False
    assert recorded.response_format is None
    assert recorded.headers["authorization"] == "Bearer test"
    assert recorded.headers["content-type"].startswith("application/json")


async def test_models_are_listed(fake_openai: FakeOpenAI, client: AsyncOpenAI) -> None:
    models = await client.models.list()

    assert [model.id for model in models.data] == ["fake-model", "gpt-4o-mini"]
    assert fake_openai.requests[-1].path == "/v1/models"
    assert fake_openai.chat_requests() == []


async def test_unknown_routes_answer_404_and_are_recorded(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.moderations.create(model="fake-model", input="hello")

    assert "no route /v1/moderations" in caught.value.message
    assert fake_openai.requests[-1].path == "/v1/moderations"


async def test_streaming_reassembles_content_and_sends_usage(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.script(Reply(content="The quick brown fox jumps.", chunk_size=5))

    stream = await client.chat.completions.create(
        model="stream-model",
        messages=[user("go")],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert all(chunk.model == "stream-model" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    first, *middle, last_choice, usage_chunk = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in middle] == [
        "The q",
        "uick ",
        "brown",
        " fox ",
        "jumps",
        ".",
    ]
    assert last_choice.choices[0].finish_reason == "stop"
    assert last_choice.choices[0].delta.content is None
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 5
    assert usage_chunk.usage.total_tokens == 6
    assert fake_openai.chat_requests()[0].stream is True


async def test_streaming_without_usage_option_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="fake-model", messages=[user("Ada: hi")], stream=True
    )
    chunks = [chunk async for chunk in stream]

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "You said: Ada: hi"


async def test_stream_is_server_sent_events_on_the_wire(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(content="hey"))
    sdk = AsyncOpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=0)
    try:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="fake-model", messages=[user("x")], stream=True
        )
        assert raw.headers["content-type"].startswith("text/event-stream")
        body = (await raw.http_response.aread()).decode()
    finally:
        await sdk.close()

    events = body.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(event.startswith("data: ") for event in events[:-1])
    payloads = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert [p["choices"][0]["delta"] for p in payloads] == [
        {"role": "assistant", "content": ""},
        {"content": "hey"},
        {},
    ]


async def test_json_schema_reply_fills_every_property(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    content = await ask(
        client,
        user("Ada: tell me about Rome"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": PERSON_SCHEMA, "strict": True},
        },
    )

    data = json.loads(content)
    assert data == {
        "answer": "You said: Ada: tell me about Rome",
        "tags": ["You said: Ada: tell"],
        "scores": [],
        "ok": False,
        "count": 0,
        "ratio": 0,
        "mood": "calm",
        "nickname": "You said: Ada: tell me about Rome",
        "address": {"city": "You said: Ada: tell me about Rome", "zip": 0},
    }
    assert fake_openai.chat_requests()[0].response_format == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": PERSON_SCHEMA, "strict": True},
    }


async def test_json_schema_reply_streams_as_valid_json(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="fake-model",
        messages=[user("hello")],
        stream=True,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": GOAL_SCHEMA},
        },
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert json.loads(text) == {
        "goal_reached": False,
        "summary": "Nothing is chosen yet.",
        "missing": ["a final choice"],
    }


async def test_json_object_uses_the_schema_in_the_system_prompt(client: AsyncOpenAI) -> None:
    prompt = "Answer as JSON matching this JSON Schema:\n" + json.dumps(PERSON_SCHEMA) + "\nThanks"

    content = await ask(client, system(prompt), user("hi"), response_format={"type": "json_object"})

    data = json.loads(content)
    assert set(data) == set(PERSON_SCHEMA["properties"])
    assert data["answer"] == "You said: hi"


async def test_json_object_without_a_schema_answers_in_an_answer_field(
    client: AsyncOpenAI,
) -> None:
    content = await ask(client, user("hi"), response_format={"type": "json_object"})

    assert json.loads(content) == {"answer": "You said: hi"}


async def test_schema_in_the_prompt_alone_is_followed(client: AsyncOpenAI) -> None:
    prompt = "Always answer with one JSON object matching this JSON Schema:\n" + json.dumps(
        PERSON_SCHEMA
    )

    with_schema = json.loads(await ask(client, system(prompt), user("hi")))
    without_schema = await ask(client, system("Answer briefly. {not json}"), user("hi"))

    assert with_schema["answer"] == "You said: hi"
    assert set(with_schema) == set(PERSON_SCHEMA["properties"])
    assert without_schema == "You said: hi"


async def test_reject_json_schema_is_a_bad_request_and_is_recorded(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.reject_json_schema = True
    fake_openai.script(Reply(content="scripted"))
    response_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": GOAL_SCHEMA}}

    with pytest.raises(openai.BadRequestError) as caught:
        await ask(client, user("hi"), response_format=response_format)

    assert caught.value.status_code == 400
    assert caught.value.message == f"Error code: 400 - {JSON_SCHEMA_REFUSAL}"
    assert caught.value.param == "response_format"
    assert caught.value.body == {
        "message": JSON_SCHEMA_REFUSAL,
        "type": "invalid_request_error",
        "param": "response_format",
        "code": None,
    }
    [recorded] = fake_openai.chat_requests()
    assert recorded.response_format == response_format
    # the refusal did not use up the script: the fallback request gets it
    assert await ask(client, user("hi"), response_format={"type": "json_object"}) == "scripted"


async def test_reject_json_object_is_a_bad_request(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.reject_json_object = True

    with pytest.raises(openai.BadRequestError, match="json_object is not supported"):
        await ask(client, user("hi"), response_format={"type": "json_object"})
    assert await ask(client, user("hi")) == "You said: hi"
    assert len(fake_openai.chat_requests()) == 2


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-nano"])
async def test_a_reasoning_model_refuses_max_tokens_as_openai_does(
    fake_openai: FakeOpenAI, client: AsyncOpenAI, model: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=model, messages=[user("hi")], max_tokens=50)

    assert caught.value.body == {
        "message": MAX_TOKENS_REFUSAL,
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
    answer = await client.chat.completions.create(
        model=model, messages=[user("hi")], max_completion_tokens=50
    )
    assert answer.choices[0].message.content == "You said: hi"


async def test_a_reasoning_model_takes_only_the_default_temperature(
    client: AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="o3", messages=[user("hi")], temperature=0)

    assert caught.value.param == "temperature"
    assert caught.value.code == "unsupported_value"
    answer = await client.chat.completions.create(model="o3", messages=[user("hi")], temperature=1)
    assert answer.choices[0].message.content == "You said: hi"


async def test_other_models_take_max_tokens_and_any_temperature(client: AsyncOpenAI) -> None:
    assert await ask(client, user("hi"), max_tokens=5, temperature=0) == "You said: hi"


async def test_think_mode_writes_reasoning_before_every_answer(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.think = "The user greets me. {not json}"
    fake_openai.script(Reply(content='{"answer": "hi"}'))

    assert await ask(client, user("hi")) == (
        '<think>The user greets me. {not json}</think>\n\n{"answer": "hi"}'
    )
    streamed = await client.chat.completions.create(
        model="fake-model", messages=[user("hi")], stream=True
    )
    pieces = [chunk.choices[0].delta.content async for chunk in streamed if chunk.choices]
    assert "".join(p or "" for p in pieces) == (
        "<think>The user greets me. {not json}</think>\n\nYou said: hi"
    )


async def test_scripted_replies_are_used_in_order_then_the_brain(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.script(Reply(content="one"), Reply(content="two"))

    answers = [await ask(client, user("hi")) for _ in range(3)]

    assert answers == ["one", "two", "You said: hi"]


async def test_scripted_500_is_an_internal_server_error(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.script(Reply(status=500, error_message="boom"))

    with pytest.raises(openai.InternalServerError, match="boom") as caught:
        await ask(client, user("hi"))

    assert caught.value.status_code == 500
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "server_error"


async def test_scripted_429_with_retry_after_is_a_rate_limit_error(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.script(Reply(status=429, error_message="slow down", headers={"retry-after": "0"}))

    with pytest.raises(openai.RateLimitError, match="slow down") as caught:
        await ask(client, user("hi"))

    assert caught.value.response.headers["retry-after"] == "0"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "rate_limit_exceeded"


async def test_sdk_retries_honour_retry_after(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(status=429, headers={"retry-after": "0"}), Reply(content="finally"))
    sdk = AsyncOpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=1)
    try:
        assert await ask(sdk, user("hi")) == "finally"
    finally:
        await sdk.close()
    assert len(fake_openai.chat_requests()) == 2


async def test_delay_longer_than_the_timeout_is_a_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(content="late", delay=5.0))
    sdk = AsyncOpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=0, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(openai.APITimeoutError):
            await ask(sdk, user("hi"))
    finally:
        await sdk.close()
    assert time.monotonic() - started < 3.0
    assert len(fake_openai.chat_requests()) == 1


async def test_short_delay_still_answers(fake_openai: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake_openai.script(Reply(content="soon", delay=0.1))
    started = time.monotonic()

    assert await ask(client, user("hi")) == "soon"
    assert time.monotonic() - started >= 0.1


async def test_dropped_stream_raises_while_iterating(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.script(Reply(content="a long answer that never ends", drop_after_chunks=2))
    stream = await client.chat.completions.create(
        model="fake-model", messages=[user("hi")], stream=True
    )
    received: list[str] = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIConnectionError):
        await read_all()

    assert received == ["", "a long a"]


async def test_drop_on_a_plain_request_is_a_connection_error(
    fake_openai: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake_openai.script(Reply(content="never", drop_after_chunks=0))

    with pytest.raises(openai.APIConnectionError):
        await ask(client, user("hi"))


async def test_chunk_delay_spaces_out_chunks(fake_openai: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake_openai.script(Reply(content="abcdef", chunk_size=2, chunk_delay=0.05))
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="fake-model", messages=[user("hi")], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream])

    assert text == "abcdef"
    assert time.monotonic() - started >= 0.2  # four pauses: three content chunks and the stop


async def test_brain_remembers_the_last_name_from_any_message(client: AsyncOpenAI) -> None:
    unknown = await ask(client, user("Ada: What's my name?"))
    known = await ask(
        client,
        system("You are a chef."),
        user("Ada: hi, my name is Ada"),
        assistant("You said: hi"),
        user("Ada: actually MY NAME IS Bob!"),
        user("Ada: so what is my name, chef?"),
    )
    from_system = await ask(client, system("The user's name is Cleo."), user("what's my name"))

    assert unknown == "I don't know your name yet."
    assert known == "Your name is Bob."
    assert from_system == "Your name is Cleo."


async def test_brain_reads_content_parts(client: AsyncOpenAI) -> None:
    parts: ChatCompletionUserMessageParam = {
        "role": "user",
        "content": [{"type": "text", "text": "my name is Dora."}, {"type": "text", "text": "Hi"}],
    }
    echoed = await ask(client, parts)
    named = await ask(client, parts, user("what is my name"))

    assert echoed == "You said: my name is Dora.\nHi"
    assert named == "Your name is Dora."


async def test_brain_truncates_long_echoes(client: AsyncOpenAI) -> None:
    assert await ask(client, user("x" * 500)) == "You said: " + "x" * 200


async def test_summary_marker_carries_facts_and_topics(client: AsyncOpenAI) -> None:
    transcript = (
        "Conversation:\nAda: hello, my name is Ada\nChef: You said: hi\n"
        "Ada: I like pasta with tomatoes\nAda: my name is Bob in fact"
    )
    summary = await ask(client, system("[parley:summary] Keep the memory."), user(transcript))

    assert summary == (
        "Summary: The user's name is Bob. "
        "Topics: Ada: hello, my; Chef: You said:; Ada: I like; Ada: my name."
    )
    assert len(summary) < 400

    # the next summary reads the earlier one, and later questions find the name in it
    again = await ask(
        client,
        system("[parley:summary] Keep the memory."),
        user(f"Summary of earlier turns:\n{summary}\n\nConversation:\nAda: thanks"),
    )
    assert again == "Summary: The user's name is Bob. Topics: Ada: thanks."
    recalled = await ask(client, system(again), user("Ada: what's my name?"))
    assert recalled == "Your name is Bob."


async def test_summary_stays_short(client: AsyncOpenAI) -> None:
    lines = "\n".join(f"Ada: topic{i} word word word" for i in range(200))

    summary = await ask(client, system("[parley:summary]"), user(lines))

    assert summary.startswith("Summary: Topics: Ada: topic0 word; Ada: topic1 word;")
    assert len(summary) < 400


async def test_goal_marker_answers_goal_json(client: AsyncOpenAI) -> None:
    prompt = "[parley:goal] Review it.\nMatching this JSON Schema:\n" + json.dumps(GOAL_SCHEMA)

    open_goal = json.loads(await ask(client, system(prompt), user("Ada: my name is Ada")))
    reached = json.loads(await ask(client, system(prompt), user("Ada: I have chosen the risotto")))
    done_in_mode = json.loads(
        await ask(
            client,
            system(prompt),
            user("Chef: all done?"),
            response_format={"type": "json_object"},
        )
    )

    assert open_goal == {
        "goal_reached": False,
        "summary": "The user's name is Ada. Nothing is chosen yet.",
        "missing": ["a final choice"],
    }
    assert reached["goal_reached"] is True
    assert reached["missing"] == []
    assert done_in_mode["goal_reached"] is True


async def test_goal_words_in_the_system_prompt_do_not_count(client: AsyncOpenAI) -> None:
    prompt = "[parley:goal] The goal is done when a dish is chosen."

    answer = json.loads(await ask(client, system(prompt), user("Ada: maybe pasta")))

    assert answer == {
        "goal_reached": False,
        "summary": "Nothing is chosen yet.",
        "missing": ["a final choice"],
    }


async def test_goal_schema_fills_only_the_asked_properties(client: AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"goal_reached": {"type": "boolean"}, "note": {"type": "string"}},
    }

    answer = json.loads(
        await ask(
            client,
            user("Ada: done!"),
            response_format={"type": "json_schema", "json_schema": {"name": "g", "schema": schema}},
        )
    )

    assert answer == {"goal_reached": True, "note": "The person has chosen; it is done."}


async def test_custom_handler_sync_and_async(fake_openai: FakeOpenAI, client: AsyncOpenAI) -> None:
    def shout(request: RecordedRequest) -> Reply:
        return Reply(content=str(request.messages[-1]["content"]).upper())

    async def count(request: RecordedRequest) -> Reply:
        return Reply(content=f"{len(request.messages)} messages")

    fake_openai.handle(shout)
    shouted = await ask(client, user("hello"))
    fake_openai.handle(count)
    counted = await ask(client, system("s"), user("hello"))
    fake_openai.script(Reply(content="script first"))
    scripted = await ask(client, user("hello"))
    fake_openai.handle(None)
    default = await ask(client, user("hello"))

    assert [shouted, counted, scripted, default] == [
        "HELLO",
        "2 messages",
        "script first",
        "You said: hello",
    ]


async def test_handler_can_fail_a_request(fake_openai: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake_openai.handle(lambda request: Reply(status=503, error_message="overloaded"))

    with pytest.raises(openai.InternalServerError, match="overloaded"):
        await ask(client, user("hi"))


async def test_context_manager_starts_and_stops() -> None:
    async with FakeOpenAI() as fake:
        sdk = AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=2.0)
        try:
            assert await ask(sdk, user("hi")) == "You said: hi"
        finally:
            await sdk.close()
        url = fake.base_url

    sdk = AsyncOpenAI(base_url=url, api_key="k", max_retries=0, timeout=2.0)
    try:
        with pytest.raises(openai.APIConnectionError):
            await ask(sdk, user("hi"))
    finally:
        await sdk.close()


def test_schema_in_text_skips_braces_that_are_not_schemas() -> None:
    text = 'Use {braces} and {"a": 1} then {"type": "object", "properties": {"x": {}}} ok'

    assert schema_in_text(text) == {"type": "object", "properties": {"x": {}}}
    assert schema_in_text("no schema {here}") is None


def test_fill_schema_follows_refs() -> None:
    schema = {
        "$defs": {"Dish": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "type": "object",
        "properties": {
            "dish": {"$ref": "#/$defs/Dish"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "fixed": {"const": "yes"},
        },
    }

    assert fill_schema(schema, "text") == {"dish": {"name": "text"}, "maybe": 0, "fixed": "yes"}
