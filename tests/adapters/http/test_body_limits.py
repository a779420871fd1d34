"""Body limits belong to routes: a platform's mounted route takes what its platform sends
(Slack's events: SLACK_MAX_BODY, 1 MiB by default) while the API keeps API_MAX_BODY (64 KiB
by default)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.http.limits import BodyLimit
from adapters.http.mounts import mount
from adapters.slack.routes import SlackEvents
from tests.adapters.http.helpers import API, client_with, create_conversation, error_of
from tests.support.api import Api

BIG = 200_000
"""A 40,000-character Slack message with blocks repeating it is about this size."""


class BodyLength:
    """Stands in for Bolt's handler: reads the whole body and says how long it was."""

    async def handle(self, request: Request) -> JSONResponse:
        return JSONResponse({"bytes": len(await request.body())})


def mount_slack_events(api: Api) -> None:
    """``/slack/events`` mounted as the Slack adapter mounts it, Bolt's handler stood in for."""
    app = api.app
    assert isinstance(app, FastAPI)
    events = SlackEvents(max_body=api.services.settings.slack_max_body)
    events.handler = BodyLength()  # type: ignore[assignment]
    mount(app, events)


async def streamed(size: int, chunk: int = 16_384) -> AsyncIterator[bytes]:
    for start in range(0, size, chunk):
        yield b"x" * min(chunk, size - start)


async def test_slack_events_take_what_slack_sends_while_the_api_keeps_its_limit(
    api: Api,
) -> None:
    mount_slack_events(api)
    client = client_with(api)
    limits = api.services.settings
    assert (limits.api_max_body, limits.slack_max_body) == (65_536, 1_048_576)

    announced = await client.post("/slack/events", content=b"x" * BIG)
    assert announced.json() == {"bytes": BIG}
    chunked = await client.post("/slack/events", content=streamed(BIG))
    assert chunked.json() == {"bytes": BIG}

    too_big = limits.slack_max_body + 1
    error = error_of(await client.post("/slack/events", content=b"x" * too_big), 413)
    assert f"{limits.slack_max_body} bytes" in error["message"]
    assert error_of(await client.post("/slack/events", content=streamed(too_big)), 413)

    writer = client_with(api, await api.key("write"))
    conversation = await create_conversation(writer)
    url = f"{API}/conversations/{conversation['id']}/messages"
    error = error_of(await writer.post(url, json={"text": "a" * BIG}), 413)
    assert "65536 bytes" in error["message"]
    assert error_of(await writer.post(url, content=streamed(BIG)), 413)
    error = error_of(await client.post("/slack/events-not", content=b"x" * BIG), 413)
    assert "65536 bytes" in error["message"], "only Slack's own path gets Slack's limit"


async def test_a_real_server_takes_a_big_slack_body(api: Api) -> None:
    mount_slack_events(api)
    base = await api.serve()
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        response = await client.post("/slack/events", content=b"x" * BIG)
        assert response.json() == {"bytes": BIG}


def test_the_longest_matching_prefix_wins_on_path_boundaries() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    limit = BodyLimit(app, limit=10, by_path={"/slack/events": 100, "/slack": 50, "/a/": 7})
    assert limit.limit_for("/slack/events") == 100
    assert limit.limit_for("/slack/events/extra") == 100
    assert limit.limit_for("/slack/eventsX") == 50
    assert limit.limit_for("/slack") == 50
    assert limit.limit_for("/slackish") == 10
    assert limit.limit_for("/a") == 7
    assert limit.limit_for("/api/v1/agents") == 10
