"""The model client as logs and reprs show it."""

from __future__ import annotations

from bot.llm import OpenAIModelClient


async def test_the_base_url_is_shown_without_its_password() -> None:
    client = OpenAIModelClient(
        api_key="sk-x", base_url="http://u:hunter2@llm:8000/v1", timeout=1.0, max_retries=0
    )
    assert client.description == "OpenAI-compatible API at http://u:***@llm:8000/v1"
    assert "hunter2" not in repr(client)
