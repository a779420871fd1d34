"""The Memory page: what the agents remember about people, searched, filtered and deleted
(``admin``, with the form's CSRF token), within the key's limits, with every text escaped."""

from __future__ import annotations

import re
from typing import Any

from memory.base import Memory, MemoryScope, NewMemory
from tests.adapters.http.console.test_conversations import rows
from tests.adapters.http.console.test_key_limits import signed_in
from tests.support.console import SLACK_TEAM, Console

ADA = MemoryScope(platform="slack", workspace=SLACK_TEAM, person="U0ADA", agent_id="chef")
ADA_SHARED = ADA.model_copy(update={"agent_id": ""})
BOB = ADA.model_copy(update={"person": "U0BOB"})
GUILD = MemoryScope(platform="discord", workspace="555555", person="42", agent_id="plain")
PAGE = "/console/memories"


async def remember(console: Console, scope: MemoryScope, text: str, **fields: Any) -> Memory:
    [kept] = await console.api.store.add_memories([NewMemory(scope=scope, text=text, **fields)])
    return kept


def texts(html: str) -> list[str]:
    """The memory column of each row, tags and badges left out."""
    return [
        re.sub(r"<.*?>", "", row.split("</td>")[0].split("<span", 1)[0]).strip()
        for row in rows(html)
    ]


async def test_the_page_lists_memories_with_where_and_when(console: Console) -> None:
    turn = await console.slack_turn("Hi, I'm Ada and I'm allergic to peanuts")
    conversation_id = turn.conversation.id
    await remember(console, ADA, "Allergic to peanuts", conversation_id=conversation_id)
    await remember(console, ADA_SHARED, "Name is Ada", private=True)
    await remember(console, GUILD, "Plays chess")
    browser = await console.signed_in("read")

    page = await browser.get(PAGE)
    assert page.status_code == 200
    assert '<a href="/console/memories" aria-current="page">Memory</a>' in page.text
    assert "3 memories." in page.text
    found = rows(page.text)
    assert len(found) == 3
    peanuts = next(row for row in found if "Allergic to peanuts" in row)
    assert "U0ADA" in peanuts
    assert f"Slack · {SLACK_TEAM}" in peanuts
    assert ">chef</td>" in peanuts
    assert '<time datetime="' in peanuts
    assert f'<a href="/console/conversations/{conversation_id}">' in peanuts
    assert "private" not in peanuts
    shared = next(row for row in found if "Name is Ada" in row)
    assert ">shared</td>" in shared
    assert ">private</span>" in shared
    assert "/console/conversations/" not in shared, "no conversation to link to"
    assert any("Discord · 555555" in row and ">plain</td>" in row for row in found)
    assert "Delete" not in page.text, "a read key deletes nothing"
    other = await browser.get("/console/conversations")
    assert '<a href="/console/memories">Memory</a>' in other.text, "in the navigation"


async def test_search_filters_and_superseded_history(console: Console) -> None:
    paris = await remember(console, ADA, "Lives in Paris")
    await remember(console, ADA, "Moved to Berlin", supersedes=paris.id)
    await remember(console, ADA_SHARED, "Name is Ada")
    await remember(console, BOB, "Vegetarian")
    await remember(console, GUILD, "Plays chess")
    browser = await console.signed_in("read")

    async def shown(query: str) -> list[str]:
        page = await browser.get(f"{PAGE}?{query}")
        assert page.status_code == 200, page.text
        return sorted(texts(page.text))

    assert await shown("") == ["Moved to Berlin", "Name is Ada", "Plays chess", "Vegetarian"]
    assert await shown("q=BERLIN") == ["Moved to Berlin"]
    assert await shown("q=paris") == []
    assert await shown("q=paris&superseded=1") == ["Lives in Paris"]
    assert await shown("person=U0BOB") == ["Vegetarian"]
    assert await shown("platform=discord") == ["Plays chess"]
    assert await shown("workspace=555555") == ["Plays chess"]
    assert await shown("agent=_shared") == ["Name is Ada"]
    assert await shown("agent=chef&person=U0ADA&superseded=1") == [
        "Lives in Paris",
        "Moved to Berlin",
    ]
    assert await shown(f"platform=slack&workspace={SLACK_TEAM}&person=U0ADA&agent=chef") == [
        "Moved to Berlin"
    ]
    history = await browser.get(f"{PAGE}?superseded=1")
    assert ">superseded</span>" in next(row for row in rows(history.text) if "Paris" in row)
    assert 'name="superseded" value="1" checked' in history.text
    nothing = await browser.get(f"{PAGE}?q=nothing-like-this")
    assert "No memories match." in nothing.text
    selected = await browser.get(f"{PAGE}?agent=_shared&platform=discord")
    assert '<option value="_shared" selected>' in selected.text
    assert '<option value="discord" selected>' in selected.text
    for bad in ("platform=irc", "agent=Not%20An%20Id", "q=" + "x" * 201, "person=" + "p" * 129):
        refused = await browser.get(f"{PAGE}?{bad}")
        assert refused.status_code == 422, bad
        assert "<h1" in refused.text, "an error page, not JSON"


async def test_delete_a_memory_with_the_form_token(console: Console) -> None:
    peanuts = await remember(console, ADA, "Allergic to peanuts")
    soup = await remember(console, ADA, "Likes soup")
    admin = await console.signed_in("admin")
    page = await admin.get(f"{PAGE}?person=U0ADA&q=peanuts")
    assert f'action="/console/memories/{peanuts.id}/delete"' in page.text
    assert 'name="back" value="q=peanuts&amp;person=U0ADA"' in page.text

    path = f"{PAGE}/{peanuts.id}/delete"
    no_token = await admin.post_form(path, csrf="", back="q=peanuts")
    assert no_token.status_code == 403
    assert "This form has expired" in no_token.text
    other_session = await console.signed_in("admin")
    assert (await admin.post_form(path, csrf=other_session.csrf)).status_code == 403
    assert await console.api.store.get_memory(memory_id=peanuts.id) is not None

    deleted = await admin.post_form(path, back="person=U0ADA&q=peanuts&next=//evil.example")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == (
        "/console/memories?person=U0ADA&q=peanuts&notice=memory-forgotten"
    )
    assert await console.api.store.get_memory(memory_id=peanuts.id) is None
    assert await console.api.store.get_memory(memory_id=soup.id) is not None
    after = await admin.get(deleted.headers["location"])
    assert "The memory is deleted." in after.text
    assert "No memories match." in after.text
    again = await admin.post_form(path)
    assert again.status_code == 404
    assert '<h1 id="error-title">Not found</h1>' in again.text


async def test_only_admin_keys_delete(console: Console) -> None:
    soup = await remember(console, ADA, "Likes soup")
    writer = await console.signed_in("write")
    assert "Delete" not in (await writer.get(PAGE)).text
    refused = await writer.post_form(f"{PAGE}/{soup.id}/delete")
    assert refused.status_code == 403
    assert "needs &#39;admin&#39;" in refused.text
    assert await console.api.store.get_memory(memory_id=soup.id) is not None


async def test_memory_text_is_escaped(console: Console) -> None:
    attack = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
    await remember(console, ADA.model_copy(update={"person": "<b>U0EVIL</b>"}), attack)
    browser = await console.signed_in("admin")
    page = await browser.get(PAGE)
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    assert "<b>U0EVIL" not in page.text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;U0EVIL&lt;/b&gt;" in page.text
    searched = await browser.get(f"{PAGE}?q=%3Cscript%3E")
    assert 'value="&lt;script&gt;"' in searched.text
    assert len(rows(searched.text)) == 1


async def test_a_limited_key_sees_and_deletes_only_its_memories(console: Console) -> None:
    mine = await remember(console, ADA, "Allergic to peanuts")
    shared = await remember(console, ADA_SHARED, "Name is Ada")
    theirs = await remember(console, GUILD, "Secret of the guild")
    team = await signed_in(console, "admin", workspaces=[SLACK_TEAM])
    page = await team.get(PAGE)
    assert sorted(texts(page.text)) == ["Allergic to peanuts", "Name is Ada"]
    assert "Secret of the guild" not in page.text
    assert '<option value="discord"' in page.text, "a workspace limit spans platforms"
    assert rows((await team.get(f"{PAGE}?platform=discord")).text) == []
    refused = await team.post_form(f"{PAGE}/{theirs.id}/delete")
    assert refused.status_code == 404
    assert await console.api.store.get_memory(memory_id=theirs.id) is not None

    chef = await signed_in(console, "admin", agents=["chef"])
    page = await chef.get(PAGE)
    assert texts(page.text) == ["Allergic to peanuts"]
    assert '<option value="_shared"' not in page.text
    assert (await chef.post_form(f"{PAGE}/{shared.id}/delete")).status_code == 404
    assert await console.api.store.get_memory(memory_id=shared.id) is not None
    assert (await chef.post_form(f"{PAGE}/{mine.id}/delete")).status_code == 303
    assert await console.api.store.get_memory(memory_id=mine.id) is None
