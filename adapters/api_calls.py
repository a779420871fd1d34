"""Platform API calls counted and traced where they leave the process: an aiohttp trace.

slack_sdk's ``AsyncWebClient`` and discord.py's HTTP client both send through an aiohttp
session; a trace on it sees every attempt, retries and 429s included, whichever part of
the library sent it. Each attempt is one ``parley_platform_api_calls`` count by platform,
method and status class (a 429 also counts in ``parley_platform_rate_limited``) and, when
tracing, one client span. Methods are bounded names: Slack's API method
(``chat.postMessage``), Discord's route with its ids and tokens replaced
(``PATCH /channels/:id/messages/:id``): never a URL as sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace

import aiohttp
from opentelemetry.trace import SpanKind, Status, StatusCode
from yarl import URL

from bot.telemetry import Telemetry

__all__ = ["api_call_trace", "discord_method", "slack_method"]

MethodOf = Callable[[str, URL], str]
"""The bounded name of a call from its HTTP verb and URL."""

_SLACK_METHOD = re.compile(r"^[A-Za-z]+(\.[A-Za-z]+)+$")
_WORD = re.compile(r"^[a-z@][a-z0-9_-]{0,23}$")
_VERSION = re.compile(r"^v\d+$")
_SECRET_AFTER = frozenset({"webhooks", "interactions"})
"""Discord path segments followed by an id and then a token (``/webhooks/{id}/{token}``)."""


def slack_method(verb: str, url: URL) -> str:
    """Slack's Web API method: the URL's last segment (``chat.postMessage``)."""
    name = url.path.rstrip("/").rpartition("/")[2]
    return name if _SLACK_METHOD.match(name) else "other"


def discord_method(verb: str, url: URL) -> str:
    """Discord's route: the verb and the path after the API version, each id, token and
    emoji replaced (``POST /channels/:id/messages``)."""
    segments = [part for part in url.path.split("/") if part]
    while segments and (segments[0] == "api" or _VERSION.match(segments[0])):
        segments.pop(0)
    kept: list[str] = []
    for index, part in enumerate(segments):
        before = segments[index - 1] if index else ""
        after_id = index >= 2 and segments[index - 2] in _SECRET_AFTER
        if after_id:
            kept.append(":token")
        elif before == "reactions" and part != "@me":
            kept.append(":emoji")
        elif _WORD.match(part):
            kept.append(part)
        else:
            kept.append(":id")
    return f"{verb.upper()} /{'/'.join(kept)}"


def api_call_trace(
    telemetry: Telemetry,
    platform: str,
    method_of: MethodOf,
    trace: aiohttp.TraceConfig | None = None,
) -> aiohttp.TraceConfig:
    """``trace`` (or a new one) with the calls of ``platform``'s API counted and traced."""
    metrics = telemetry.metrics
    tracer = telemetry.tracer
    tracing = telemetry.tracing

    async def on_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        method = method_of(params.method, params.url)
        context.parley_method = method
        context.parley_span = None
        if tracing:
            context.parley_span = tracer.start_span(
                f"{platform} {method}",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": params.method.upper(),
                    "url.template": method,
                    "parley.platform": platform,
                },
            )

    def done(context: SimpleNamespace, status: int | None, error: BaseException | None) -> None:
        method = getattr(context, "parley_method", None)
        if method is None:  # started before this trace was added
            return
        metrics.platform_call(platform=platform, method=method, status=status)
        span = context.parley_span
        if span is not None:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None or (status is not None and status >= 400):
                kind = error.__class__.__name__ if error is not None else str(status)
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR))
            span.end()

    async def on_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        done(context, params.response.status, None)

    async def on_exception(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        done(context, None, params.exception)

    trace = trace or aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace
