"""A store that times and traces every operation of the store it wraps.

Every coroutine method of the store (whatever its record type, today's and tomorrow's) is
timed into ``parley_store_operation_duration_seconds`` by its name, counted in
``parley_store_operation_errors`` when it raises, and, when tracing, recorded as a span
``store {operation}``. Everything else (``description``, ...) is the wrapped store's own.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from opentelemetry.trace import SpanKind

from bot.telemetry import Telemetry
from memory.base import ConversationStore

__all__ = ["observed_store"]


def observed_store(store: ConversationStore, telemetry: Telemetry) -> ConversationStore:
    """``store`` with each operation measured (see the module's docstring)."""
    if isinstance(store, _ObservedStore):
        return cast(ConversationStore, store)
    return cast(ConversationStore, _ObservedStore(store, telemetry))


class _ObservedStore:
    def __init__(self, inner: ConversationStore, telemetry: Telemetry) -> None:
        self._inner = inner
        self._telemetry = telemetry
        self._system = type(inner).__name__.removesuffix("Store").lower() or "store"

    def __repr__(self) -> str:
        return f"observed({self._inner!r})"

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            return value
        timed = self._timed(name, value)
        setattr(self, name, timed)  # made once per operation; found directly from then on
        return timed

    def _timed(
        self, name: str, operation: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        metrics = self._telemetry.metrics
        tracer = self._telemetry.tracer
        tracing = self._telemetry.tracing
        span_name = f"store {name}"
        attributes = {"db.system.name": self._system, "db.operation.name": name}

        @functools.wraps(operation)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            failed = False
            try:
                if not tracing:
                    return await operation(*args, **kwargs)
                with tracer.start_as_current_span(
                    span_name, kind=SpanKind.CLIENT, attributes=attributes
                ):
                    return await operation(*args, **kwargs)
            except Exception:
                failed = True
                raise
            finally:
                metrics.store_operation(name, time.monotonic() - started, failed=failed)

        return timed
