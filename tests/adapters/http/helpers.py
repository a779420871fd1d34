"""Small helpers for the HTTP API tests: clients holding a key, and the calls most tests make."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import Api

API = "/api/v1"


def client_with(
    api: Api, key: str | None = None, *, base_url: str | None = None
) -> httpx.AsyncClient:
    """A client sending ``key`` (none when None): on the app in-process, or on ``base_url``
    (a real server from ``api.serve()``)."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    if base_url is not None:
        return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10.0)
    return httpx.AsyncClient(
        transport=api.client._transport, base_url=api.client.base_url, headers=headers
    )


async def create_conversation(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/conversations", json=body)
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


async def say(client: httpx.AsyncClient, conversation_id: str, text: str) -> dict[str, Any]:
    response = await client.post(
        f"{API}/conversations/{conversation_id}/messages", json={"text": text}
    )
    assert response.status_code == 200, response.text
    turn: dict[str, Any] = response.json()
    return turn


async def history(client: httpx.AsyncClient, conversation_id: str) -> list[tuple[str, str]]:
    """(role, text) of every message, oldest first."""
    response = await client.get(f"{API}/conversations/{conversation_id}/messages")
    assert response.status_code == 200, response.text
    return [(m["role"], m["text"]) for m in reversed(response.json()["items"])]


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    """The ``{"code", "message"}`` of an error response, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    error: dict[str, str] = body["error"]
    return error
