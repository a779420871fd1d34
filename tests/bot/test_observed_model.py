"""The observed model client around the real OpenAI client and the fake model: a GenAI span
and a count per call, the usage the server reports on the span, nothing left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.llm import ChatRequest, ModelError, OpenAIModelClient
from bot.observed_model import ObservedModelClient, SpanUsage
from bot.prompt import ChatMessage
from bot.telemetry import Telemetry
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.metrics import Scrape

REQUEST = ChatRequest(
    model="fake-model",
    messages=(ChatMessage(role="user", content="three little words"),),
    temperature=0.5,
    metadata={"conversation_id": "c1", "purpose": "summary"},
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def telemetry(exporter: InMemorySpanExporter) -> AsyncIterator[Telemetry]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Telemetry.of(provider)
    provider.shutdown()


@pytest.fixture
async def observed(
    fake_openai: FakeOpenAI, telemetry: Telemetry
) -> AsyncIterator[ObservedModelClient]:
    inner = OpenAIModelClient(
        api_key="test-key",
        base_url=fake_openai.base_url,
        timeout=5,
        max_retries=0,
        usage=SpanUsage(None, telemetry),
    )
    client = ObservedModelClient(inner, telemetry)
    yield client
    await client.close()


@pytest.mark.parametrize("streaming", [True, False])
async def test_a_call_is_a_genai_span_with_the_usage_reported(
    observed: ObservedModelClient,
    fake_openai: FakeOpenAI,
    telemetry: Telemetry,
    exporter: InMemorySpanExporter,
    streaming: bool,
) -> None:
    fake_openai.script(
        Reply(content="fine thanks", usage={"prompt_tokens": 11, "completion_tokens": 2})
    )
    if streaming:
        text = "".join([piece async for piece in observed.stream(REQUEST)])
    else:
        text = await observed.complete(REQUEST)
    assert text == "fine thanks"

    (span,) = exporter.get_finished_spans()
    assert span.name == "chat fake-model"
    assert span.attributes is not None
    assert span.attributes["gen_ai.operation.name"] == "chat"
    assert span.attributes["gen_ai.request.model"] == "fake-model"
    assert span.attributes["gen_ai.request.temperature"] == 0.5
    assert span.attributes["gen_ai.request.stream"] is streaming
    assert span.attributes["gen_ai.conversation.id"] == "c1"
    assert span.attributes["parley.purpose"] == "summary"
    assert span.attributes["parley.model_provider"] == "default"
    assert span.attributes["gen_ai.usage.input_tokens"] == 11
    assert span.attributes["gen_ai.usage.output_tokens"] == 2
    assert telemetry.model_spans == {}, "nothing kept once the call ended"
    found = Scrape.of(telemetry.metrics)
    assert found.value("parley_model_calls_total", purpose="summary", outcome="ok") == 1


async def test_no_usage_reported_puts_none_on_the_span(
    observed: ObservedModelClient, fake_openai: FakeOpenAI, exporter: InMemorySpanExporter
) -> None:
    fake_openai.report_usage = False
    await observed.complete(REQUEST)

    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert "gen_ai.usage.input_tokens" not in span.attributes, "estimates are not reported"


async def test_a_failed_call_is_counted_and_its_span_says_why(
    observed: ObservedModelClient,
    fake_openai: FakeOpenAI,
    telemetry: Telemetry,
    exporter: InMemorySpanExporter,
) -> None:
    fake_openai.script(Reply(status=429, headers={"retry-after": "0"}))
    with pytest.raises(ModelError):
        await observed.complete(REQUEST)

    (span,) = exporter.get_finished_spans()
    assert not span.status.is_ok
    assert span.status.description == "the model is rate limited (HTTP 429)"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ModelError"
    assert telemetry.model_spans == {}
    found = Scrape.of(telemetry.metrics)
    assert found.value("parley_model_calls_total", purpose="summary", outcome="error") == 1
