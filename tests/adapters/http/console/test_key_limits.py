"""The console for keys limited to platforms and workspaces: the table, a conversation, its
actions and the agents page show only what lives in the key's places."""

from __future__ import annotations

import re
from collections.abc import Sequence

from memory.base import NewGoalCheck, Platform, PlatformKey, Scope
from tests.adapters.http.console.test_conversations import open_at, rows
from tests.support.agents import agents_file, chef, plain
from tests.support.api import ApiFactory
from tests.support.console import Browser, Console

T1 = PlatformKey(platform="slack", workspace="T1", channel="C0AAA", thread="1700000000.000100")
T2 = PlatformKey(platform="slack", workspace="T2", channel="C0BBB", thread="1700000000.000200")
GUILD = PlatformKey(platform="discord", workspace="555555", channel="42")


def without_tokens(html: str) -> str:
    """The page without its attribute values: a random form token may hold any letters."""
    return re.sub(r'value="[^"]*"', "", html)


def names(html: str, word: str) -> bool:
    """Whether the page shows ``word`` on its own: not inside a form token, nor a time such
    as 2026-12-07T20:09 for ``T2``."""
    return re.search(rf"\b{re.escape(word)}\b", without_tokens(html)) is not None


async def signed_in(
    console: Console,
    scope: Scope = "read",
    *,
    platforms: Sequence[Platform] = (),
    workspaces: Sequence[str] = (),
    agents: Sequence[str] = (),
) -> Browser:
    keys = console.api.services.keys
    key, _ = await keys.create(
        name=f"limited-{len(await keys.list())}",
        scope=scope,
        agents=agents,
        platforms=platforms,
        workspaces=workspaces,
    )
    browser = console.browser()
    assert (await browser.sign_in(key)).status_code == 303
    return browser


async def test_the_table_lists_only_the_key_workspace(console: Console) -> None:
    await open_at(console, T1, title="Paella in T1")
    await open_at(console, T1.model_copy(update={"thread": "1700000000.000300"}), title="Soup T1")
    await open_at(console, T2, title="Secret of T2")
    await open_at(console, GUILD, title="Guild talk")
    await open_at(console, PlatformKey(platform="api", channel="x"), title="API talk")
    browser = await signed_in(console, workspaces=["T1"])

    page = await browser.get("/console/conversations")
    assert page.status_code == 200
    assert len(rows(page.text)) == 2
    assert "Showing 1\N{EN DASH}2 of 2" in page.text
    assert "Paella in T1" in page.text
    assert "Soup T1" in page.text
    for other in ("Secret of T2", "T2", "Guild talk", "555555", "API talk"):
        assert not names(page.text, other)
    searched = await browser.get("/console/conversations?q=T2")
    assert rows(searched.text) == []
    assert "No conversations match." in searched.text
    assert rows((await browser.get("/console/conversations?platform=discord")).text) == []


async def test_the_table_offers_only_the_key_platforms(console: Console) -> None:
    await open_at(console, T1, title="Slack talk")
    await open_at(console, GUILD, title="Guild talk")
    browser = await signed_in(console, platforms=["discord"])
    page = await browser.get("/console/conversations")
    assert "Guild talk" in page.text
    assert "Slack talk" not in page.text
    assert '<option value="discord"' in page.text
    assert '<option value="slack"' not in page.text
    refused = await browser.get("/console/conversations?platform=slack")
    assert refused.status_code == 403
    assert "may not see platform" in refused.text


async def test_a_key_with_several_agents_sees_all_of_them(console: Console) -> None:
    await open_at(console, T1, title="Chef talk")
    await open_at(console, PlatformKey(platform="api", channel="p"), agent="plain", title="Plain")
    browser = await signed_in(console, agents=["chef", "plain"])
    page = await browser.get("/console/conversations")
    assert len(rows(page.text)) == 2
    assert "All agents" in page.text
    only_plain = await browser.get("/console/conversations?agent=plain")
    assert [row for row in rows(only_plain.text) if "Plain" in row]
    assert len(rows(only_plain.text)) == 1


async def test_a_conversation_elsewhere_is_refused_with_its_actions(console: Console) -> None:
    mine = await open_at(console, T1, title="Mine")
    theirs = await open_at(console, T2, title="Theirs", tags=("t2-only",))
    browser = await signed_in(console, "write", workspaces=["T1"])

    assert (await browser.get(f"/console/conversations/{mine}")).status_code == 200
    for path in ("", "/export", "/export?format=json", "/chat", "/messages"):
        refused = await browser.get(f"/console/conversations/{theirs}{path}")
        assert refused.status_code == 403, path
        assert "Theirs" not in refused.text
        assert not names(refused.text, "T2")
    edited = await browser.post_form(f"/console/conversations/{theirs}/edit", tags="mine-now")
    assert edited.status_code == 403
    checked = await browser.post_form(f"/console/conversations/{theirs}/goal-check")
    assert checked.status_code == 403
    said = await browser.post_form(f"/console/conversations/{theirs}/messages", text="hi")
    assert said.status_code == 403
    stored = await console.api.store.get_conversation(conversation_id=theirs)
    assert stored is not None
    assert stored.tags == ("t2-only",)
    assert stored.message_count == 1, "only the agent's first message"


async def test_the_agents_page_shows_only_the_key_places(api_factory: ApiFactory) -> None:
    bound = chef(bindings={"slack": ["T1:C0FILE1", "T2:C0FILE2", "C0BARE"]})
    api = await api_factory(agents=agents_file(bound, plain(bindings={"discord": ["123456"]})))
    console = Console(api)
    try:
        store = api.store
        await store.bind_channel(
            platform="slack", workspace="T1", channel="C0USE1", agent_id="chef"
        )
        await store.bind_channel(
            platform="slack", workspace="T2", channel="C0USE2", agent_id="chef"
        )
        for key, count in ((T1, 1), (T2, 3)):
            conversation, _ = await api.engine.open_conversation(key=key, agent_id="chef")
            for _ in range(count):
                await store.add_goal_check(
                    NewGoalCheck(
                        conversation_id=conversation.id,
                        agent_id="chef",
                        reached=True,
                        summary="s",
                        covered_seq=1,
                    )
                )

        everything = (await (await signed_in(console)).get("/console/agents")).text
        assert "4 goal checks in 30 days" in everything
        assert "C0USE2" in everything
        assert "C0FILE2" in everything

        html = (await (await signed_in(console, workspaces=["T1"])).get("/console/agents")).text
        chef_card = html.split('id="agent-chef"', 1)[1].split("</article>", 1)[0]
        assert "1 goal check in 30 days" in chef_card
        assert "Slack T1:C0USE1 (/agent use)" in chef_card
        assert "Slack T1:C0FILE1 (agents file)" in chef_card
        for other in ("C0USE2", "C0FILE2", "C0BARE", "T2"):
            assert not names(html, other)
        plain_card = html.split('id="agent-plain"', 1)[1].split("</article>", 1)[0]
        assert "123456" not in plain_card, "a Discord channel id names no guild"
    finally:
        await console.close()


async def test_a_key_limited_to_workspaces_is_not_offered_chats(console: Console) -> None:
    """Chats are API conversations, outside a workspace-limited key's places."""
    limited = await signed_in(console, "write", workspaces=["T1"])
    page = await limited.get("/console/chats")
    assert page.status_code == 200
    assert 'action="/console/chats"' not in page.text
    assert "limited to other platforms or workspaces" in page.text
    agents = await limited.get("/console/agents")
    assert "Chat with" not in agents.text

    free = await signed_in(console, "write")
    assert 'action="/console/chats"' in (await free.get("/console/chats")).text
    assert "Chat with" in (await free.get("/console/agents")).text
