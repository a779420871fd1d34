"""Turn caps through the API: a key has at most ``API_TURNS_PER_KEY`` (4) turns running or
waiting, streams it walked away from included, and a conversation at most
``MAX_QUEUED_PER_CONVERSATION`` (8); refusals are 429 with the error envelope and
``Retry-After``, and other keys are still served. The model holds every answer until the
test lets it go, so the turns stay in flight as long as the test needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.adapters.http.helpers import (
    API,
    client_with,
    create_conversation,
    error_of,
    history,
    say,
)
from tests.support.api import Api
from tests.support.fake_openai import FakeOpenAI, HeldModel
from tests.support.waiting import eventually


@pytest.fixture
async def held(api: Api, fake_openai: FakeOpenAI) -> AsyncIterator[HeldModel]:
    hold = HeldModel()
    fake_openai.handle(hold)
    yield hold
    hold.release()  # before the app and the fake server stop, whatever the test did


def messages_url(conversation_id: str) -> str:
    return f"{API}/conversations/{conversation_id}/messages"


async def post_in_background(
    client: httpx.AsyncClient, conversation_id: str, text: str
) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(client.post(messages_url(conversation_id), json={"text": text}))


async def test_a_key_has_four_turns_in_flight_then_429_and_others_are_served(
    api: Api, held: HeldModel
) -> None:
    base = await api.serve()
    key = await api.key("write")
    async with client_with(api, key, base_url=base) as client:
        ids = [(await create_conversation(client))["id"] for _ in range(5)]
        for number, conversation_id in enumerate(ids[:4]):
            async with aconnect_sse(
                client, "POST", messages_url(conversation_id), json={"text": f"slow {number}"}
            ) as source:
                assert source.response.status_code == 200
            # the stream is closed here: the client has gone, its turn runs on
        await held.until(4)

        refused = await client.post(messages_url(ids[4]), json={"text": "one more"})
        assert error_of(refused, 429) == {
            "code": "too_many_turns",
            "message": "this key already has 4 turns running or waiting; wait for one to finish",
        }
        assert refused.headers["retry-after"] == "5"
        plain = await client.post(f"/chat/{ids[4]}", content="one more, as text")
        assert error_of(plain, 429)["code"] == "too_many_turns"
        assert plain.headers["retry-after"] == "5"
        assert (await client.get(messages_url(ids[4]))).status_code == 200, "reading is not capped"

    other = client_with(api, await api.key("write"))
    elsewhere = await create_conversation(other)
    served = await post_in_background(other, elsewhere["id"], "my turn")
    await held.until(5)
    assert held.arrived == 5, "the refused turns never reached the model"

    held.release()
    assert (await served).status_code == 200
    await eventually(lambda: _settled(api))
    same_key = client_with(api, key)
    for number, conversation_id in enumerate(ids[:4]):
        assert (await history(same_key, conversation_id))[-2:] == [
            ("user", f"slow {number}"),
            ("assistant", f"You said: slow {number}"),
        ], "the turn of a stream walked away from completed and was stored"
    assert [role for role, _ in await history(same_key, ids[4])] == ["assistant"]
    assert (await say(same_key, ids[4], "now?"))["text"] == "You said: now?"


async def test_a_conversation_has_eight_turns_in_flight_then_429(api: Api, held: HeldModel) -> None:
    first, second, third = [client_with(api, await api.key("write")) for _ in range(3)]
    conversation = await create_conversation(first)
    stored = await api.store.get_conversation(conversation_id=conversation["id"])
    assert stored is not None
    place = stored.key.canonical
    posts = [
        await post_in_background(client, conversation["id"], f"{name} {number}")
        for name, client in (("first", first), ("second", second))
        for number in range(4)
    ]
    await held.until(1)
    await eventually(lambda: _in_flight(api, place, 8))

    refused = await third.post(messages_url(conversation["id"]), json={"text": "and me"})
    error = error_of(refused, 429)
    assert error["code"] == "conversation_busy"
    assert error["message"].startswith("this conversation already has 8 messages waiting")
    assert refused.headers["retry-after"] == "5"
    own = await create_conversation(third)
    aside = await post_in_background(third, own["id"], "somewhere else")
    await held.until(2)

    held.release()
    for post in [*posts, aside]:
        assert (await post).status_code == 200
    texts = [text for role, text in await history(first, conversation["id"]) if role == "user"]
    assert sorted(texts) == sorted(f"{n} {i}" for n in ("first", "second") for i in range(4))
    assert "and me" not in texts
    assert api.engine.admission.entries == 0


async def _settled(api: Api) -> bool:
    return api.engine.admission.in_flight == 0


async def _in_flight(api: Api, place: str, count: int) -> bool:
    return api.engine.admission.of_conversation(place) == count
