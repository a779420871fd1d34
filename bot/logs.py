"""Logging set-up: text for people, JSON lines for production, secrets always redacted.

Lines about a conversation carry its id and platform: pass ``extra=conversation_context(...)``.
Inside a turn every line carries them anyway, libraries' lines too: the turn sets them with
:func:`log_context` (a ``contextvars`` value, so each task sees its own turn's) and the handler's
:class:`ContextFilter` copies them onto each record that does not name its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from memory.base import Conversation

CONTEXT_FIELDS = ("conversation_id", "platform", "agent_id", "event_id")
REDACTED = "***"


def conversation_context(*, conversation_id: str, platform: str, **more: str) -> dict[str, str]:
    return {"conversation_id": conversation_id, "platform": platform, **more}


def context_of(conversation: Conversation) -> dict[str, str]:
    """The log context of a stored conversation: its id, platform and agent."""
    return conversation_context(
        conversation_id=conversation.id,
        platform=conversation.key.platform,
        agent_id=conversation.agent_id,
    )


_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar(
    "parley_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Every line logged inside (in this task, and in tasks started from it) carries
    ``fields`` (those not None) on top of the context already set; the context before is
    restored on the way out."""
    token = _CONTEXT.set(_merged(fields))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def add_log_context(**fields: str | None) -> None:
    """Add ``fields`` (those not None) to the context of the enclosing :func:`log_context`,
    once they are known (a turn learns its conversation after it starts)."""
    _CONTEXT.set(_merged(fields))


def current_log_context() -> Mapping[str, str]:
    return _CONTEXT.get()


def _merged(fields: Mapping[str, str | None]) -> dict[str, str]:
    return {**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}}


class ContextFilter(logging.Filter):
    """Puts the :func:`log_context` fields on each record passing the handler (a handler's
    filter sees every logger's records, libraries' included). Fields a line names in its own
    ``extra`` are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._redact = _Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)
        )
        if context:
            head, _, tail = line.partition("\n")
            line = f"{head} [{context}]" + (f"\n{tail}" if tail else "")
        return self._redact(line)


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._redact = _Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(entry, ensure_ascii=False, default=str))


def configure_logging(
    *, level: str, fmt: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Route every logger to one handler on stderr, replacing any earlier set-up."""
    handler = logging.StreamHandler(stream or sys.stderr)
    secret_list = list(secrets)
    handler.setFormatter(
        JsonFormatter(secret_list) if fmt == "json" else TextFormatter(secret_list)
    )
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in (
        "pymongo",
        "aiosqlite",
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
        "discord.gateway",
        "apscheduler",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
