"""Operator-shaped input through the API is data on every store: searched literally, stored
and read back as sent, and refused where it cannot be an id."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.adapters.http.helpers import API, create_conversation, error_of, say
from tests.support.api import Api, ApiFactory
from tests.support.stores import StoreFactory

GT = '{"$gt": ""}'
NE = '{"$ne": null}'
WHERE = "$where"
BOMB = "(a+)+$"
TITLES = {
    "gt": f"price {GT} list",
    "where": f"uses {WHERE}: this.x == 1",
    "bomb": f"pattern {BOMB} here",
    "victim": "a" * 40 + "!",
    "plain": "Dinner for two",
}


@pytest.fixture
async def api(api_factory: ApiFactory, store_factory: StoreFactory) -> Api:
    """The API over each store (SQLite, then MongoDB on SecantusDB)."""
    return await api_factory(store=await store_factory())


async def search(client: httpx.AsyncClient, **params: str) -> set[str]:
    async with asyncio.timeout(5):  # a regex bomb would hang here
        response = await client.get(f"{API}/conversations", params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])
    return {c["id"] for c in page["items"]}


async def test_text_search_is_literal(api: Api) -> None:
    writer = await api.as_key("write")
    ids = {}
    for name, title in TITLES.items():
        conversation = await create_conversation(writer, agent_id="plain")
        await say(writer, conversation["id"], title)
        ids[name] = conversation["id"]
    titled = (await writer.get(f"{API}/conversations/{ids['gt']}")).json()["title"]
    assert titled == TITLES["gt"]

    assert await search(writer, q=GT) == {ids["gt"]}
    assert await search(writer, q=WHERE) == {ids["where"]}
    assert await search(writer, q=BOMB) == {ids["bomb"]}
    assert await search(writer, q="a" * 30) == {ids["victim"]}
    for pattern in (".*", "^", "a.*!", "[a-z]", "%", "_", "\\", "'; DROP TABLE conversations; --"):
        assert await search(writer, q=pattern) == set(), pattern
    assert await search(writer, q="DINNER") == {ids["plain"]}
    assert len(await search(writer)) == 5, "every conversation is still there"


async def test_tag_search_is_literal(api: Api) -> None:
    writer = await api.as_key("write")
    operator = await create_conversation(writer, tags=[NE, GT])
    vip = await create_conversation(writer, tags=["vip"])
    await create_conversation(writer)

    assert await search(writer, tag=NE) == {operator["id"]}
    assert await search(writer, tag=GT) == {operator["id"]}
    assert await search(writer, tag="vip") == {vip["id"]}
    for tag in ('{"$exists": true}', "%", "v.p", "{}", "null"):
        assert await search(writer, tag=tag) == set(), tag


async def test_operator_shaped_values_are_stored_and_read_back_literally(api: Api) -> None:
    writer = await api.as_key("write")
    data = {"$where": "1", "filter": {"$gt": ""}, "list": [{"$ne": None}], "a.b": 1}
    conversation = await create_conversation(writer, data=data, source=GT, tags=[NE])
    cid = conversation["id"]
    assert conversation["data"] == data
    assert conversation["source"] == GT
    read = (await writer.get(f"{API}/conversations/{cid}")).json()
    assert (read["data"], read["source"], read["tags"]) == (data, GT, [NE])

    changes = {"$set": {"agent_id": "plain"}, "$unset": {"tags": ""}}
    patched = await writer.patch(f"{API}/conversations/{cid}", json={"data": changes})
    assert patched.status_code == 200
    read = (await writer.get(f"{API}/conversations/{cid}")).json()
    assert read["data"] == changes
    assert read["agent_id"] == "chef"
    assert read["tags"] == [NE]

    turn = await say(writer, cid, '{"$where": "sleep(1000)"}')
    assert turn["user_message"]["text"] == '{"$where": "sleep(1000)"}'
    stored = await api.store.list_messages(conversation_id=cid)
    assert stored[1].text == '{"$where": "sleep(1000)"}'
    assert await search(writer, q=GT) == {cid}, "found by its source"


async def test_operator_shaped_ids_are_refused_or_match_nothing(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)

    for agent_id in ({"$gt": ""}, GT, {"$ne": None}, ["chef"]):
        error = error_of(
            await writer.post(f"{API}/conversations", json={"agent_id": agent_id}), 422
        )
        assert error["message"].startswith("agent_id: "), agent_id
    assert await search(writer, agent_id=GT) == set()
    assert await search(writer, agent_id="chef") == {conversation["id"]}

    encoded = "%7B%22%24gt%22%3A%22%22%7D"
    assert (await writer.get(f"{API}/conversations/{encoded}")).status_code == 404
    assert (await writer.get(f"{API}/agents/{encoded}")).status_code == 404
    messages = f"{API}/conversations/{conversation['id']}/messages"
    assert (await writer.get(messages, params={"before": GT})).status_code == 422
    assert (await writer.get(f"{API}/conversations", params={"limit": GT})).status_code == 422
    assert len(await search(writer)) == 1
