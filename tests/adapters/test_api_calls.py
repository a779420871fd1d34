"""Platform API calls counted where they leave the process (an aiohttp trace on the session
slack_sdk and discord.py send through), by bounded method names: end to end against the fake
Slack and the fake Discord, and the naming rules alone."""

from __future__ import annotations

import pytest
from yarl import URL

from adapters.api_calls import discord_method, slack_method
from bot.telemetry import Telemetry
from tests.support.discord_bot import ADA, CHEF_ROOM, answer
from tests.support.discord_bot import BotFactory as DiscordFactory
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_slack import FakeSlack, mention_event
from tests.support.metrics import Scrape
from tests.support.slack_bot import BotFactory as SlackFactory
from tests.support.slack_bot import texts
from tests.support.waiting import eventually

CALLS = "parley_platform_api_calls_total"
LIMITED = "parley_platform_rate_limited_total"


async def test_slack_calls_and_429s_are_counted_by_method(
    start_slack: SlackFactory, fake_slack: FakeSlack
) -> None:
    telemetry = Telemetry()
    bot = await start_slack(telemetry=telemetry)
    fake_slack.fail("users.info", "ratelimited", status=429, headers={"Retry-After": "0"})
    mention = mention_event("my name is Bob")
    await bot.deliver(mention)
    await bot.settle()
    assert texts(fake_slack, mention["ts"]) == ["You said: Ada: my name is Bob"]

    found = Scrape.of(telemetry.metrics)
    assert found.value(LIMITED, platform="slack", method="users.info") == 1
    assert found.value(CALLS, platform="slack", method="users.info", status="429") == 1
    assert found.value(CALLS, platform="slack", method="users.info", status="2xx") == 1, (
        "slack_sdk retried after the 429: each attempt counts"
    )
    assert found.value(CALLS, platform="slack", method="auth.test", status="2xx") == 1
    for method in ("chat.startStream", "chat.stopStream"):
        assert found.value(CALLS, platform="slack", method=method, status="2xx") == len(
            fake_slack.calls_to(method)
        )
    assert found.labels(CALLS, "platform") == {"slack"}


async def test_discord_calls_and_429s_are_counted_by_route_without_ids(
    start_bot: DiscordFactory, fake_discord: FakeDiscord
) -> None:
    telemetry = Telemetry()
    await start_bot(telemetry=telemetry)
    fake_discord.rate_limit("POST", rf"/channels/{CHEF_ROOM}/messages")
    await answer(fake_discord, CHEF_ROOM, ADA, "Hi", expect="You said: Ada: Hi")
    posted = "POST /channels/:id/messages"
    answered = [
        call
        for call in fake_discord.calls_to("POST", rf"/channels/{CHEF_ROOM}/messages")
        if call.status == 200
    ]

    async def counted() -> bool:  # the fake shows the reply before the client reads the answer
        found = Scrape.of(telemetry.metrics)
        return found.value(CALLS, platform="discord", method=posted, status="2xx") == len(answered)

    await eventually(counted)
    found = Scrape.of(telemetry.metrics)
    assert found.value(CALLS, platform="discord", method=posted, status="429") == 1
    assert found.value(LIMITED, platform="discord", method=posted) == 1
    assert found.total(CALLS, platform="discord", method="GET /oauth2/applications/@me") == 1
    assert found.total(CALLS, platform="discord", method="POST /channels/:id/typing") >= 1
    assert str(CHEF_ROOM) not in telemetry.metrics.render().decode()


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/chat.postMessage", "chat.postMessage"),
        ("/api/assistant.threads.setStatus", "assistant.threads.setStatus"),
        ("/proxy/slack/api/users.info/", "users.info"),
        ("/api/", "other"),
        ("/api/12345", "other"),
    ],
)
def test_slack_methods_are_the_api_method(path: str, method: str) -> None:
    assert slack_method("POST", URL(f"http://slack.test{path}")) == method


@pytest.mark.parametrize(
    ("verb", "path", "method"),
    [
        ("post", "/api/v10/channels/811000000000000011/messages", "POST /channels/:id/messages"),
        (
            "PATCH",
            "/api/v10/channels/811000000000000011/messages/911000000000000001",
            "PATCH /channels/:id/messages/:id",
        ),
        (
            "POST",
            "/api/v10/interactions/911000000000000001/aW50ZXJhY3Rpb246c2VjcmV0/callback",
            "POST /interactions/:id/:token/callback",
        ),
        (
            "PATCH",
            "/api/v10/webhooks/700000000000000001/aW50ZXJhY3Rpb246c2VjcmV0/messages/@original",
            "PATCH /webhooks/:id/:token/messages/@original",
        ),
        (
            "PUT",
            "/api/v10/channels/1/messages/2/reactions/%F0%9F%91%8D/@me",
            "PUT /channels/:id/messages/:id/reactions/:emoji/@me",
        ),
        ("GET", "/api/v10/gateway/bot", "GET /gateway/bot"),
        ("GET", "/api/v10/users/@me", "GET /users/@me"),
    ],
)
def test_discord_methods_are_routes_without_ids_or_tokens(
    verb: str, path: str, method: str
) -> None:
    assert discord_method(verb, URL(f"http://discord.test{path}")) == method
