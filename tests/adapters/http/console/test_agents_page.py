"""The agents page: each agent's definition, shape, goal, schedule, channels and chart."""

from __future__ import annotations

import re
from datetime import timedelta

from memory.base import NewGoalCheck, PlatformKey, utc_now
from tests.support.agents import agents_file, chef, plain
from tests.support.api import ApiFactory
from tests.support.console import Console


async def test_agents_with_shape_goal_schedule_and_channels(console: Console) -> None:
    await console.api.store.bind_channel(
        platform="slack", workspace="T01", channel="C0BOUND", agent_id="chef"
    )
    browser = await console.signed_in("write")
    page = await browser.get("/console/agents")
    assert page.status_code == 200
    html = page.text
    assert '<h2 id="agent-chef">Chef <code>chef</code></h2>' in html
    assert "You are a Mediterranean chef." in html
    assert "Ask about allergies before suggesting recipes." in html
    assert "default agent" in html
    assert "from the agents file" in html
    assert (
        '<td data-label="Field"><code>answer</code> <span class="badge">shown to people</span>'
        in html
    )
    assert '<td data-label="Type">list of string</td>' in html
    assert "The person chose a recipe." in html
    assert "on request only" in html
    assert "Slack T01:C0BOUND (/agent use)" in html
    assert "Plain text replies (no response shape)." in html
    assert html.count('<svg class="chart"') == 2
    assert "Chat with Chef</button>" in html


async def test_the_chart_counts_goal_checks_per_day(console: Console) -> None:
    conversation, _ = await console.api.engine.open_conversation(
        key=PlatformKey(platform="api", channel="g"), agent_id="chef"
    )
    for reached in (True, False, False):
        await console.api.store.add_goal_check(
            NewGoalCheck(
                conversation_id=conversation.id,
                agent_id="chef",
                reached=reached,
                summary="s",
                covered_seq=1,
            )
        )
    await console.api.store.add_goal_check(
        NewGoalCheck(
            conversation_id=conversation.id,
            agent_id="chef",
            reached=False,
            summary="",
            covered_seq=1,
            error="model down",
        )
    )
    browser = await console.signed_in("read")
    html = (await browser.get("/console/agents")).text
    chef_card = html.split('id="agent-chef"', 1)[1].split("</article>", 1)[0]
    assert "3 goal checks in 30 days" in chef_card, "failed checks are left out"
    assert "3 in all, 1 reached, 2 not yet" in chef_card
    today = utc_now().date().isoformat()
    assert f"<title>{today}: 1 reached, 2 not yet</title>" in chef_card
    assert len(re.findall(r'<rect class="bar-reached"', chef_card)) == 1
    assert "Chat with" not in chef_card, "read keys cannot start chats"


async def test_a_scheduled_agent_and_a_limited_key(api_factory: ApiFactory) -> None:
    scheduled = chef(goal_check={"every": "90m", "timezone": "Europe/Madrid"})
    api = await api_factory(agents=agents_file(scheduled, plain(bindings={"discord": ["123456"]})))
    console = Console(api)
    try:
        browser = await console.signed_in("read")
        html = (await browser.get("/console/agents")).text
        assert "every 1h30m (Europe/Madrid), posted in the conversation&#39;s thread" in html
        assert "Discord 123456 (agents file)" in html
        limited = await console.signed_in("read", agents=["plain"])
        only = (await limited.get("/console/agents")).text
        assert 'id="agent-plain"' in only
        assert 'id="agent-chef"' not in only
    finally:
        await console.close()


def test_a_day_window_of_thirty_days() -> None:
    from adapters.http.console.chart import chart_since

    now = utc_now()
    since = chart_since(now)
    assert now - since < timedelta(days=30)
    assert now - since >= timedelta(days=29)
    assert (since.hour, since.minute) == (0, 0)
