"""Usage in the console: per conversation and per agent, each with its cost, and the cost of
goal checks beside the goal; hidden from keys limited to places (usage is not kept per place)."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from config.pricing import ModelPrice, Prices
from tests.adapters.http.console.test_key_limits import signed_in
from tests.support.agents import agents_file, chef, plain
from tests.support.api import ApiFactory
from tests.support.console import Console
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, default_brain

PRICES = Prices(models={"gpt-4o-mini": ModelPrice(input=1.0, cached_input=0.5, output=2.0)})
REPORTED = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200},
}
# one call: 800 at 1.0/M + 200 at 0.5/M + 500 at 2.0/M = 0.0019
ONE_CALL = "0.0019 USD"


@pytest.fixture
async def priced(api_factory: ApiFactory, fake_openai: FakeOpenAI) -> AsyncIterator[Console]:
    def answer(request: RecordedRequest) -> Reply:
        return replace(default_brain(request), usage=REPORTED)

    fake_openai.handle(answer)
    api = await api_factory(
        agents=agents_file(chef(daily_token_budget=30_000), plain()), usage=True, prices=PRICES
    )
    console = Console(api)
    yield console
    await console.close()


def text_of(page: str) -> str:
    """The page's words, without tags."""
    return html_lib.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))


async def test_a_conversation_shows_its_usage_and_its_goal_checks_cost(priced: Console) -> None:
    result = await priced.slack_turn("Hi, my name is Ada")
    conversation = result.conversation
    await priced.api.engine.check_goal(conversation.id)
    browser = await priced.signed_in("read")
    page = await browser.get(f"/console/conversations/{conversation.id}")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "(goal checks: 1 call, 0.0019 USD)" in shown
    assert "Cost 0.0038 USD (2 calls)" in shown
    assert '<h2 id="usage-title">Usage</h2>' in page.text
    assert (
        '<td data-label="For">replies</td> <td data-label="Calls">1 call</td>'
        ' <td data-label="Input (cached)">1,000 (200)</td> <td data-label="Output">500</td>'
        f' <td data-label="Cost">{ONE_CALL}</td>'
    ) in " ".join(page.text.split())
    assert "Goal: The person chose a recipe. (its checks cost 1 call, 0.0019 USD)" in shown


async def test_an_agent_shows_30_days_today_and_its_budget(priced: Console) -> None:
    await priced.slack_turn("Hi")
    conversation = (await priced.slack_turn("What can I cook?")).conversation
    await priced.api.engine.check_goal(conversation.id)
    browser = await priced.signed_in("read")
    page = await browser.get("/console/agents")
    shown = text_of(page.text)
    assert "(goal checks in 30 days: 1 call, 0.0019 USD)" in shown
    assert "Today (UTC) 4,500 tokens, 0.0057 USD (15% of the daily budget of 30,000 tokens)" in (
        shown
    )
    assert "Model calls of Chef in the last 30 days (UTC)" in shown
    assert "No model calls recorded yet." in shown  # the plain agent


async def test_unknown_prices_are_unknown_and_places_hide_agent_totals(
    console: Console,
) -> None:
    await console.slack_turn("Hi")  # the default app: usage not recorded, no prices
    browser = await console.signed_in("read")
    page = await browser.get("/console/agents")
    assert "No model calls recorded yet." in page.text
    limited = await signed_in(console, "read", workspaces=["T1"])
    page = await limited.get("/console/agents")
    assert "usage is kept per agent, not per place" in page.text
