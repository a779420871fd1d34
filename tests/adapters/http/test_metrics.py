"""``GET /metrics``: Prometheus' text format, read back with prometheus-client's own parser
after real turns through the API (the real engine, store and OpenAI client against the fake
model)."""

from __future__ import annotations

import httpx

from adapters.base import AdapterHealth
from tests.adapters.http.test_chat import chat, new_chat
from tests.support.api import Api, ApiFactory
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.metrics import Scrape

TOKEN = "metrics-token-for-tests"


async def scrape(client: httpx.AsyncClient, **headers: str) -> Scrape:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape.parse(response.text)


async def test_turns_model_calls_and_latencies_are_counted(api: Api) -> None:
    client = await api.as_key("write")
    before = await scrape(client)
    assert before.value("parley_turns_total", platform="api", agent="chef", outcome="ok") == 0

    bob = await new_chat(client, "")
    await chat(client, "", bob, "Hi, my name is Bob.")
    await chat(client, "", bob, "What's my name again?")

    after = await scrape(client)
    assert after.value("parley_turns_total", platform="api", agent="chef", outcome="ok") == 2
    assert after.value("parley_model_calls_total", purpose="reply", outcome="ok") == 2
    labels = {"platform": "api", "agent": "chef"}
    assert after.value("parley_turn_duration_seconds_count", **labels) == 2
    assert after.value("parley_turn_first_text_seconds_count", **labels) == 2
    assert after.value("parley_model_call_duration_seconds_count", purpose="reply") == 2
    assert after.total("parley_store_operation_duration_seconds_count") == 0, (
        "the store is observed by the runtime, not by an app built alone"
    )
    text = (await client.get("/metrics")).text
    assert bob not in text, "no conversation id is a label"


async def test_a_format_refused_a_repair_and_a_model_failure_are_counted(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    client = await api.as_key("write")
    conversation = await new_chat(client, "")
    fake_openai.reject_json_schema = True
    fake_openai.script(Reply(content="not JSON at all"))  # JSON mode answers badly: repaired
    await chat(client, "", conversation, "A first question")
    fake_openai.script(Reply(status=500))  # the SDK's retries are off in tests
    await chat(client, "", conversation, "A second question")

    found = await scrape(client)
    assert found.value("parley_structured_fallbacks_total", mode="json_schema") == 1
    assert found.value("parley_structured_repairs_total", outcome="repaired") == 1
    assert found.value("parley_model_calls_total", purpose="repair", outcome="ok") == 1
    assert found.value("parley_model_calls_total", purpose="reply", outcome="format_rejected") == 1
    assert found.value("parley_model_calls_total", purpose="reply", outcome="error") == 1
    assert found.value("parley_turns_total", platform="api", agent="chef", outcome="ok") == 1
    assert (
        found.value("parley_turns_total", platform="api", agent="chef", outcome="model_failed") == 1
    )


async def test_adapters_and_the_journal_backlog_are_read_at_scrape_time(api: Api) -> None:
    class Reporter:
        def __init__(self, name: str, ready: bool) -> None:
            self.name = name
            self._ready = ready

        def health(self) -> AdapterHealth:
            state = "connected" if self._ready else "reconnecting"
            return AdapterHealth(self.name, state, "")

    api.services.readiness.add(Reporter("slack", True))
    api.services.readiness.add(Reporter("discord", False))
    api.services.readiness.journal_backlog = api.store.journal_backlog

    found = await scrape(api.client)
    assert found.value("parley_adapter_connected", adapter="slack") == 1
    assert found.value("parley_adapter_connected", adapter="discord") == 0
    assert found.value("parley_journal_backlog") == await api.store.journal_backlog()


async def test_the_route_is_open_without_a_token(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert "# TYPE parley_turns_total counter" in response.text


async def test_a_metrics_token_is_asked_for_when_set(api_factory: ApiFactory) -> None:
    api = await api_factory(metrics_token=TOKEN)
    assert TOKEN not in repr(api.services.settings)

    refused = await api.client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in refused.text
    wrong = await api.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    api_key = await api.key("admin")
    as_key = await api.client.get("/metrics", headers={"Authorization": f"Bearer {api_key}"})
    assert as_key.status_code == 401, "an API key is not the metrics token"

    found = await scrape(api.client, Authorization=f"Bearer {TOKEN}")
    assert found.value("parley_turns_total", platform="api", agent="chef", outcome="ok") == 0
