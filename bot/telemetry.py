"""Telemetry: the metrics and the tracer a process records to, handed through constructors.

Tracing is OpenTelemetry's API. Without ``OTEL_EXPORTER_OTLP_ENDPOINT`` the tracer is the
API's no-op tracer: no SDK provider is built and a span costs next to nothing. With it,
:func:`build_tracer_provider` makes an SDK provider exporting over OTLP/HTTP from a
background thread (never the event loop).

One message's trace: ``parley.message`` (the journal takes the platform's message) parents
``parley.turn`` (the engine's turn), which parents the model calls (``chat {model}``, with the
GenAI semantic conventions) and the store operations (``store {operation}``); the platform
API calls that show the reply (``slack chat.update``, ``discord PATCH /channels/:id/...``) are
children of ``parley.message``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.trace import NoOpTracer, Span, Tracer, TracerProvider

from bot.logs import add_log_context, log_context
from bot.metrics import Metrics

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

__all__ = ["Telemetry", "TurnWatch", "build_tracer_provider"]

TRACER_NAME = "parley"
SERVICE_NAME = "parley"

CONVERSATION_ID = "parley.conversation.id"
AGENT_ID = "parley.agent.id"
PLATFORM = "parley.platform"
EVENT_ID = "parley.event.id"
MODEL = "gen_ai.request.model"


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Where a process's metrics and spans go. The default records metrics on a registry of
    its own and traces nothing."""

    metrics: Metrics = field(default_factory=Metrics)
    tracer: Tracer = field(default_factory=NoOpTracer)
    model_spans: dict[int, Span] = field(default_factory=dict)
    """The spans of the model calls in flight, by ``id`` of their request: where the usage a
    server reports is put (:class:`bot.observed_model.SpanUsage`). As many as calls in flight."""

    @property
    def tracing(self) -> bool:
        """Spans are recorded (a provider was given): worth building their attributes."""
        return not isinstance(self.tracer, NoOpTracer)

    @classmethod
    def of(cls, provider: TracerProvider | None, metrics: Metrics | None = None) -> Telemetry:
        """Telemetry tracing to ``provider`` (no tracing when None)."""
        tracer = provider.get_tracer(TRACER_NAME) if provider is not None else NoOpTracer()
        return cls(metrics=metrics or Metrics(), tracer=tracer)

    @contextlib.contextmanager
    def message(
        self, *, platform: str, event_id: str, conversation_id: str | None
    ) -> Iterator[None]:
        """One journalled message being answered or shown: its span, and its log context."""
        attributes = {PLATFORM: platform, EVENT_ID: event_id}
        if conversation_id is not None:
            attributes[CONVERSATION_ID] = conversation_id
        with (
            log_context(platform=platform, event_id=event_id, conversation_id=conversation_id),
            self._span("parley.message", attributes),
        ):
            yield

    def _span(
        self, name: str, attributes: dict[str, str]
    ) -> contextlib.AbstractContextManager[Span | None]:
        """The span ``name`` made current, or nothing when not tracing: a turn's spans are
        then skipped, not made as no-op spans, which cost a context switch each."""
        if not self.tracing:
            return contextlib.nullcontext()
        return self.tracer.start_as_current_span(name, attributes=attributes)

    @contextlib.contextmanager
    def turn(
        self, *, platform: str, first_shown: Callable[[], float | None]
    ) -> Iterator[TurnWatch]:
        """One engine turn, from being asked for to its end: its span, its log context and
        its metrics. ``first_shown``: the monotonic time text was first shown, if it was."""
        watch = TurnWatch(platform=platform)
        with (
            log_context(platform=platform),
            self._span("parley.turn", {PLATFORM: platform}) as span,
        ):
            watch.span = span
            try:
                yield watch
            except BaseException as exc:
                watch.outcome = "error" if isinstance(exc, Exception) else "cancelled"
                raise
            finally:
                shown = first_shown()
                self.metrics.turn_ended(
                    platform=platform,
                    agent=watch.agent,
                    outcome=watch.outcome,
                    seconds=time.monotonic() - watch.started,
                    first_text=None if shown is None else max(0.0, shown - watch.started),
                )


@dataclass(slots=True)
class TurnWatch:
    """What a turn tells its telemetry as it learns it."""

    platform: str
    agent: str = "unknown"
    outcome: str = "ok"
    started: float = field(default_factory=time.monotonic)
    span: Span | None = None

    def identify(self, *, conversation_id: str, agent_id: str, model: str) -> None:
        """The turn's conversation, agent and model, once known."""
        self.agent = agent_id
        add_log_context(conversation_id=conversation_id, agent_id=agent_id)
        if self.span is not None and self.span.is_recording():
            self.span.set_attributes(
                {CONVERSATION_ID: conversation_id, AGENT_ID: agent_id, MODEL: model}
            )

    def ended(self, *, failed: bool, closed: bool) -> None:
        self.outcome = "closed" if closed else "model_failed" if failed else "ok"


def build_tracer_provider(endpoint: str) -> SdkTracerProvider:
    """An SDK provider exporting spans in batches over OTLP/HTTP to ``endpoint`` (the
    collector's base address, as in ``OTEL_EXPORTER_OTLP_ENDPOINT``: ``/v1/traces`` is
    added). The service name is ``OTEL_SERVICE_NAME`` when set, else ``parley``; headers
    come from ``OTEL_EXPORTER_OTLP_HEADERS`` as the exporter reads them."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = SdkTracerProvider(resource=resource)
    traces = endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces)))
    return provider
