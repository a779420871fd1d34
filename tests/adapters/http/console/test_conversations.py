"""The conversations table: every platform, filters, paging, permissions, escaping."""

from __future__ import annotations

import re

from memory.base import PlatformKey
from tests.support.console import SLACK_CHANNEL, Console


async def open_at(console: Console, key: PlatformKey, agent: str = "chef", **fields: object) -> str:
    conversation, _ = await console.api.engine.open_conversation(key=key, agent_id=agent)
    if fields:
        await console.api.store.update_conversation(conversation_id=conversation.id, **fields)
    return conversation.id


def rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


async def test_the_table_lists_every_platform(console: Console) -> None:
    await console.slack_turn("Hi, I'm Ada. What can I cook?")
    await open_at(console, PlatformKey(platform="discord", workspace="G1", channel="555555"))
    await open_at(console, PlatformKey(platform="console", channel="demo"), agent="plain")
    api_id = await open_at(
        console, PlatformKey(platform="api", channel="x1"), tags=("vip", "trial"), title="Dinner"
    )
    browser = await console.signed_in("read")
    page = await browser.get("/console/conversations")
    assert page.status_code == 200
    found = rows(page.text)
    assert len(found) == 4
    assert "Showing 1\N{EN DASH}4 of 4" in page.text
    slack = next(row for row in found if "Slack" in row)
    assert f"#{SLACK_CHANNEL}" in slack
    assert "thread 1700000000.000100" in slack
    assert "Hi, I&#39;m Ada. What can I cook?" in slack, "titled by its first message"
    assert '"number">2</td>' in slack, "Ada's message and the reply"
    assert "not checked" in slack
    assert any("Discord" in row and "channel 555555" in row for row in found)
    assert any("Terminal" in row and "plain" in row for row in found)
    api_row = next(row for row in found if api_id in row)
    assert "Dinner" in api_row
    assert ">vip</a>" in api_row
    assert ">trial</a>" in api_row
    assert '<time datetime="' in api_row


async def test_filters_by_agent_platform_tag_and_text(console: Console) -> None:
    await console.slack_turn("A question about paella")
    await open_at(console, PlatformKey(platform="api", channel="a"), tags=("vip",), title="Soup")
    await open_at(console, PlatformKey(platform="api", channel="b"), agent="plain", title="Maths")
    browser = await console.signed_in("read")

    async def titles(query: str) -> list[str]:
        page = await browser.get(f"/console/conversations?{query}")
        assert page.status_code == 200, page.text
        return [re.sub(r"<.*?>", "", row.split("</td>")[0]).strip() for row in rows(page.text)]

    assert await titles("agent=plain") == ["Maths"]
    assert sorted(await titles("agent=chef")) == ["A question about paella", "Soup"]
    assert await titles("platform=slack") == ["A question about paella"]
    assert await titles("tag=vip") == ["Soup"]
    assert await titles("q=PAELLA") == ["A question about paella"]
    assert await titles("agent=chef&platform=api&tag=vip&q=sou") == ["Soup"]
    assert await titles("q=nothing-like-this") == []
    page = await browser.get("/console/conversations?agent=plain&platform=api")
    assert '<option value="plain" selected>' in page.text
    assert '<option value="api" selected>' in page.text
    for bad in ("platform=irc", "agent=Not%20An%20Id", "page=0", "q=" + "x" * 201):
        refused = await browser.get(f"/console/conversations?{bad}")
        assert refused.status_code == 422, bad
        assert "<h1" in refused.text, "an error page, not JSON"


async def test_pages_of_fifty(console: Console) -> None:
    for n in range(120):
        await console.api.store.get_or_create_conversation(
            key=PlatformKey(platform="api", channel=f"c{n:03d}"), agent_id="chef", title=f"T{n:03d}"
        )
    browser = await console.signed_in("read")
    first = await browser.get("/console/conversations?agent=chef")
    assert len(rows(first.text)) == 50
    assert "Showing 1\N{EN DASH}50 of 120" in first.text
    assert "Page 1 of 3" in first.text
    assert 'href="/console/conversations?agent=chef&amp;page=2" rel="next"' in first.text
    assert 'rel="prev"' not in first.text
    last = await browser.get("/console/conversations?agent=chef&page=3")
    assert len(rows(last.text)) == 20
    assert "Showing 101\N{EN DASH}120 of 120" in last.text
    assert 'rel="next"' not in last.text
    assert "T000" in last.text, "oldest activity last"
    beyond = await browser.get("/console/conversations?page=9")
    assert rows(beyond.text) == []


async def test_a_key_limited_to_an_agent_sees_only_its_conversations(console: Console) -> None:
    await open_at(console, PlatformKey(platform="api", channel="a"), title="Chef talk")
    await open_at(console, PlatformKey(platform="api", channel="b"), agent="plain", title="Plain")
    browser = await console.signed_in("read", agents=["plain"])
    page = await browser.get("/console/conversations")
    assert [row for row in rows(page.text) if "Plain" in row]
    assert "Chef talk" not in page.text
    assert "All agents" not in page.text
    assert '<option value="chef"' not in page.text
    refused = await browser.get("/console/conversations?agent=chef")
    assert refused.status_code == 403
    assert "may not use agent" in refused.text


async def test_titles_and_tags_are_escaped(console: Console) -> None:
    await open_at(
        console,
        PlatformKey(platform="api", channel="x"),
        title="<script>alert('title')</script>",
        tags=("<b>tag</b>",),
    )
    browser = await console.signed_in("read")
    page = await browser.get("/console/conversations")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page.text
    assert "<b>tag</b>" not in page.text
    assert "&lt;b&gt;tag&lt;/b&gt;" in page.text
    assert 'href="/console/conversations?tag=%3Cb%3Etag%3C/b%3E"' in page.text
