"""The web host's HTTP access log: one JSON line per request in JSON log mode, none in text
mode (people reading a terminal do not want every health check)."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from adapters.http.host import WebHost
from bot.logs import configure_logging
from config.settings import Settings


async def served_lines(log_format: str) -> list[dict[str, object]]:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    settings = Settings(_env_file=None, log_format=log_format)  # type: ignore[call-arg]
    host = WebHost(host="127.0.0.1", port=0, settings=settings)
    await host.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.port}") as client:
            assert (await client.get("/healthz?probe=1")).status_code == 200
    finally:
        await host.stop()
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
async def test_json_mode_logs_each_request() -> None:
    lines = await served_lines("json")
    (access,) = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert "GET /healthz?probe=1" in str(access["message"])
    assert str(access["message"]).endswith(" 200")


@pytest.mark.usefixtures("restore_logging")
async def test_text_mode_logs_no_requests() -> None:
    lines = await served_lines("text")
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
