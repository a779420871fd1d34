"""``/api/v1/memories``: list and search, add, read, forget one or a whole scope; key scopes
and limits (a key limited to places or agents finds nothing outside them); bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory.base import Memory, MemoryQuery, MemoryScope, NewMemory, Scope
from memory.sqlite.store import SqliteStore
from tests.adapters.http.helpers import API, client_with, error_of
from tests.adapters.http.test_key_limits import limited
from tests.support.api import Api, ApiFactory
from tests.support.clock import FakeClock

ADA_CHEF = MemoryScope(platform="slack", workspace="T1", person="U_ADA", agent_id="chef")
ADA_PLAIN = ADA_CHEF.model_copy(update={"agent_id": "plain"})
ADA_SHARED = ADA_CHEF.model_copy(update={"agent_id": ""})
ADA_T2 = ADA_CHEF.model_copy(update={"workspace": "T2"})
BOB_CHEF = ADA_CHEF.model_copy(update={"person": "U_BOB"})
ADA_GUILD = MemoryScope(platform="discord", workspace="555555", person="42", agent_id="chef")
MEMORIES = f"{API}/memories"


class Memories:
    """The app over a store whose clock moves one second per memory, so newest first is
    well defined."""

    def __init__(self, api: Api, clock: FakeClock) -> None:
        self.api = api
        self.clock = clock

    async def remember(self, scope: MemoryScope, text: str, **fields: Any) -> Memory:
        self.clock.advance(1)
        [kept] = await self.api.store.add_memories([NewMemory(scope=scope, text=text, **fields)])
        return kept

    async def client(self, scope: Scope = "admin", **limits: Any) -> httpx.AsyncClient:
        if limits:
            return await limited(self.api, scope, **limits)
        return await self.api.as_key(scope)

    async def ids(self, client: httpx.AsyncClient, **params: Any) -> list[str]:
        response = await client.get(MEMORIES, params=params)
        assert response.status_code == 200, response.text
        return [memory["id"] for memory in response.json()]

    async def exists(self, memory: Memory) -> bool:
        return await self.api.store.get_memory(memory_id=memory.id) is not None


@pytest.fixture
async def memories(api_factory: ApiFactory, tmp_path: Path) -> AsyncIterator[Memories]:
    clock = FakeClock()
    store = SqliteStore(path=tmp_path / "memories.sqlite3", clock=clock)
    await store.open()
    yield Memories(await api_factory(store=store), clock)
    await store.close()


async def test_add_a_memory_then_read_it(memories: Memories) -> None:
    writer = await memories.client("write")
    response = await writer.post(
        MEMORIES,
        json={
            "platform": "slack",
            "workspace": "T1",
            "person": "U_ADA",
            "agent": "chef",
            "text": "  Allergic to peanuts  ",
        },
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["scope"] == {
        "platform": "slack",
        "workspace": "T1",
        "person": "U_ADA",
        "agent_id": "chef",
    }
    assert made["text"] == "Allergic to peanuts"
    assert made["private"] is False
    assert made["superseded_by"] is None
    assert made["conversation_id"] is None
    assert response.headers["location"] == f"{MEMORIES}/{made['id']}"

    got = await writer.get(response.headers["location"])
    assert got.status_code == 200
    assert got.json() == made
    stored = await memories.api.store.get_memory(memory_id=made["id"])
    assert stored is not None
    assert stored.scope == ADA_CHEF

    shared = await writer.post(
        MEMORIES,
        json={
            "platform": "discord",
            "workspace": "dm",
            "person": "42",
            "text": "Hi",
            "private": True,
        },
    )
    assert shared.status_code == 201, shared.text
    assert shared.json()["scope"]["agent_id"] == "", "no agent: shared by the workspace's agents"
    assert shared.json()["private"] is True


async def test_list_filters_by_scope_and_text_newest_first(memories: Memories) -> None:
    peanuts = await memories.remember(ADA_CHEF, "Allergic to PEANUTS")
    paris = await memories.remember(ADA_CHEF, "Lives in Paris")
    berlin = await memories.remember(ADA_CHEF, "Moved to Berlin", supersedes=paris.id)
    plain = await memories.remember(ADA_PLAIN, "Learns algebra")
    shared = await memories.remember(ADA_SHARED, "Name is Ada")
    elsewhere = await memories.remember(ADA_T2, "Has a cat")
    bob = await memories.remember(BOB_CHEF, "Vegetarian")
    guild = await memories.remember(ADA_GUILD, "Plays chess")
    reader = await memories.client("read")

    everything = [guild, bob, elsewhere, shared, plain, berlin, peanuts]
    assert await memories.ids(reader) == [m.id for m in everything], "superseded hidden"
    with_history = await memories.ids(reader, include_superseded="true")
    assert with_history == [
        m.id for m in [guild, bob, elsewhere, shared, plain, berlin, paris, peanuts]
    ]
    assert await memories.ids(reader, platform="discord") == [guild.id]
    assert await memories.ids(reader, workspace="T2") == [elsewhere.id]
    assert await memories.ids(reader, person="U_BOB") == [bob.id]
    assert await memories.ids(reader, agent="plain") == [plain.id]
    assert await memories.ids(reader, agent="") == [shared.id], "agent= is the shared ones"
    assert await memories.ids(reader, text="peanut") == [peanuts.id], "ignoring case"
    assert await memories.ids(reader, text="paris") == []
    assert await memories.ids(reader, text="paris", include_superseded="true") == [paris.id]
    assert await memories.ids(
        reader, platform="slack", workspace="T1", person="U_ADA", agent="chef"
    ) == [berlin.id, peanuts.id]
    assert await memories.ids(reader, limit=2) == [guild.id, bob.id]
    assert await memories.ids(reader, text='{"$gt": ""}') == [], "search text is data"

    listed = (await reader.get(MEMORIES, params={"person": "U_BOB"})).json()
    assert listed == [bob.model_dump(mode="json")]
    history = (await reader.get(f"{MEMORIES}/{paris.id}")).json()
    assert history["superseded_by"] == berlin.id


async def test_delete_one_memory(memories: Memories) -> None:
    peanuts = await memories.remember(ADA_CHEF, "Allergic to peanuts")
    other = await memories.remember(ADA_CHEF, "Likes soup")
    admin = await memories.client("admin")
    assert (await admin.delete(f"{MEMORIES}/{peanuts.id}")).status_code == 204
    assert not await memories.exists(peanuts)
    assert await memories.exists(other)
    for missing in (peanuts.id, "0" * 32, "not-an-id"):
        error = error_of(await admin.delete(f"{MEMORIES}/{missing}"), 404)
        assert error["code"] == "not_found"
        assert error_of(await admin.get(f"{MEMORIES}/{missing}"), 404)


async def test_forget_a_person_whole_or_one_scope(memories: Memories) -> None:
    chef = await memories.remember(ADA_CHEF, "Allergic to peanuts")
    old = await memories.remember(ADA_CHEF, "Lives in Paris")
    await memories.remember(ADA_CHEF, "Moved to Berlin", supersedes=old.id)
    plain = await memories.remember(ADA_PLAIN, "Learns algebra")
    shared = await memories.remember(ADA_SHARED, "Name is Ada")
    elsewhere = await memories.remember(ADA_T2, "Has a cat")
    bob = await memories.remember(BOB_CHEF, "Vegetarian")
    guild = await memories.remember(ADA_GUILD, "Plays chess")
    admin = await memories.client("admin")

    async def forget(**params: str) -> int:
        response = await admin.delete(MEMORIES, params=params)
        assert response.status_code == 200, response.text
        deleted: int = response.json()["deleted"]
        return deleted

    scope = {"platform": "slack", "workspace": "T1", "person": "U_ADA"}
    assert await forget(**scope, agent="") == 1
    assert not await memories.exists(shared)
    assert await memories.exists(plain)
    assert await forget(**scope, agent="chef") == 3, "superseded ones too"
    assert not await memories.exists(chef)
    assert await forget(platform="slack", person="U_ADA") == 2, "every workspace and agent"
    assert not await memories.exists(plain)
    assert not await memories.exists(elsewhere)
    assert await memories.exists(bob)
    assert await memories.exists(guild)
    assert await forget(platform="slack", person="U_ADA") == 0


async def test_scopes_read_write_admin(memories: Memories) -> None:
    peanuts = await memories.remember(ADA_CHEF, "Allergic to peanuts")
    body = {"platform": "slack", "workspace": "T1", "person": "U_ADA", "text": "Likes figs"}
    nobody = client_with(memories.api)
    assert error_of(await nobody.get(MEMORIES), 401)
    reader = await memories.client("read")
    assert (await reader.get(f"{MEMORIES}/{peanuts.id}")).status_code == 200
    assert "needs 'write'" in error_of(await reader.post(MEMORIES, json=body), 403)["message"]
    writer = await memories.client("write")
    assert (await writer.post(MEMORIES, json=body)).status_code == 201
    for refused in (
        await writer.delete(f"{MEMORIES}/{peanuts.id}"),
        await writer.delete(MEMORIES, params={"platform": "slack", "person": "U_ADA"}),
    ):
        assert "needs 'admin'" in error_of(refused, 403)["message"]
    assert await memories.exists(peanuts)


async def test_a_key_limited_to_a_workspace_finds_nothing_elsewhere(memories: Memories) -> None:
    mine = await memories.remember(ADA_CHEF, "Allergic to peanuts")
    shared = await memories.remember(ADA_SHARED, "Name is Ada")
    theirs = await memories.remember(ADA_T2, "Secret of T2")
    guild = await memories.remember(ADA_GUILD, "Plays chess")
    t1 = await memories.client("admin", workspaces=["T1"])

    assert await memories.ids(t1) == [shared.id, mine.id]
    assert await memories.ids(t1, workspace="T2") == []
    assert await memories.ids(t1, platform="discord") == []
    assert await memories.ids(t1, text="secret") == []
    for other in (theirs, guild):
        for response in (
            await t1.get(f"{MEMORIES}/{other.id}"),
            await t1.delete(f"{MEMORIES}/{other.id}"),
        ):
            error = error_of(response, 404)
            assert error["message"] == f"no memory {other.id!r}", "the same as a missing one"
        assert await memories.exists(other)
    gone = await t1.delete(
        MEMORIES,
        params={"platform": "slack", "workspace": "T2", "person": "U_ADA", "agent": "chef"},
    )
    assert gone.json() == {"deleted": 0}
    assert await memories.exists(theirs)
    refused = await t1.post(
        MEMORIES, json={"platform": "slack", "workspace": "T2", "person": "U_ADA", "text": "x"}
    )
    assert "limited to other platforms or workspaces" in error_of(refused, 403)["message"]

    everywhere = await t1.delete(MEMORIES, params={"platform": "slack", "person": "U_ADA"})
    assert everywhere.json() == {"deleted": 2}, "only T1's"
    assert await memories.exists(theirs)
    assert await memories.exists(guild)
    assert not await memories.exists(mine)


async def test_a_key_limited_to_an_agent_sees_only_its_memories(memories: Memories) -> None:
    chef = await memories.remember(ADA_CHEF, "Allergic to peanuts")
    plain = await memories.remember(ADA_PLAIN, "Learns algebra")
    shared = await memories.remember(ADA_SHARED, "Name is Ada")
    only_chef = await memories.client("admin", agents=["chef"])

    assert await memories.ids(only_chef) == [chef.id], "shared memories are no one agent's"
    assert await memories.ids(only_chef, agent="plain") == []
    assert await memories.ids(only_chef, agent="") == []
    for other in (plain, shared):
        assert error_of(await only_chef.get(f"{MEMORIES}/{other.id}"), 404)
        assert error_of(await only_chef.delete(f"{MEMORIES}/{other.id}"), 404)
    forgotten = await only_chef.delete(MEMORIES, params={"platform": "slack", "person": "U_ADA"})
    assert forgotten.json() == {"deleted": 1}
    assert await memories.exists(plain)
    assert await memories.exists(shared)

    base = {"platform": "slack", "workspace": "T1", "person": "U_ADA", "text": "Likes figs"}
    assert error_of(await only_chef.post(MEMORIES, json=base), 403)
    error = error_of(await only_chef.post(MEMORIES, json={**base, "agent": "plain"}), 403)
    assert "may not use agent 'plain'" in error["message"]
    assert (await only_chef.post(MEMORIES, json={**base, "agent": "chef"})).status_code == 201


async def test_a_key_limited_to_several_places_lists_them_together(memories: Memories) -> None:
    t1 = await memories.remember(ADA_CHEF, "In T1")
    t2 = await memories.remember(ADA_T2, "In T2")
    await memories.remember(ADA_GUILD, "In the guild")
    t1_plain = await memories.remember(ADA_PLAIN, "In T1 too")
    both = await memories.client("read", workspaces=["T1", "T2"], agents=["chef", "plain"])
    assert await memories.ids(both) == [t1_plain.id, t2.id, t1.id]
    assert await memories.ids(both, limit=2) == [t1_plain.id, t2.id]
    assert await memories.ids(both, agent="chef") == [t2.id, t1.id]

    wide = await memories.client(
        "read", workspaces=[f"T{n}" for n in range(51)], agents=["chef", "plain"]
    )
    error = error_of(await wide.get(MEMORIES), 422)
    assert "name a platform, workspace or agent" in error["message"]
    assert await memories.ids(wide, workspace="T1") == [t1_plain.id, t1.id]


async def test_bad_input_is_a_short_422(memories: Memories) -> None:
    admin = await memories.client("admin")
    good = {"platform": "slack", "workspace": "T1", "person": "U_ADA", "text": "Likes figs"}
    bodies: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in good.items() if k != "person"}, "person: Field required"),
        ({**good, "person": ""}, "person:"),
        ({**good, "text": "   "}, "text:"),
        ({**good, "text": "x" * 501}, "text:"),
        ({**good, "platform": "irc"}, "platform:"),
        ({**good, "agent": "Not An Id"}, "agent:"),
        ({**good, "agent": "ghost"}, "agent: no agent 'ghost'"),
        ({**good, "person": "U\x00"}, "person:"),
        ({**good, "workspace": "T" * 129}, "workspace:"),
        ({**good, "supersedes": "x"}, "supersedes:"),
    ]
    for body, message in bodies:
        error = error_of(await admin.post(MEMORIES, json=body), 422)
        assert error["code"] == "invalid"
        assert message in error["message"], (body, error)
    for params in (
        {"limit": "0"},
        {"limit": "101"},
        {"agent": "Not An Id"},
        {"platform": "irc"},
        {"text": "x" * 201},
        {"person": "p" * 129},
    ):
        assert error_of(await admin.get(MEMORIES, params=params), 422), params
    for params in ({"person": "U_ADA"}, {"platform": "slack"}, {"platform": "slack", "person": ""}):
        assert error_of(await admin.delete(MEMORIES, params=params), 422), params
    assert await memories.api.store.list_memories(MemoryQuery()) == [], "nothing was kept"


async def test_the_document_describes_the_memory_routes(memories: Memories) -> None:
    spec = (await client_with(memories.api).get(f"{API}/openapi.json")).json()
    paths = spec["paths"]
    listing = paths[MEMORIES]
    one = paths[f"{MEMORIES}/{{memory_id}}"]
    assert set(listing) == {"get", "post", "delete"}
    assert set(one) == {"get", "delete"}
    assert listing["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewPersonMemory"
    }
    assert "201" in listing["post"]["responses"]
    assert "Memory" in str(listing["get"]["responses"]["200"])
    assert "ForgottenMemories" in str(listing["delete"]["responses"]["200"])
    assert "Memory" in str(one["get"]["responses"]["200"])
    assert "204" in one["delete"]["responses"]
    for operation in (*listing.values(), *one.values()):
        for status in ("401", "403", "404", "422"):
            assert "ErrorBody" in str(operation["responses"][status])
        assert operation["security"]
    parameters = {p["name"] for p in listing["get"]["parameters"]}
    assert parameters == {
        "platform",
        "workspace",
        "person",
        "agent",
        "text",
        "include_superseded",
        "limit",
    }
