"""``/api/v1/conversations``: create, search, read, change, delete, goal checks and export."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from memory.base import PlatformKey
from tests.adapters.http.helpers import API, create_conversation, error_of, history, say
from tests.support.api import Api
from tests.support.fake_openai import FakeOpenAI, Reply

CHEF_FIRST = "Hello, I am your personal chef. What can I do for you today?"
SLACK = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.1")


async def test_create_opens_with_the_agents_first_message(api: Api) -> None:
    writer = await api.as_key("write")
    response = await writer.post(
        f"{API}/conversations",
        json={"data": {"table": 4, "diet": ["vegan"]}, "source": "shop-widget", "tags": ["vip"]},
    )
    assert response.status_code == 201, response.text
    conversation = response.json()
    assert response.headers["location"] == f"{API}/conversations/{conversation['id']}"
    assert conversation["agent_id"] == "chef", "the default agent"
    assert conversation["key"]["platform"] == "api"
    assert conversation["data"] == {"table": 4, "diet": ["vegan"]}
    assert conversation["source"] == "shop-widget"
    assert conversation["tags"] == ["vip"]
    assert conversation["message_count"] == 1
    assert conversation["closed_at"] is None

    read = await writer.get(response.headers["location"])
    assert read.status_code == 200
    assert read.json() == conversation
    assert await history(writer, conversation["id"]) == [("assistant", CHEF_FIRST)]

    plain = await create_conversation(writer, agent_id="plain")
    assert plain["agent_id"] == "plain"
    assert plain["key"]["channel"] != conversation["key"]["channel"], "each is a new place"
    assert await history(writer, plain["id"]) == [("assistant", "Hi! How can I help?")]


INVALID_NEW_CONVERSATIONS: list[tuple[dict[str, Any], str]] = [
    ({"agent_id": "nobody"}, "agent_id"),
    ({"agent_id": "Not An Id"}, "agent_id"),
    ({"agent_id": 7}, "agent_id"),
    ({"tags": ["ok", ""]}, "tags.1"),
    ({"tags": ["line\nbreak"]}, "tags.0"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
    ({"source": "x" * 201}, "source"),
    ({"data": ["not", "an", "object"]}, "data"),
    ({"title": "not a field"}, "title"),
]


async def test_create_refuses_an_invalid_body_naming_the_field(api: Api) -> None:
    writer = await api.as_key("write")
    for body, field in INVALID_NEW_CONVERSATIONS:
        error = error_of(await writer.post(f"{API}/conversations", json=body), 422)
        assert error["code"] == "invalid"
        assert error["message"].startswith(f"{field}: "), (body, error)
    assert (await writer.get(f"{API}/conversations")).json()["total"] == 0, "nothing stored"


async def _search(client: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    response = await client.get(f"{API}/conversations", params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    return [c["id"] for c in page["items"]], page["total"]


async def test_search_filters_pages_and_orders(api: Api) -> None:
    writer = await api.as_key("write")
    vip = await create_conversation(writer, tags=["vip", "spring"], source="newsletter")
    await asyncio.sleep(0.005)
    widget = await create_conversation(writer, agent_id="plain", tags=["spring"], source="widget")
    await asyncio.sleep(0.005)
    paella = await create_conversation(writer)
    await say(writer, paella["id"], "Paella for six, please")
    await asyncio.sleep(0.005)
    slack, _ = await api.engine.open_conversation(key=SLACK, agent_id="plain")
    await api.store.set_summary(
        conversation_id=vip["id"], summary="The guest is allergic to nuts.", summary_seq=1
    )
    created = [vip["id"], widget["id"], paella["id"], slack.id]

    assert sorted((await _search(writer))[0]) == sorted(created)
    assert await _search(writer, agent_id="chef") == ([paella["id"], vip["id"]], 2)
    assert await _search(writer, platform="slack") == ([slack.id], 1)
    assert (await _search(writer, platform="api"))[1] == 3
    assert await _search(writer, tag="vip") == ([vip["id"]], 1)
    assert sorted((await _search(writer, tag="spring"))[0]) == sorted([vip["id"], widget["id"]])
    assert await _search(writer, tag="spring", agent_id="plain") == ([widget["id"]], 1)
    assert await _search(writer, q="PAELLA") == ([paella["id"]], 1), "title, any case"
    assert await _search(writer, q="widg") == ([widget["id"]], 1), "source"
    assert await _search(writer, q="nuts") == ([vip["id"]], 1), "summary"
    assert await _search(writer, q="nothing like this") == ([], 0)

    assert await _search(writer, order="created_asc") == (created, 4)
    assert await _search(writer, order="created_desc") == (created[::-1], 4)
    assert await _search(writer, order="created_asc", limit=2) == (created[:2], 4)
    assert await _search(writer, order="created_asc", limit=2, offset=2) == (created[2:], 4)
    assert await _search(writer, order="created_asc", offset=10) == ([], 4)

    await say(writer, widget["id"], "bump")
    assert (await _search(writer, order="updated_desc"))[0][0] == widget["id"]
    assert (await _search(writer, order="updated_asc"))[0][-1] == widget["id"]


INVALID_SEARCHES: list[tuple[dict[str, Any], str]] = [
    ({"limit": 101}, "limit"),
    ({"limit": 0}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"offset": -1}, "offset"),
    ({"order": "random"}, "order"),
    ({"platform": "telegram"}, "platform"),
    ({"q": "x" * 201}, "q"),
    ({"tag": "x" * 65}, "tag"),
]


async def test_search_refuses_invalid_parameters(api: Api) -> None:
    reader = await api.as_key("read")
    for params, field in INVALID_SEARCHES:
        error = error_of(await reader.get(f"{API}/conversations", params=params), 422)
        assert error["message"].startswith(f"{field}: "), (params, error)


async def test_get_shows_the_summary_and_the_goal_state(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    fresh = (await writer.get(f"{API}/conversations/{conversation['id']}")).json()
    assert fresh["goal"] is None
    assert fresh["goal_pending"] is True
    assert fresh["summary"] == ""

    await say(writer, conversation["id"], "I have chosen the paella, done.")
    await api.store.set_summary(
        conversation_id=conversation["id"], summary="Paella chosen.", summary_seq=2
    )
    await writer.post(f"{API}/conversations/{conversation['id']}/goal-check")

    read = (await writer.get(f"{API}/conversations/{conversation['id']}")).json()
    assert read["summary"] == "Paella chosen."
    assert read["summary_seq"] == 2
    assert read["title"] == "I have chosen the paella, done."
    assert read["message_count"] == 3
    assert read["goal"]["reached"] is True
    assert read["goal"]["covered_seq"] == 3
    assert read["goal"]["missing"] == []
    assert read["goal_pending"] is False


async def test_patch_changes_only_the_fields_given(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer, data={"table": 4}, source="web", tags=["a"])
    url = f"{API}/conversations/{conversation['id']}"

    async def patch(body: dict[str, Any]) -> dict[str, Any]:
        response = await writer.patch(url, json=body)
        assert response.status_code == 200, response.text
        changed: dict[str, Any] = response.json()
        assert changed == (await writer.get(url)).json(), "what it answers is what is stored"
        return changed

    tagged = await patch({"tags": ["b", "c"]})
    assert (tagged["data"], tagged["source"], tagged["tags"]) == ({"table": 4}, "web", ["b", "c"])
    data = await patch({"data": {"table": 6, "notes": None}})
    assert (data["data"], data["source"], data["tags"]) == (
        {"table": 6, "notes": None},
        "web",
        ["b", "c"],
    )
    unsourced = await patch({"source": None})
    assert (unsourced["data"], unsourced["source"], unsourced["tags"]) == (
        {"table": 6, "notes": None},
        None,
        ["b", "c"],
    )
    untagged = await patch({"tags": []})
    assert untagged["tags"] == []
    assert untagged["data"] == {"table": 6, "notes": None}
    same = await patch({})
    assert {k: same[k] for k in ("data", "source", "tags", "agent_id")} == {
        "data": {"table": 6, "notes": None},
        "source": None,
        "tags": [],
        "agent_id": "chef",
    }

    for body, field in [
        ({"agent_id": "plain"}, "agent_id"),
        ({"tags": ["\x00"]}, "tags.0"),
        ({"data": "text"}, "data"),
    ]:
        error = error_of(await writer.patch(url, json=body), 422)
        assert error["message"].startswith(f"{field}: "), error
    assert (await writer.get(url)).json()["agent_id"] == "chef"
    missing = error_of(await writer.patch(f"{API}/conversations/{'0' * 32}", json={}), 404)
    assert missing["code"] == "not_found"


async def test_delete_removes_the_conversation_with_its_messages_and_checks(api: Api) -> None:
    admin = await api.as_key("admin")
    conversation = await create_conversation(admin)
    cid = conversation["id"]
    await say(admin, cid, "Hi, my name is Bob.")
    await admin.post(f"{API}/conversations/{cid}/goal-check")
    other = await create_conversation(admin)

    deleted = await admin.delete(f"{API}/conversations/{cid}")
    assert deleted.status_code == 204
    assert deleted.content == b""

    assert error_of(await admin.get(f"{API}/conversations/{cid}"), 404)["code"] == "not_found"
    assert (await admin.get(f"{API}/conversations/{cid}/messages")).status_code == 404
    assert (await admin.delete(f"{API}/conversations/{cid}")).status_code == 404
    assert await api.store.get_conversation(conversation_id=cid) is None
    assert await api.store.list_messages(conversation_id=cid) == []
    assert await api.store.list_goal_checks(conversation_id=cid) == []
    assert await _search(admin) == ([other["id"]], 1), "only that one is gone"
    assert await history(admin, other["id"]) == [("assistant", CHEF_FIRST)]


async def test_goal_checks_are_run_stored_and_listed_newest_first(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    url = f"{API}/conversations/{conversation['id']}"

    first = await writer.post(f"{url}/goal-check")
    assert first.status_code == 201, first.text
    assert first.json()["reached"] is False
    assert first.json()["missing"]
    assert first.json()["conversation_id"] == conversation["id"]
    assert first.json()["agent_id"] == "chef"
    assert first.json()["error"] is None

    await say(writer, conversation["id"], "I have chosen the paella, done.")
    second = await writer.post(f"{url}/goal-check")
    assert second.status_code == 201
    assert second.json()["reached"] is True
    assert second.json()["covered_seq"] == 3

    listed = await writer.get(f"{url}/goal-checks")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()] == [second.json()["id"], first.json()["id"]]
    assert [c["id"] for c in (await writer.get(f"{url}/goal-checks?limit=1")).json()] == [
        second.json()["id"]
    ]
    assert (await writer.get(f"{url}/goal-checks?limit=101")).status_code == 422


async def test_a_failing_model_gives_a_goal_check_with_an_error(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    fake_openai.script(Reply(status=500, error_message="upstream exploded"))
    checked = await writer.post(f"{API}/conversations/{conversation['id']}/goal-check")
    assert checked.status_code == 201
    assert checked.json()["error"]
    assert checked.json()["reached"] is False
    read = (await writer.get(f"{API}/conversations/{conversation['id']}")).json()
    assert read["goal"] is None, "a failed check does not change the goal state"


async def test_an_agent_without_a_goal_is_409_no_goal(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer, agent_id="plain")
    error = error_of(await writer.post(f"{API}/conversations/{conversation['id']}/goal-check"), 409)
    assert error["code"] == "no_goal"
    assert "plain" in error["message"]
    assert (await writer.get(f"{API}/conversations/{conversation['id']}/goal-checks")).json() == []
    unknown = await writer.post(f"{API}/conversations/{'a' * 32}/goal-check")
    assert error_of(unknown, 404)["code"] == "not_found"


async def test_export_as_markdown_and_json(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer, tags=["vip"])
    cid = conversation["id"]
    turn = await say(writer, cid, "Hi, my name is Bob.")
    await writer.post(f"{API}/conversations/{cid}/goal-check")

    markdown = await writer.get(f"{API}/conversations/{cid}/export")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.headers["content-disposition"] == (
        f'attachment; filename="conversation-{cid}.md"'
    )
    text = markdown.text
    assert text.startswith("# Hi, my name is Bob.")
    assert CHEF_FIRST in text
    assert "Hi, my name is Bob." in text
    assert "- Tags: vip" in text
    assert '"recipes"' in text, "the structured reply is shown as JSON"

    exported = await writer.get(f"{API}/conversations/{cid}/export", params={"format": "json"})
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/json"
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="conversation-{cid}.json"'
    )
    document = json.loads(exported.text)
    assert document["conversation"]["id"] == cid
    assert [(m["role"], m["text"]) for m in document["messages"]] == [
        ("assistant", CHEF_FIRST),
        ("user", "Hi, my name is Bob."),
        ("assistant", turn["text"]),
    ]
    assert document["messages"][2]["data"] == turn["data"]
    assert len(document["goal_checks"]) == 1

    error = error_of(
        await writer.get(f"{API}/conversations/{cid}/export", params={"format": "pdf"}), 422
    )
    assert error["message"].startswith("format: ")
    assert (await writer.get(f"{API}/conversations/{'b' * 32}/export")).status_code == 404


async def test_a_slack_conversation_is_readable_with_its_place(api: Api) -> None:
    conversation, created = await api.engine.open_conversation(key=SLACK, agent_id="plain")
    assert created
    reader = await api.as_key("read")

    read = await reader.get(f"{API}/conversations/{conversation.id}")
    assert read.status_code == 200
    assert read.json()["key"] == {
        "platform": "slack",
        "workspace": "T1",
        "channel": "C1",
        "thread": "1.1",
    }
    assert read.json()["agent_id"] == "plain"
    assert await history(reader, conversation.id) == [("assistant", "Hi! How can I help?")]
    exported = await reader.get(f"{API}/conversations/{conversation.id}/export")
    assert "- Place: slack / T1 / C1 / 1.1" in exported.text
