"""The platform adapter boundary, and what every adapter shares.

An adapter only translates: platform events into :class:`bot.engine.IncomingMessage`, and the
engine's turns back into platform messages. Any exception stops at the adapter's edge: it is
logged with the conversation id and the person sees one short line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.errors import BUSY_LINE, FAILURE_LINE, STORE_LINE, ParleyError
from memory.base import GoalCheck

__all__ = [
    "BUSY_LINE",
    "FAILURE_LINE",
    "READY_STATES",
    "STORE_LINE",
    "AdapterHealth",
    "AdapterState",
    "FailureHook",
    "PlatformAdapter",
    "format_goal_check",
    "short_error_line",
]


AdapterState = Literal["connecting", "connected", "reconnecting", "http", "failed", "stopped"]
"""Where an adapter's platform connection stands. ``connected`` (a socket or gateway that
carries events) and ``http`` (events arrive as requests on the bot's HTTP server) are ready;
``failed`` means the adapter gave up for good and the process should be restarted."""

READY_STATES: frozenset[AdapterState] = frozenset({"connected", "http"})


@dataclass(frozen=True, slots=True)
class AdapterHealth:
    """One adapter's connection state, as ``/readyz`` reports it."""

    name: str
    state: AdapterState
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state in READY_STATES


FailureHook = Callable[[AdapterHealth], None]
"""Called once, from the event loop, when an adapter has given up reconnecting for good."""


class PlatformAdapter(Protocol):
    """A chat platform the bot lives on."""

    name: str

    def health(self) -> AdapterHealth:
        """The connection state now; cheap, never blocks, never raises."""
        ...

    async def start(self) -> None:
        """Connect and begin handling events; returns once running."""
        ...

    async def stop(self) -> None:
        """Stop taking events and disconnect; in-flight turns are left to the engine."""
        ...


def short_error_line(exc: BaseException) -> str:
    """The one line a person sees when their message could not be answered: the error's own
    public line (see :mod:`bot.errors`), or the generic one for anything not Parley's."""
    return exc.public_line if isinstance(exc, ParleyError) else FAILURE_LINE


def format_goal_check(check: GoalCheck) -> str:
    """A goal check as plain lines: the terminal shows it so, Slack uses it as the text
    beside its blocks."""
    if check.error:
        return f"Goal check failed: {check.error}"
    lines = [f"Goal reached: {'yes' if check.reached else 'not yet'}"]
    if check.summary:
        lines.append(f"Summary: {check.summary}")
    if check.missing:
        lines.append("Missing: " + "; ".join(check.missing))
    return "\n".join(lines)
