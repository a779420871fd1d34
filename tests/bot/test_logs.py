from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging, conversation_context

SECRET = "xoxb-secret-token-value"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_conversation_context_and_hide_secrets() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", secrets=[SECRET], stream=stream)
    log = logging.getLogger("parley.test")
    log.info(
        "posting with token %s",
        SECRET,
        extra=conversation_context(conversation_id="c" * 32, platform="slack"),
    )
    log.debug("not shown")
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "INFO"
    assert entry["logger"] == "parley.test"
    assert entry["conversation_id"] == "c" * 32
    assert entry["platform"] == "slack"
    assert entry["message"] == "posting with token ***"
    assert SECRET not in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_redact_tracebacks_too() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="text", secrets=[SECRET], stream=stream)
    log = logging.getLogger("parley.test")
    try:
        raise RuntimeError(f"auth failed for {SECRET}")
    except RuntimeError:
        log.exception(
            "call failed", extra=conversation_context(conversation_id="x", platform="discord")
        )
    output = stream.getvalue()
    assert "call failed [conversation_id=x platform=discord]" in output
    assert "RuntimeError: auth failed for ***" in output
    assert SECRET not in output
