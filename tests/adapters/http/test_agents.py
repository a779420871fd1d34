"""``/api/v1/agents``: file agents are read-only, stored agents are created, replaced and
deleted through the API and usable at once (by this process and any other on the store)."""

from __future__ import annotations

from typing import Any

from tests.adapters.http.helpers import API, create_conversation, error_of, history, say
from tests.support.api import Api, ApiFactory
from tests.support.fake_openai import FakeOpenAI


def sommelier(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "sommelier",
        "name": "Sommelier",
        "context": "You are a sommelier.",
        "first_message": "Red or white?",
        "response_shape": {
            "reply": "String, your answer",
            "wines": "List of strings with the wines you suggest",
        },
        "reply_field": "reply",
        "goal": "The person picked a wine.",
        **overrides,
    }


async def test_lists_the_file_agents_as_read_only(api: Api) -> None:
    client = await api.as_key("read")
    response = await client.get(f"{API}/agents")
    assert response.status_code == 200
    agents = response.json()
    assert [(a["id"], a["source"]) for a in agents] == [("chef", "file"), ("plain", "file")]
    chef = agents[0]
    assert chef["first_message"].startswith("Hello, I am your personal chef")
    assert chef["response_shape"]["required"] == ["answer", "recipes", "ingredients", "summary"]

    one = await client.get(f"{API}/agents/plain")
    assert one.status_code == 200
    assert one.json() == agents[1]


async def test_an_unknown_agent_is_404(api: Api) -> None:
    client = await api.as_key("read")
    for agent_id in ["nobody", "Not-An-Id", "%7B%22%24gt%22%3A%22%22%7D"]:
        error = error_of(await client.get(f"{API}/agents/{agent_id}"), 404)
        assert error["code"] == "not_found"


async def test_a_created_agent_is_listed_and_usable_at_once(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    admin = await api.as_key("admin")
    created = await admin.post(f"{API}/agents", json=sommelier())
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/agents/sommelier"
    body = created.json()
    assert body["source"] == "store"
    assert body["reply_field"] == "reply"
    assert body["response_shape"]["required"] == ["reply", "wines"]

    listed = await admin.get(f"{API}/agents")
    assert [(a["id"], a["source"]) for a in listed.json()] == [
        ("chef", "file"),
        ("plain", "file"),
        ("sommelier", "store"),
    ]
    assert (await admin.get(f"{API}/agents/sommelier")).json() == body

    conversation = await create_conversation(admin, agent_id="sommelier")
    assert conversation["agent_id"] == "sommelier"
    assert await history(admin, conversation["id"]) == [("assistant", "Red or white?")]
    turn = await say(admin, conversation["id"], "Hi, my name is Bob.")
    assert turn["text"] == "You said: Hi, my name is Bob."
    assert set(turn["data"]) == {"reply", "wines"}
    assert turn["data"]["reply"] == turn["text"]
    assert turn["reply"]["author_name"] == "Sommelier"
    system = fake_openai.chat_requests()[-1].system_text
    assert system.startswith("You are a sommelier.")

    checked = await admin.post(f"{API}/conversations/{conversation['id']}/goal-check")
    assert checked.status_code == 201
    assert checked.json()["agent_id"] == "sommelier"


async def test_another_process_on_the_same_store_sees_a_created_agent(
    api: Api, api_factory: ApiFactory
) -> None:
    other = await api_factory(store=api.store)
    before = await (await other.as_key("read")).get(f"{API}/agents/sommelier")
    assert before.status_code == 404

    created = await (await api.as_key("admin")).post(f"{API}/agents", json=sommelier())
    assert created.status_code == 201

    writer = await other.as_key("write")
    assert (await writer.get(f"{API}/agents/sommelier")).status_code == 200
    conversation = await create_conversation(writer, agent_id="sommelier")
    assert await history(writer, conversation["id"]) == [("assistant", "Red or white?")]


async def test_a_taken_id_is_409(api: Api) -> None:
    admin = await api.as_key("admin")
    assert (await admin.post(f"{API}/agents", json=sommelier())).status_code == 201

    again = error_of(await admin.post(f"{API}/agents", json=sommelier(name="Other")), 409)
    assert again["code"] == "conflict"
    assert "sommelier" in again["message"]
    file_id = error_of(await admin.post(f"{API}/agents", json=sommelier(id="chef")), 409)
    assert "agents file" in file_id["message"]

    assert (await admin.get(f"{API}/agents/sommelier")).json()["name"] == "Sommelier"
    assert (await admin.get(f"{API}/agents/chef")).json()["name"] == "Chef"


INVALID_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"reply_field": "answer"}, "reply_field"),
    ({"reply_field": "wines"}, "reply_field"),
    ({"name": ""}, "name"),
    ({"temperature": 5}, "temperature"),
    ({"id": "Not An Id"}, "id"),
    ({"colour": "red"}, "colour"),
    ({"goal": None, "goal_check": {"every": "1h"}}, "goal"),
    ({"goal_check": {"every": "1h", "timezone": "Mars/Olympus"}}, "timezone"),
    ({"response_shape": {"bad name": "String"}}, "response_shape"),
]


async def test_an_invalid_agent_is_422_naming_the_field(api: Api) -> None:
    admin = await api.as_key("admin")
    for change, field in INVALID_CHANGES:
        error = error_of(await admin.post(f"{API}/agents", json=sommelier(**change)), 422)
        assert error["code"] == "invalid"
        assert field in error["message"], (change, error)
    listed = await admin.get(f"{API}/agents")
    assert [a["id"] for a in listed.json()] == ["chef", "plain"], "nothing was stored"


async def test_a_missing_field_is_named(api: Api) -> None:
    admin = await api.as_key("admin")
    definition = sommelier()
    del definition["context"]
    error = error_of(await admin.post(f"{API}/agents", json=definition), 422)
    assert error["message"].startswith("context: ")
    not_object = error_of(await admin.post(f"{API}/agents", json=[sommelier()]), 422)
    assert not_object["code"] == "invalid"


async def test_file_agents_are_read_only(api: Api) -> None:
    admin = await api.as_key("admin")
    replaced = error_of(
        await admin.put(f"{API}/agents/chef", json=sommelier(id="chef", name="Impostor")), 409
    )
    assert replaced["code"] == "read_only"
    assert "agents file" in replaced["message"]
    deleted = error_of(await admin.delete(f"{API}/agents/chef"), 409)
    assert deleted["code"] == "read_only"

    chef = (await admin.get(f"{API}/agents/chef")).json()
    assert chef["name"] == "Chef"
    assert chef["source"] == "file"


async def test_put_replaces_a_stored_agent(api: Api) -> None:
    admin = await api.as_key("admin")
    await admin.post(f"{API}/agents", json=sommelier())
    earlier = await create_conversation(admin, agent_id="sommelier")

    changed = sommelier(name="Wine Guide", first_message="Shall we pick a bottle?")
    replaced = await admin.put(f"{API}/agents/sommelier", json=changed)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "Wine Guide"
    assert replaced.json()["source"] == "store"
    assert (await admin.get(f"{API}/agents/sommelier")).json()["name"] == "Wine Guide"

    later = await create_conversation(admin, agent_id="sommelier")
    assert await history(admin, later["id"]) == [("assistant", "Shall we pick a bottle?")]
    turn = await say(admin, earlier["id"], "Hello")
    assert turn["reply"]["author_name"] == "Wine Guide", "the running conversation uses it too"


async def test_put_refuses_a_changed_id_an_invalid_agent_and_an_unknown_agent(api: Api) -> None:
    admin = await api.as_key("admin")
    await admin.post(f"{API}/agents", json=sommelier())

    renamed = error_of(await admin.put(f"{API}/agents/sommelier", json=sommelier(id="vino")), 422)
    assert "id" in renamed["message"]
    invalid = error_of(
        await admin.put(f"{API}/agents/sommelier", json=sommelier(reply_field="nope")), 422
    )
    assert "reply_field" in invalid["message"]
    unknown = error_of(await admin.put(f"{API}/agents/nobody", json=sommelier(id="nobody")), 404)
    assert unknown["code"] == "not_found"
    assert (await admin.get(f"{API}/agents/sommelier")).json()["name"] == "Sommelier"
    assert (await admin.get(f"{API}/agents/nobody")).status_code == 404


async def test_delete_removes_a_stored_agent_and_keeps_its_conversations(api: Api) -> None:
    admin = await api.as_key("admin")
    await admin.post(f"{API}/agents", json=sommelier())
    conversation = await create_conversation(admin, agent_id="sommelier")

    deleted = await admin.delete(f"{API}/agents/sommelier")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await admin.get(f"{API}/agents/sommelier")).status_code == 404
    assert [a["id"] for a in (await admin.get(f"{API}/agents")).json()] == ["chef", "plain"]
    again = error_of(await admin.delete(f"{API}/agents/sommelier"), 404)
    assert "sommelier" in again["message"]
    refused = error_of(
        await admin.post(f"{API}/conversations", json={"agent_id": "sommelier"}), 422
    )
    assert refused["message"].startswith("agent_id: ")

    kept = await admin.get(f"{API}/conversations/{conversation['id']}")
    assert kept.status_code == 200
    turn = await say(admin, conversation["id"], "Still there?")
    assert turn["reply"]["author_name"] == "Chef", "the default agent answers now"
