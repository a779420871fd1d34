"""HTTP mode: the Events API and interactivity at ``POST /slack/events``, signed as Slack signs,
verified by Bolt; ``GET /healthz`` on the same server."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from adapters.slack import SlackStartError
from adapters.slack.blocks import FORGET_CANCEL
from adapters.slack.messages import STOPPED_LINE
from tests.support.fake_openai import FakeOpenAI, HeldModel
from tests.support.fake_slack import (
    SIGNING_SECRET,
    FakeSlack,
    agent_session_stopped,
    block_actions,
    event_callback,
    feedback_click,
    mention_event,
    message_event,
    new_ts,
    signed_headers,
    slash_command,
)
from tests.support.loopback import free_port
from tests.support.slack_bot import Bot, BotFactory, responses, texts

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class Http:
    """Requests to a bot in HTTP mode, as Slack sends them."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def post(
        self,
        body: bytes,
        *,
        content_type: str = JSON,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> tuple[int, str]:
        sent = (
            signed_headers(secret, body, timestamp=timestamp, content_type=content_type)
            if signed
            else {"Content-Type": content_type}
        )
        sent.update(headers or {})
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.base}/slack/events", data=body, headers=sent) as response,
        ):
            return response.status, await response.text()

    async def event(self, event: dict[str, Any], **options: Any) -> tuple[int, str]:
        return await self.post(json.dumps(event_callback(event)).encode(), **options)

    async def form(self, fields: dict[str, Any]) -> tuple[int, str]:
        return await self.post(urlencode(fields).encode(), content_type=FORM)


async def http_bot(start_slack: BotFactory) -> tuple[Bot, Http]:
    port = free_port()
    bot = await start_slack(mode="http", port=port)
    return bot, Http(port)


async def test_signed_events_are_answered_in_their_thread(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot, http = await http_bot(start_slack)
    mention = mention_event("my name is Bob")
    body = json.dumps(event_callback(mention, event_id="Ev0HTTP")).encode()

    started = time.monotonic()
    status, text = await http.post(body)
    assert (status, text) == (200, "")
    assert time.monotonic() - started < 3.0
    bot.expected += 1
    await bot.settle()
    assert texts(fake_slack, mention["ts"]) == ["You said: Ada: my name is Bob"]
    assert fake_slack.connections == 0, "HTTP mode opens no websocket"

    for attempt in ("1", "2"):  # Slack's redeliveries of the same event
        retried = await http.post(body, headers={"X-Slack-Retry-Num": attempt})
        assert retried == (200, "")
        bot.expected += 1
    await bot.settle()
    assert texts(fake_slack, mention["ts"]) == ["You said: Ada: my name is Bob"]
    assert len(fake_openai.chat_requests()) == 1


async def test_bad_and_stale_signatures_get_401(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot, http = await http_bot(start_slack)
    mention = mention_event("hello")
    body = json.dumps(event_callback(mention)).encode()

    assert (await http.post(body, secret="not-the-secret"))[0] == 401
    assert (await http.post(body, timestamp=int(time.time()) - 6 * 60))[0] == 401
    assert (await http.post(body, signed=False))[0] == 401
    tampered = signed_headers(SIGNING_SECRET, body, content_type=JSON)
    assert (await http.post(body + b" ", signed=False, headers=tampered))[0] == 401

    await bot.settle()
    assert not fake_openai.chat_requests()
    assert [call.method for call in fake_slack.calls] == ["auth.test"]


async def test_url_verification_and_ssl_check_are_answered(start_slack: BotFactory) -> None:
    _, http = await http_bot(start_slack)
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    verification = {"token": "legacy", "challenge": challenge, "type": "url_verification"}

    status, text = await http.post(json.dumps(verification).encode())
    assert status == 200
    assert json.loads(text) == {"challenge": challenge}

    status, _ = await http.form({"ssl_check": "1", "token": "legacy"})
    assert status == 200


async def test_healthz_on_the_same_server(start_slack: BotFactory) -> None:
    _, http = await http_bot(start_slack)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{http.base}/healthz") as response,
    ):
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_commands_and_actions_over_http(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot, http = await http_bot(start_slack)

    status, text = await http.form(slash_command("dance", response_url=fake_slack.response_url()))
    assert status == 200
    assert text.startswith("*Usage:* `/agent &lt;subcommand&gt;`"), (
        "Slack shows a text body privately"
    )

    status, text = await http.form(slash_command("list", response_url=fake_slack.response_url()))
    assert (status, text) == (200, "")
    assert "`chef`: Chef (here, default)" in (await responses(fake_slack))[-1]["text"]

    click = block_actions(FORGET_CANCEL, "{}", response_url=fake_slack.response_url())
    status, _ = await http.form({"payload": json.dumps(click)})
    assert status == 200
    assert (await responses(fake_slack, 2))[-1]["text"] == "Nothing was deleted."
    bot.expected += 3
    await bot.settle()


async def test_stop_and_feedback_over_http(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot, http = await http_bot(start_slack)
    thread = new_ts()
    dm = {"channel": "D0ADA", "channel_type": "im", "thread_ts": thread}
    assert await http.event(message_event("hello", **dm)) == (200, "")
    bot.expected += 1
    await bot.settle()
    (reply,) = fake_slack.thread("D0ADA", thread)
    status, _ = await http.form({"payload": json.dumps(feedback_click(reply, "good"))})
    assert status == 200
    bot.expected += 1
    await bot.settle()
    conversation = await bot.conversation(thread, channel="D0ADA")
    assert conversation is not None
    stored = (await bot.store.list_messages(conversation_id=conversation.id))[-1]
    assert [f.rating for f in await bot.store.list_feedback(message_id=stored.id)] == ["good"]

    held = HeldModel()
    fake_openai.handle(held)
    assert await http.event(message_event("a long story", **dm)) == (200, "")
    await held.until(1)
    stop = agent_session_stopped(channel="D0ADA", thread_ts=thread)
    assert await http.event(stop) == (200, "")
    await fake_slack.wait_for(lambda: STOPPED_LINE in texts(fake_slack, thread, "D0ADA"))
    held.release()
    bot.expected += 2
    await bot.settle()
    assert texts(fake_slack, thread, "D0ADA")[-1] == STOPPED_LINE


async def test_a_taken_port_is_a_clear_start_error(start_slack: BotFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SlackStartError, match=f"cannot listen on port {port}"):
            await start_slack(mode="http", port=port)


async def test_a_timestamp_that_is_not_a_number_is_401_with_one_log_line(
    start_slack: BotFactory,
    fake_slack: FakeSlack,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot, http = await http_bot(start_slack)
    body = json.dumps(event_callback(mention_event("hello"))).encode()
    caplog.set_level(logging.INFO)
    for stamp in ("soon", "", "1e9", "-5", "1_700_000_000", "9" * 5000):
        caplog.clear()
        status, text = await http.post(body, headers={"X-Slack-Request-Timestamp": stamp})
        assert status == 401, (stamp, text)
        error = json.loads(text)["error"]
        assert error["code"] == "unauthorized"
        assert "X-Slack-Request-Timestamp" in error["message"]
        assert len(caplog.records) <= 1, caplog.text
        assert not any(record.exc_info for record in caplog.records), "no traceback"
    await bot.settle()
    assert not fake_openai.chat_requests()
    assert [call.method for call in fake_slack.calls] == ["auth.test"]


async def test_a_200_kb_event_is_acknowledged_and_answered(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    """A 40,000-character message (Slack's most) whose blocks repeat the text: far over the
    API's 64 KB, within what /slack/events takes."""
    bot, http = await http_bot(start_slack)
    text = " ".join(f"word{n:05d}" for n in range(4000))[:40_000]
    mention = mention_event(text)
    mention["blocks"] = mention["blocks"] * 4
    body = json.dumps(event_callback(mention)).encode()
    assert 200_000 <= len(body) < 1_048_576

    assert await http.post(body) == (200, "")
    bot.expected += 1
    await bot.settle()
    (request,) = fake_openai.chat_requests()
    assert text[-1000:] in json.dumps(request.body), "the model read the whole message"
    assert texts(fake_slack, mention["ts"])[0].startswith("You said: Ada: ")
