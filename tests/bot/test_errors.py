"""Every error Parley raises on purpose says how each edge shows it (status, code, the lines
clients and people read, Retry-After, exit status), and the edges read it from the error."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from http import HTTPStatus
from types import ModuleType
from typing import NamedTuple

import pytest

import adapters
import bot
import config
import memory
from adapters.base import BUSY_LINE, FAILURE_LINE, STORE_LINE, short_error_line
from adapters.http.errors import parley_response
from bot.admission import ApiShareFull, ConversationBusy, EngineBusy, KeyBusy
from bot.catalog import ReadOnlyAgent
from bot.engine import NoGoal, UnknownAgent
from bot.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    ConfigError,
    Conflict,
    NotFound,
    ParleyError,
    StoreError,
    StoreUnavailable,
)
from bot.llm import ModelError

SECRET = "mongodb://parley:hunter2-SECRET@db.internal:27017/parley"


def _modules(package: ModuleType) -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
        if not info.name.endswith("__main__")
    ]


def every_error() -> list[type[ParleyError]]:
    """Every subclass of ParleyError in the code, found by importing every module."""
    for name in _modules(bot) + _modules(adapters) + _modules(memory) + _modules(config):
        importlib.import_module(name)
    found: list[type[ParleyError]] = []
    pending: list[type[ParleyError]] = [ParleyError]
    while pending:
        kind = pending.pop()
        if (
            kind.__module__.startswith(("bot.", "adapters.", "memory.", "config."))
            and kind not in found
        ):
            found.append(kind)
            pending.extend(kind.__subclasses__())
    return found


ERRORS = every_error()


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    modules = {kind.__module__ for kind in ERRORS}
    assert len(ERRORS) >= 20, [kind.__name__ for kind in ERRORS]
    assert {"bot.errors", "bot.engine", "bot.admission", "bot.llm", "bot.journal"} <= modules
    assert {"adapters.http.errors", "adapters.http.turns", "adapters.http.auth"} <= modules


@pytest.mark.parametrize("kind", ERRORS, ids=lambda kind: f"{kind.__module__}.{kind.__name__}")
def test_every_parley_error_says_how_it_is_shown(kind: type[ParleyError]) -> None:
    assert isinstance(kind.status, int)
    assert 400 <= kind.status <= 599, "an error is a 4xx or a 5xx"
    assert HTTPStatus(kind.status).phrase
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", kind.code), kind.code
    assert kind.public_line.strip() == kind.public_line
    assert 0 < len(kind.public_line) <= 120
    assert "\n" not in kind.public_line
    assert kind.public_line[0].isupper(), "a sentence for a person"
    assert kind.public_line.endswith("."), "a sentence for a person"
    if kind.client_line is not None:
        assert 0 < len(kind.client_line) <= 120
        assert "\n" not in kind.client_line
    assert kind.retry_after is None or kind.retry_after > 0
    assert kind.exit_code in (EXIT_FAILURE, EXIT_CONFIG)
    if kind.status == 500:
        assert kind.client_line is not None, "a failure on our side keeps its message in the log"


class Shown(NamedTuple):
    """How the edges show an error; ``message`` None: the client reads its own message."""

    status: int
    code: str
    message: str | None
    line: str
    retry_after: int | None = None
    exit_code: int = EXIT_FAILURE


STORE_FAILED = "the store failed; try again shortly"
STORE_DOWN = "the store cannot be reached; try again shortly"
INTERNAL = "something went wrong on our side"


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ConfigError("agents.yaml: bad"), Shown(422, "invalid", None, FAILURE_LINE, None, 2)),
        (StoreError(SECRET), Shown(503, "store_error", STORE_FAILED, STORE_LINE)),
        (StoreUnavailable(SECRET), Shown(503, "store_unavailable", STORE_DOWN, STORE_LINE)),
        (NotFound("no conversation 'x'"), Shown(404, "not_found", None, STORE_LINE)),
        (Conflict("agent 'chef' exists"), Shown(409, "conflict", None, FAILURE_LINE)),
        (ReadOnlyAgent("from agents.yaml"), Shown(409, "read_only", None, FAILURE_LINE)),
        (NoGoal("no goal"), Shown(409, "no_goal", None, FAILURE_LINE)),
        (UnknownAgent("no agent 'x'"), Shown(404, "not_found", None, FAILURE_LINE)),
        (EngineBusy("too many waiting"), Shown(503, "busy", None, BUSY_LINE, 5)),
        (ApiShareFull("the API's share"), Shown(503, "busy", None, BUSY_LINE, 5)),
        (KeyBusy("4 turns running"), Shown(429, "too_many_turns", None, BUSY_LINE, 5)),
        (ConversationBusy("8 waiting"), Shown(429, "conversation_busy", None, BUSY_LINE, 5)),
        (ModelError(SECRET), Shown(500, "internal", INTERNAL, FAILURE_LINE)),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_each_edge_reads_the_error(error: ParleyError, shown: Shown) -> None:
    response = parley_response(error)
    assert response.status_code == shown.status
    message = str(error) if shown.message is None else shown.message
    assert json.loads(bytes(response.body)) == {"error": {"code": shown.code, "message": message}}
    retry_after = None if shown.retry_after is None else str(shown.retry_after)
    assert response.headers.get("retry-after") == retry_after
    assert short_error_line(error) == shown.line
    assert error.exit_code == shown.exit_code


def test_anything_not_parleys_is_a_generic_failure() -> None:
    assert short_error_line(RuntimeError(SECRET)) == FAILURE_LINE
    assert short_error_line(KeyboardInterrupt()) == FAILURE_LINE


@pytest.mark.parametrize("kind", ERRORS, ids=lambda kind: kind.__name__)
def test_a_hidden_message_never_reaches_a_client_or_a_person(kind: type[ParleyError]) -> None:
    """Whatever a hidden message holds (a driver's words with a URL), the lines do not."""
    error = kind.__new__(kind)  # constructors differ; the message is what matters here
    Exception.__init__(error, SECRET)
    shown = [short_error_line(error)]
    if kind.client_line is not None:
        shown.append(error.client_message())
    for text in shown:
        assert "hunter2" not in text
        assert "db.internal" not in text
