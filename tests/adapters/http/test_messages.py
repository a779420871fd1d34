"""``/api/v1/conversations/{id}/messages``: the history, newest first and paged, and turns as
JSON or as server-sent events over a real server (including a client that goes away)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from httpx_sse import aconnect_sse

from adapters.base import STORE_LINE
from memory.base import PlatformKey
from tests.adapters.http.helpers import (
    API,
    client_with,
    create_conversation,
    error_of,
    history,
    say,
)
from tests.support.agents import CHEF_SHAPE, agents_file, chef, plain
from tests.support.api import Api, ApiFactory
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.waiting import eventually

SLACK = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.1")


def messages_url(conversation_id: str) -> str:
    return f"{API}/conversations/{conversation_id}/messages"


async def test_history_is_newest_first_and_pages_back_with_before(api: Api) -> None:
    reader = await api.as_key("read")
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    url = messages_url(conversation["id"])
    await say(writer, conversation["id"], "one")
    await say(writer, conversation["id"], "two")

    everything = (await reader.get(url)).json()
    assert [m["seq"] for m in everything["items"]] == [5, 4, 3, 2, 1]
    assert [m["text"] for m in everything["items"]][1::2] == ["two", "one"]
    assert everything["next_before"] is None

    pages = []
    before: int | None = None
    while True:
        params = {"limit": 2} if before is None else {"limit": 2, "before": before}
        page = (await reader.get(url, params=params)).json()
        pages.append([m["seq"] for m in page["items"]])
        before = page["next_before"]
        if before is None:
            break
    assert pages == [[5, 4], [3, 2], [1]]

    exact = (await reader.get(url, params={"limit": 5})).json()
    assert len(exact["items"]) == 5
    assert exact["next_before"] is None, "a full page that reaches seq 1 is the last"
    assert (await reader.get(url, params={"before": 1})).json() == {
        "items": [],
        "next_before": None,
    }
    for params in ({"before": 0}, {"limit": 0}, {"limit": 101}, {"before": "x"}):
        assert error_of(await reader.get(url, params=params), 422)["code"] == "invalid"
    assert (await reader.get(messages_url("0" * 32))).status_code == 404


async def test_a_turn_as_json_has_both_messages_and_the_structured_reply(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    url = messages_url(conversation["id"])

    response = await writer.post(url, json={"text": "Hi, my name is Bob.", "author": "Ada"})
    assert response.status_code == 200, response.text
    turn = response.json()
    assert turn["conversation_id"] == conversation["id"]
    assert turn["failed"] is False
    assert turn["closed"] is False
    user = turn["user_message"]
    assert (user["role"], user["seq"], user["text"]) == ("user", 2, "Hi, my name is Bob.")
    assert user["author_name"] == "Ada"
    assert user["author_id"].startswith("api-key:")
    reply = turn["reply"]
    assert (reply["role"], reply["seq"], reply["author_name"]) == ("assistant", 3, "Chef")
    assert turn["text"] == reply["text"] == "You said: Ada: Hi, my name is Bob."
    assert set(turn["data"]) == set(CHEF_SHAPE)
    assert turn["data"]["answer"] == turn["text"]
    assert isinstance(turn["data"]["recipes"], list)
    assert reply["data"] == turn["data"]
    assert fake_openai.chat_requests()[-1].messages[-1]["content"] == "Ada: Hi, my name is Bob."

    stored = (await writer.get(url)).json()["items"]
    assert stored[0] == reply
    assert stored[1] == user

    again = await say(writer, conversation["id"], "What's my name?")
    assert again["text"] == "Your name is Bob."


async def test_an_invalid_message_is_422_and_reaches_no_model(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    url = messages_url(conversation["id"])
    asked = len(fake_openai.chat_requests())
    cases: list[tuple[Any, str]] = [
        ({}, "text: Field required"),
        ({"text": ""}, "text: "),
        ({"text": "x" * 32_001}, "text: "),
        ({"text": "hi", "author": "x" * 81}, "author: "),
        ({"text": "hi", "agent_id": "plain"}, "agent_id: "),
        ({"text": 42}, "text: "),
    ]
    for body, start in cases:
        error = error_of(await writer.post(url, json=body), 422)
        assert error["message"].startswith(start), (body, error)
    assert len(fake_openai.chat_requests()) == asked
    assert await history(writer, conversation["id"]) == [
        ("assistant", "Hello, I am your personal chef. What can I do for you today?")
    ]
    unknown = error_of(await writer.post(messages_url("f" * 32), json={"text": "hi"}), 404)
    assert unknown["code"] == "not_found"


async def test_a_failing_model_gives_the_apology_and_stores_the_error(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer, agent_id="plain")
    fake_openai.script(Reply(status=500, error_message="upstream exploded"))

    turn = await say(writer, conversation["id"], "hello?")
    assert turn["failed"] is True
    assert turn["text"] == "Sorry, I couldn't answer just now. Please try again in a moment."
    assert turn["reply"]["error"]
    stored = (await writer.get(messages_url(conversation["id"]))).json()["items"][0]
    assert stored["error"] == turn["reply"]["error"]


async def test_a_reply_streams_as_server_sent_events(api: Api, fake_openai: FakeOpenAI) -> None:
    base = await api.serve()
    answer = "Paella wants saffron, short grain rice and a little patience."
    whole = {
        "answer": answer,
        "recipes": ["Paella valenciana"],
        "ingredients": ["saffron", "rice"],
        "summary": "Asked about paella.",
    }
    fake_openai.script(Reply(content=json.dumps(whole), chunk_size=6, chunk_delay=0.01))

    async with client_with(api, await api.key("write"), base_url=base) as client:
        conversation = await create_conversation(client)
        async with aconnect_sse(
            client, "POST", messages_url(conversation["id"]), json={"text": "Paella?"}
        ) as source:
            assert source.response.status_code == 200
            assert source.response.headers["content-type"].startswith("text/event-stream")
            assert source.response.headers["cache-control"] == "no-cache"
            events = [(sse.event, sse.json()) async for sse in source.aiter_sse()]

    names = [name for name, _ in events]
    assert names[-2:] == ["message", "done"]
    assert set(names[:-2]) == {"delta"}, names
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) >= 3, deltas
    for shorter, longer in itertools.pairwise(deltas):
        assert longer.startswith(shorter)
        assert len(longer) > len(shorter)
    assert deltas[-1] == answer
    assert not any(text.lstrip().startswith("{") for text in deltas), "never raw JSON"

    message = events[-2][1]
    assert message["text"] == answer
    assert message["data"] == whole
    assert message["user_message"]["text"] == "Paella?"
    assert message["reply"]["seq"] == 3
    assert message["failed"] is False
    assert events[-1][1] == {}

    stored = await api.store.list_messages(conversation_id=conversation["id"])
    assert [(m.role, m.text) for m in stored][1:] == [("user", "Paella?"), ("assistant", answer)]
    assert stored[2].data == whole


async def test_a_plain_agent_streams_its_text(api: Api, fake_openai: FakeOpenAI) -> None:
    base = await api.serve()
    text = "Plain answers grow a few characters at a time."
    fake_openai.script(Reply(content=text, chunk_size=5, chunk_delay=0.01))
    async with client_with(api, await api.key("write"), base_url=base) as client:
        conversation = await create_conversation(client, agent_id="plain")
        async with aconnect_sse(
            client, "POST", messages_url(conversation["id"]), json={"text": "hi"}
        ) as source:
            events = [(sse.event, sse.json()) async for sse in source.aiter_sse()]
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) >= 3
    assert deltas[-1] == text
    assert [name for name, _ in events].count("message") == 1
    assert events[-2][1]["data"] is None
    assert events[-1][0] == "done"


async def test_a_client_that_disconnects_mid_stream_leaves_a_complete_stored_turn(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    base = await api.serve()
    story = " ".join(f"word{i}" for i in range(20)) + "."
    fake_openai.script(Reply(content=story, chunk_size=6, chunk_delay=0.03))

    async with client_with(api, await api.key("write"), base_url=base) as client:
        conversation = await create_conversation(client, agent_id="plain")
        cid = conversation["id"]
        async with aconnect_sse(
            client, "POST", messages_url(cid), json={"text": "Tell me a story"}
        ) as source:
            async for sse in source.aiter_sse():
                assert sse.event == "delta"
                first = sse.json()["text"]
                break
    # the connection is closed: the client saw only the start of the reply
    assert story.startswith(first)
    assert first != story
    assert len(await api.store.list_messages(conversation_id=cid)) == 2, "reply still running"

    async def stored() -> bool:
        return len(await api.store.list_messages(conversation_id=cid)) == 3

    await eventually(stored)
    messages = await api.store.list_messages(conversation_id=cid)
    assert [(m.role, m.text) for m in messages[1:]] == [
        ("user", "Tell me a story"),
        ("assistant", story),
    ]
    assert messages[2].error is None


async def test_a_slack_conversation_is_read_here_and_answered_there(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    conversation, _ = await api.engine.open_conversation(key=SLACK)
    writer = await api.as_key("write")

    read = await writer.get(f"{API}/conversations/{conversation.id}")
    assert read.status_code == 200
    assert read.json()["key"] == {
        "platform": "slack",
        "workspace": "T1",
        "channel": "C1",
        "thread": "1.1",
    }
    asked = len(fake_openai.chat_requests())
    refused = error_of(await writer.post(messages_url(conversation.id), json={"text": "hi"}), 409)
    assert refused["code"] == "conflict"
    assert "lives on slack" in refused["message"]
    streamed = await writer.post(
        messages_url(conversation.id),
        json={"text": "hi"},
        headers={"Accept": "text/event-stream"},
    )
    assert error_of(streamed, 409)["code"] == "conflict"
    assert len(fake_openai.chat_requests()) == asked
    assert len(await history(writer, conversation.id)) == 1


async def test_a_closed_conversation_is_409(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    await api.store.close_conversation(conversation_id=conversation["id"])

    error = error_of(await writer.post(messages_url(conversation["id"]), json={"text": "hi"}), 409)
    assert "closed" in error["message"]
    read = await writer.get(f"{API}/conversations/{conversation['id']}")
    assert read.json()["closed_at"] is not None
    assert len(await history(writer, conversation["id"])) == 1


async def test_max_turns_closes_the_conversation_politely(api_factory: ApiFactory) -> None:
    api = await api_factory(agents=agents_file(chef(), plain(max_turns=1)))
    writer = await api.as_key("write")
    conversation = await create_conversation(writer, agent_id="plain")
    cid = conversation["id"]

    first = await say(writer, cid, "one")
    assert first["closed"] is False
    last = await say(writer, cid, "two")
    assert last["closed"] is True
    assert last["text"].startswith("We have reached the end of this conversation.")
    assert (await writer.get(f"{API}/conversations/{cid}")).json()["closed_at"] is not None
    after = error_of(await writer.post(messages_url(cid), json={"text": "three"}), 409)
    assert "closed" in after["message"]
    assert [text for _, text in await history(writer, cid)][-2:] == ["two", last["text"]]


async def test_a_turn_that_fails_mid_stream_ends_with_an_error_event(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    base = await api.serve()
    fake_openai.script(Reply(content="slow words " * 3, chunk_size=5, chunk_delay=0.03))
    events: list[tuple[str, Any]] = []
    async with client_with(api, await api.key("write"), base_url=base) as client:
        conversation = await create_conversation(client, agent_id="plain")
        async with aconnect_sse(
            client, "POST", messages_url(conversation["id"]), json={"text": "hi"}
        ) as source:
            async for sse in source.aiter_sse():
                events.append((sse.event, sse.json()))
                if len(events) == 1:
                    await api.store.close()  # the reply cannot be stored now

    names = [name for name, _ in events]
    assert names[0] == "delta"
    assert names[-1] == "error"
    assert "message" not in names
    assert "done" not in names
    error = events[-1][1]["error"]
    assert error["code"] == "turn_failed"
    assert error["message"] == STORE_LINE
    assert "sqlite" not in json.dumps(events[-1][1]).lower()
