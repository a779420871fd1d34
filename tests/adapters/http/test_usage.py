"""``/api/v1/usage``: the model's reported usage summed and priced through the real app, key
scopes and limits, bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.pricing import ModelPrice, Prices
from memory.base import NewUsage
from tests.adapters.http.helpers import API, create_conversation, error_of, say
from tests.adapters.http.test_key_limits import limited
from tests.support.api import Api, ApiFactory
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, default_brain

USAGE = f"{API}/usage"
PRICES = Prices(models={"gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.6)})
REPORTED = {
    "prompt_tokens": 1000,
    "completion_tokens": 200,
    "total_tokens": 1200,
    "prompt_tokens_details": {"cached_tokens": 400},
}
PER_CALL = (600 * 0.15 + 400 * 0.075 + 200 * 0.60) / 1_000_000


@pytest.fixture
async def priced(api_factory: ApiFactory, fake_openai: FakeOpenAI) -> Api:
    def answer(request: RecordedRequest) -> Reply:
        return replace(default_brain(request), usage=REPORTED)

    fake_openai.handle(answer)
    return await api_factory(usage=True, prices=PRICES)


async def test_usage_adds_up_per_conversation_and_purpose(priced: Api) -> None:
    client = await priced.as_key("write")
    conversation = await create_conversation(client)
    await say(client, conversation["id"], "Hi, my name is Bob")
    await say(client, conversation["id"], "What can I cook?")
    checked = await client.post(f"{API}/conversations/{conversation['id']}/goal-check")
    assert checked.status_code == 201, checked.text

    response = await client.get(
        USAGE, params={"conversation": conversation["id"], "group_by": "purpose"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["currency"] == "USD"
    assert body["group_by"] == ["purpose"]
    assert body["from"] is None
    assert body["to"] is None
    rows = {row["purpose"]: row for row in body["rows"]}
    assert set(rows) == {"reply", "goal_check"}
    reply = rows["reply"]
    assert (reply["calls"], reply["input_tokens"], reply["output_tokens"]) == (2, 2000, 400)
    assert reply["cached_input_tokens"] == 800
    assert reply["cost"] == pytest.approx(2 * PER_CALL)
    assert rows["goal_check"]["cost"] == pytest.approx(PER_CALL)
    assert body["total"]["cost"] == pytest.approx(3 * PER_CALL)
    assert body["total"]["calls"] == 3
    assert body["total"]["unpriced_models"] == []
    assert body["truncated"] is False


async def _seed(api: Api) -> None:
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def used(agent: str, model: str, at: datetime) -> NewUsage:
        return NewUsage(
            at=at, agent_id=agent, purpose="reply", model=model, input_tokens=10, output_tokens=5
        )

    await api.store.add_usage(
        [
            used("chef", "gpt-4o-mini", day),
            used("chef", "house-llm", day + timedelta(days=1)),
            used("plain", "gpt-4o-mini", day + timedelta(days=1)),
        ]
    )


async def test_groups_ranges_and_unknown_prices(api_factory: ApiFactory) -> None:
    api = await api_factory(prices=PRICES)
    await _seed(api)
    client = await api.as_key("read")
    body = (await client.get(USAGE, params={"group_by": "agent,day"})).json()
    assert [(r["day"], r["agent"], r["calls"]) for r in body["rows"]] == [
        ("2026-03-01", "chef", 1),
        ("2026-03-02", "chef", 1),
        ("2026-03-02", "plain", 1),
    ]
    assert body["rows"][1]["cost"] is None
    assert body["rows"][1]["unpriced_models"] == ["house-llm"]
    assert body["total"]["cost"] is None

    params: dict[str, Any] = {"from": "2026-03-02T00:00:00Z", "agent": "chef", "group_by": ""}
    body = (await client.get(USAGE, params=params)).json()
    assert body["group_by"] == []
    assert [row["calls"] for row in body["rows"]] == [1]
    assert body["total"]["calls"] == 1
    assert body["total"]["cost"] is None  # chef's call that day used house-llm
    assert body["from"] == "2026-03-02T00:00:00Z"
    naive = (await client.get(USAGE, params={"to": "2026-03-02T00:00:00"})).json()
    assert naive["total"]["calls"] == 1  # a time without a zone is UTC


async def test_a_key_sees_only_its_agents(api_factory: ApiFactory) -> None:
    api = await api_factory(prices=PRICES)
    await _seed(api)
    client = await limited(api, "read", agents=["plain"])
    body = (await client.get(USAGE)).json()
    assert [row["agent"] for row in body["rows"]] == ["plain"]
    error = error_of(await client.get(USAGE, params={"agent": "chef"}), 403)
    assert "chef" in error["message"]


async def test_a_key_limited_to_places_sees_one_conversation_at_a_time(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(prices=PRICES)
    await _seed(api)
    client = await limited(api, "read", platforms=["api"])
    error = error_of(await client.get(USAGE), 403)
    assert "one conversation" in error["message"]
    writer = await limited(api, "write", platforms=["api"])
    conversation = await create_conversation(writer)
    response = await client.get(USAGE, params={"conversation": conversation["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == []


async def test_bad_input_is_a_clear_422_and_no_key_is_401(api: Api) -> None:
    client = await api.as_key("read")
    error = error_of(await client.get(USAGE, params={"group_by": "agent,weather"}), 422)
    assert "group_by: 'weather' is not one of" in error["message"]
    error_of(await client.get(USAGE, params={"from": "yesterday"}), 422)
    error_of(await client.get(USAGE, params={"conversation": "f" * 32}), 404)
    error_of(await api.client.get(USAGE), 401)
