"""Keys limited to platforms and workspaces (``--platforms``, ``--workspaces``): they list,
read and change only conversations in their places, on every route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from memory.base import Conversation, Platform, PlatformKey, Scope
from tests.adapters.http.helpers import API, client_with, create_conversation, error_of
from tests.support.agents import agents_file, chef, plain
from tests.support.api import Api, ApiFactory

T1_A = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1700000000.000100")
T1_B = PlatformKey(platform="slack", workspace="T1", channel="D0IM", thread="")
T2 = PlatformKey(platform="slack", workspace="T2", channel="C1", thread="1700000000.000100")
GUILD = PlatformKey(platform="discord", workspace="555555", channel="42")
DM = PlatformKey(platform="discord", workspace="dm", channel="77")


async def limited(
    api: Api,
    scope: Scope = "admin",
    *,
    platforms: Sequence[Platform] = (),
    workspaces: Sequence[str] = (),
    agents: Sequence[str] = (),
) -> httpx.AsyncClient:
    made = len(await api.services.keys.list())
    key, _ = await api.services.keys.create(
        name=f"limited-{made}",
        scope=scope,
        agents=agents,
        platforms=platforms,
        workspaces=workspaces,
    )
    return client_with(api, key)


async def at(api: Api, key: PlatformKey, agent_id: str = "chef") -> Conversation:
    conversation, _ = await api.store.get_or_create_conversation(
        key=key, agent_id=agent_id, title=f"At {key.workspace or key.platform}"
    )
    return conversation


async def listed(client: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    response = await client.get(f"{API}/conversations", params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    return [c["id"] for c in page["items"]], page["total"]


def every_route(client: httpx.AsyncClient, conversation_id: str) -> list[tuple[str, str, Any]]:
    url = f"{API}/conversations/{conversation_id}"
    return [
        ("GET", url, None),
        ("PATCH", url, {"tags": ["x"]}),
        ("DELETE", url, None),
        ("GET", f"{url}/messages", None),
        ("POST", f"{url}/messages", {"text": "hi"}),
        ("POST", f"{url}/goal-check", None),
        ("GET", f"{url}/goal-checks", None),
        ("GET", f"{url}/export", None),
        ("GET", f"{url}/export?format=json", None),
        ("POST", f"/chat/{conversation_id}", "hi"),
    ]


async def call(client: httpx.AsyncClient, method: str, url: str, body: Any) -> httpx.Response:
    if isinstance(body, str):
        return await client.request(method, url, content=body)
    return await client.request(method, url, json=body)


async def assert_refused_everywhere(
    api: Api, client: httpx.AsyncClient, conversation: Conversation
) -> None:
    for method, url, body in every_route(client, conversation.id):
        error = error_of(await call(client, method, url, body), 403)
        assert error["code"] == "forbidden", (method, url)
        assert "limited to other platforms or workspaces" in error["message"], (method, url)
        for secret in (conversation.key.workspace, conversation.key.channel, "chef"):
            assert secret not in error["message"], (method, url)
    unchanged = await api.store.get_conversation(conversation_id=conversation.id)
    assert unchanged == conversation, "nothing changed, nothing deleted"
    assert await api.store.list_messages(conversation_id=conversation.id) == []


async def test_a_key_limited_to_a_workspace_lists_only_its_conversations(api: Api) -> None:
    a = await at(api, T1_A)
    b = await at(api, T1_B, agent_id="plain")
    await at(api, T2)
    await at(api, GUILD)
    await at(api, DM)
    await create_conversation(await api.as_key("write"))
    t1 = await limited(api, "read", workspaces=["T1"])

    ids, total = await listed(t1)
    assert sorted(ids) == sorted([a.id, b.id])
    assert total == 2
    first, total = await listed(t1, limit=1, order="created_asc")
    assert (first, total) == ([a.id], 2)
    second, total = await listed(t1, limit=1, offset=1, order="created_asc")
    assert (second, total) == ([b.id], 2)
    assert await listed(t1, q="At T") == ([b.id, a.id], 2)
    assert await listed(t1, agent_id="plain") == ([b.id], 1)
    assert await listed(t1, platform="discord") == ([], 0)

    _, total = await listed(await api.as_key("read"))
    assert total == 6, "an unlimited key still sees every workspace"


async def test_a_key_limited_to_a_workspace_is_refused_elsewhere_on_every_route(
    api: Api,
) -> None:
    mine = await at(api, T1_A)
    for place in (T2, GUILD, DM):
        theirs = await at(api, place)
        client = await limited(api, "admin", workspaces=["T1"])
        await assert_refused_everywhere(api, client, theirs)
    client = await limited(api, "admin", workspaces=["T1"])
    got = await client.get(f"{API}/conversations/{mine.id}")
    assert got.status_code == 200
    assert got.json()["key"]["workspace"] == "T1"
    assert (await client.get(f"{API}/conversations/{mine.id}/export")).status_code == 200
    assert (await client.get(f"{API}/conversations/{mine.id}/goal-checks")).json() == []
    changed = await client.patch(f"{API}/conversations/{mine.id}", json={"tags": ["t1"]})
    assert changed.json()["tags"] == ["t1"]
    assert (await client.delete(f"{API}/conversations/{mine.id}")).status_code == 204


async def test_a_key_limited_to_a_platform_sees_only_that_platform(api: Api) -> None:
    guild = await at(api, GUILD)
    dm = await at(api, DM)
    slack = await at(api, T1_A)
    made = await create_conversation(await api.as_key("write"))
    discord = await limited(api, "admin", platforms=["discord"])

    ids, total = await listed(discord)
    assert (sorted(ids), total) == (sorted([guild.id, dm.id]), 2)
    assert await listed(discord, platform="discord", limit=1, order="created_asc") == (
        [guild.id],
        2,
    )
    error = error_of(await discord.get(f"{API}/conversations", params={"platform": "api"}), 403)
    assert "platform 'api'" in error["message"]
    await assert_refused_everywhere(api, discord, slack)
    api_made = await api.store.get_conversation(conversation_id=made["id"])
    assert api_made is not None
    for method, url, body in every_route(discord, made["id"]):
        assert (await call(discord, method, url, body)).status_code == 403, (method, url)
    assert (await discord.get(f"{API}/conversations/{dm.id}")).status_code == 200


async def test_new_api_conversations_need_a_key_that_may_see_them(api: Api) -> None:
    """API conversations are on platform api in no workspace: a key limited elsewhere could
    not read what it made, so it may not make one."""
    elsewhere: list[dict[str, Any]] = [{"workspaces": ["T1"]}, {"platforms": ["slack", "discord"]}]
    for limits in elsewhere:
        client = await limited(api, "write", **limits)
        error = error_of(await client.post(f"{API}/conversations", json={}), 403)
        assert "API conversations" in error["message"]
        assert error_of(await client.post("/chat", content="hi"), 403)
    assert (await listed(await api.as_key("read"))) == ([], 0), "nothing was made"

    api_only = await limited(api, "write", platforms=["api"])
    made = await create_conversation(api_only)
    assert (await api_only.get(f"{API}/conversations/{made['id']}")).status_code == 200
    assert await listed(api_only) == ([made["id"]], 1)


async def test_a_key_limited_to_several_agents_lists_them_all(api: Api) -> None:
    chef_t1 = await at(api, T1_A)
    plain_t1 = await at(api, T1_B, agent_id="plain")
    await at(api, T2, agent_id="plain")
    both = await limited(api, "read", agents=["chef", "plain"], workspaces=["T1"])
    ids, total = await listed(both)
    assert (sorted(ids), total) == (sorted([chef_t1.id, plain_t1.id]), 2)
    assert await listed(both, agent_id="plain") == ([plain_t1.id], 1)
    only_plain = await limited(api, "read", agents=["plain"])
    ids, total = await listed(only_plain)
    assert total == 2
    assert chef_t1.id not in ids
    error = error_of(await only_plain.get(f"{API}/conversations/{chef_t1.id}"), 403)
    assert "may not use agent 'chef'" in error["message"]


async def test_agents_show_a_limited_key_only_bindings_in_its_places(
    api_factory: ApiFactory,
) -> None:
    bound = chef(bindings={"slack": ["T1:C0AAA", "T2:C0BBB", "C0CCC"], "discord": ["123456789"]})
    api = await api_factory(agents=agents_file(bound, plain()))
    everywhere = await api.as_key("read")
    t1 = await limited(api, "read", workspaces=["T1"])
    slack = await limited(api, "read", platforms=["slack"])

    full = (await everywhere.get(f"{API}/agents/chef")).json()["bindings"]
    assert full == {"slack": ["T1:C0AAA", "T2:C0BBB", "C0CCC"], "discord": ["123456789"]}
    assert (await t1.get(f"{API}/agents/chef")).json()["bindings"] == {
        "slack": ["T1:C0AAA"],
        "discord": [],
    }
    listed_agents = (await t1.get(f"{API}/agents")).json()
    assert listed_agents[0]["bindings"]["slack"] == ["T1:C0AAA"]
    assert "T2" not in str(listed_agents)
    assert (await slack.get(f"{API}/agents/chef")).json()["bindings"] == {
        "slack": ["T1:C0AAA", "T2:C0BBB", "C0CCC"],
        "discord": [],
    }


async def test_a_place_limited_admin_key_cannot_change_shared_agents(api: Api) -> None:
    admin = await limited(api, "admin", workspaces=["T1"])
    agent = {"id": "sommelier", "name": "Sommelier", "context": "Wine.", "first_message": "Hi"}
    for response in [
        await admin.post(f"{API}/agents", json=agent),
        await admin.put(f"{API}/agents/sommelier", json=agent),
        await admin.delete(f"{API}/agents/sommelier"),
    ]:
        error = error_of(response, 403)
        assert "agents are shared by all" in error["message"], response.request.url
    unlimited = await api.as_key("admin")
    assert (await unlimited.post(f"{API}/agents", json=agent)).status_code == 201
    assert error_of(await admin.delete(f"{API}/agents/sommelier"), 403)
    assert (await unlimited.get(f"{API}/agents/sommelier")).status_code == 200
