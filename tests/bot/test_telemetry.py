"""Tracing: one Slack message's trace, from the journal's message through the engine's turn
to the model, the store and Slack's API, with the SDK's in-memory exporter on a provider
handed in (no global provider). Without a provider nothing is recorded and no SDK is built."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind

from bot.engine import IncomingMessage
from bot.telemetry import Telemetry, build_tracer_provider
from memory.base import PlatformKey
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.fake_slack import FakeSlack, mention_event
from tests.support.slack_bot import BotFactory, texts


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    yield made
    made.shutdown()


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, f"{name}: {[span.name for span in spans]}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


async def test_a_slack_message_is_one_trace_from_journal_to_model_store_and_slack(
    start_slack: BotFactory,
    fake_slack: FakeSlack,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    bot = await start_slack(telemetry=Telemetry.of(provider))
    mention = mention_event("my name is Bob")
    await bot.deliver(mention)
    await bot.settle()
    assert texts(fake_slack, mention["ts"]) == ["You said: Ada: my name is Bob"]
    conversation = await bot.conversation(mention["ts"])
    assert conversation is not None

    spans = exporter.get_finished_spans()
    message = one(spans, "parley.message")
    turn = one(spans, "parley.turn")
    model = one(spans, "chat gpt-4o-mini")
    assert message.parent is None, "the message is the trace's root"
    assert parent_of(turn) == span_id(message)
    assert parent_of(model) == span_id(turn)

    assert message.attributes is not None
    assert message.attributes["parley.platform"] == "slack"
    assert turn.attributes is not None
    assert turn.attributes["parley.conversation.id"] == conversation.id
    assert turn.attributes["parley.agent.id"] == "chef"
    assert turn.attributes["gen_ai.request.model"] == "gpt-4o-mini"

    assert model.kind is SpanKind.CLIENT
    assert model.attributes is not None
    assert model.attributes["gen_ai.operation.name"] == "chat"
    assert model.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert model.attributes["gen_ai.provider.name"] == "openai"
    assert model.attributes["gen_ai.system"] == "openai"
    assert model.attributes["gen_ai.conversation.id"] == conversation.id
    assert model.attributes["parley.purpose"] == "reply"

    stored = [span for span in spans if span.name == "store append_message"]
    assert len(stored) == 2, "the user's message and the reply"
    assert all(parent_of(span) == span_id(turn) for span in stored)
    assert stored[0].attributes is not None
    assert stored[0].attributes["db.system.name"] == "sqlite"

    shown = [span for span in spans if span.name.startswith("slack chat.")]
    assert {span.name for span in shown} >= {"slack chat.startStream", "slack chat.stopStream"}
    assert all(parent_of(span) == span_id(message) for span in shown), "shown by the adapter"
    started = one(spans, "slack chat.startStream")
    assert started.attributes is not None
    assert started.attributes["http.response.status_code"] == 200
    assert message.context is not None
    linked = (turn, model, *stored, *shown)
    assert {s.context.trace_id for s in linked if s.context} == {message.context.trace_id}
    assert fake_slack.bot_token not in str([dict(s.attributes or {}) for s in spans])


async def test_a_failed_model_call_is_an_error_span(
    make_engine: EngineFactory,
    fake_openai: FakeOpenAI,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    engine = make_engine(telemetry=Telemetry.of(provider))
    fake_openai.script(Reply(status=500))
    key = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")
    result = await engine.reply(IncomingMessage(key=key, text="hello", author_name="Ada")).result()
    assert result.failed

    spans = exporter.get_finished_spans()
    model = one(spans, "chat gpt-4o-mini")
    assert not model.status.is_ok
    assert model.attributes is not None
    assert model.attributes["error.type"] == "ModelError"
    turn = one(spans, "parley.turn")
    assert parent_of(model) == span_id(turn)


def test_without_a_provider_nothing_is_traced() -> None:
    telemetry = Telemetry()
    assert isinstance(telemetry.tracer, NoOpTracer)
    assert not telemetry.tracing


async def test_spans_are_exported_over_otlp_http_to_the_collector(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """A collector on loopback receives OTLP/HTTP protobuf at ``/v1/traces`` of the base
    address, the way ``OTEL_EXPORTER_OTLP_ENDPOINT`` is read."""
    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_HEADERS"):
        clean_env.delenv(name, raising=False)
    received: list[ExportTraceServiceRequest] = []
    arrived = asyncio.Event()

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        body = ExportTraceServiceRequest()
        body.ParseFromString(await request.read())
        received.append(body)
        arrived.set()
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    provider = build_tracer_provider(f"http://127.0.0.1:{port}/")
    try:
        telemetry = Telemetry.of(provider)
        with telemetry.tracer.start_as_current_span("parley.turn"):
            pass
        assert await asyncio.to_thread(provider.force_flush)
        async with asyncio.timeout(10):
            await arrived.wait()
    finally:
        await asyncio.to_thread(provider.shutdown)
        await runner.cleanup()

    (request,) = received
    (resource,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "parley"
    names = [span.name for scope in resource.scope_spans for span in scope.spans]
    assert names == ["parley.turn"]
