from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from bot.engine import IncomingMessage
from bot.logs import (
    add_log_context,
    configure_logging,
    conversation_context,
    current_log_context,
    log_context,
)
from memory.base import PlatformKey
from tests.support.engines import EngineFactory

SECRET = "xoxb-secret-token-value"


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


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
async def test_library_lines_inside_a_turn_carry_its_conversation(
    make_engine: EngineFactory,
) -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    # The SDK's HTTP client logs each request at INFO when let (configure_logging quiets it).
    logging.getLogger("httpx2").setLevel(logging.INFO)
    engine = make_engine()
    key = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")

    result = await engine.reply(IncomingMessage(key=key, text="hi", author_name="Ada")).result()
    logging.getLogger("some.library").warning("after the turn")

    lines = json_lines(stream)
    (request,) = [line for line in lines if "/chat/completions" in str(line["message"])]
    assert str(request["logger"]).startswith("httpx"), "a library's line"
    assert request["conversation_id"] == result.conversation.id
    assert request["platform"] == "slack"
    assert request["agent_id"] == "chef"
    (after,) = [line for line in lines if line["logger"] == "some.library"]
    assert "conversation_id" not in after
    assert "platform" not in after


@pytest.mark.usefixtures("restore_logging")
async def test_the_context_is_restored_and_stays_in_its_task() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    log = logging.getLogger("parley.test")
    seen_elsewhere: list[dict[str, str]] = []

    async def elsewhere() -> None:
        seen_elsewhere.append(dict(current_log_context()))

    other = asyncio.create_task(elsewhere())  # made before the context: none of it
    with log_context(platform="discord", conversation_id="c1"):
        add_log_context(agent_id="tutor")
        log.info("inside")
        log.info("own extra wins", extra=conversation_context(conversation_id="c2", platform="x"))
        await other
    log.info("outside")

    inside, own, outside = json_lines(stream)
    assert (inside["conversation_id"], inside["platform"], inside["agent_id"]) == (
        "c1",
        "discord",
        "tutor",
    )
    assert (own["conversation_id"], own["platform"], own["agent_id"]) == ("c2", "x", "tutor")
    assert "conversation_id" not in outside
    assert "agent_id" not in outside
    assert seen_elsewhere == [{}]
