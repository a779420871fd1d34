"""``/slack/events`` belongs to the Slack adapter: built with the bot's HTTP server, it mounts
the route at once, which answers 503 until HTTP mode serves it."""

from __future__ import annotations

from pathlib import Path

import httpx

from adapters.http.host import WebHost
from adapters.slack import SlackAdapter
from config.settings import Settings
from tests.support.engines import EngineFactory


async def test_the_adapter_mounts_its_route_on_the_web_host(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-test",
        slack_mode="http",
        slack_signing_secret="signing-secret",
        bot_data_dir=tmp_path,
    )
    web = WebHost(host="127.0.0.1", port=0, settings=settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web.app), base_url="http://parley.test"
    ) as client:
        assert (await client.post("/slack/events", content=b"{}")).status_code == 404
        SlackAdapter(settings=settings, engine=make_engine(), web=web)
        response = await client.post("/slack/events", content=b"x" * 100_000)
        assert response.status_code == 503, "Slack's body limit, then not running yet"
        assert "not running" in response.json()["error"]["message"]
