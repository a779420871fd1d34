"""The HTTP package knows no platform: a platform adapter mounts its own routes, with their
body limits, on the bot's HTTP server, before or after it starts."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from adapters.http.host import WebHost
from tests.support.imports import imported


class Webhook:
    """A platform's route: reads the whole body and says how long it was."""

    def __init__(self, max_body: int) -> None:
        self.router = APIRouter(include_in_schema=False)
        self.body_limits: Mapping[str, int] = {"/hooks/platform": max_body}

        @self.router.post("/hooks/platform")
        async def hook(request: Request) -> JSONResponse:
            return JSONResponse({"bytes": len(await request.body())})


def test_the_http_package_imports_no_platform_code() -> None:
    script = "import adapters.http.host, adapters.http.app"
    platforms = ("slack", "slack_sdk", "slack_bolt", "discord", "adapters.slack")
    assert imported(script, *platforms, "adapters.discord", "adapters.terminal") == []


async def test_a_route_mounted_after_the_app_was_built_brings_its_body_limit() -> None:
    web = WebHost(host="127.0.0.1", port=0)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web.app), base_url="http://parley.test"
    ) as client:
        assert (await client.post("/hooks/platform", content=b"x")).status_code == 404
        web.mount(Webhook(max_body=200_000))
        big = await client.post("/hooks/platform", content=b"x" * 100_000)
        assert big.json() == {"bytes": 100_000}
        too_big = await client.post("/hooks/platform", content=b"x" * 200_001)
        assert too_big.status_code == 413
        elsewhere = await client.post("/api/v1/agents", content=b"x" * 100_000)
        assert elsewhere.status_code == 413, "the API keeps its own limit"
