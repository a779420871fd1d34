"""The seed's plain-text chat: ``POST /chat`` gives an id, ``POST /chat/{id}`` streams the
reply as text. The two-session demo (Bob and Matt) runs in-process, at both paths."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.adapters.http.helpers import API, client_with, error_of, history
from tests.support.api import Api
from tests.support.fake_openai import FakeOpenAI, Reply


async def new_chat(client: httpx.AsyncClient, prefix: str) -> str:
    response = await client.post(f"{prefix}/chat")
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.endswith("\n")
    return response.text.strip()


async def chat(client: httpx.AsyncClient, prefix: str, conversation_id: str, text: str) -> str:
    response = await client.post(f"{prefix}/chat/{conversation_id}", content=text)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    return response.text


@pytest.mark.parametrize("prefix", ["", API])
async def test_two_sessions_remember_their_own_names(api: Api, prefix: str) -> None:
    client = await api.as_key("write")
    bob = await new_chat(client, prefix)
    matt = await new_chat(client, prefix)
    assert bob != matt

    assert await chat(client, prefix, bob, "Hi, my name is Bob.") == (
        "You said: Hi, my name is Bob.\n"
    )
    assert await chat(client, prefix, matt, "Hi, my name is Matt.") == (
        "You said: Hi, my name is Matt.\n"
    )
    assert await chat(client, prefix, bob, "What's my name again?") == "Your name is Bob.\n"
    assert await chat(client, prefix, matt, "What's my name again?") == "Your name is Matt.\n"

    conversation = (await client.get(f"{API}/conversations/{bob}")).json()
    assert conversation["agent_id"] == "chef"
    assert conversation["key"]["platform"] == "api"
    assert [text for role, text in await history(client, bob) if role == "user"] == [
        "Hi, my name is Bob.",
        "What's my name again?",
    ]


async def test_the_reply_arrives_in_chunks_over_a_real_server(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    base = await api.serve()
    answer = "Saffron, rice, stock, and patience make a paella."
    whole = {"answer": answer, "recipes": ["Paella"], "ingredients": [], "summary": "paella"}
    fake_openai.script(Reply(content=json.dumps(whole), chunk_size=6, chunk_delay=0.02))

    async with client_with(api, await api.key("write"), base_url=base) as client:
        conversation_id = await new_chat(client, "")
        chunks = []
        async with client.stream(
            "POST", f"/chat/{conversation_id}", content="How do I make paella?"
        ) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            chunks = [chunk async for chunk in response.aiter_text()]
    assert len(chunks) >= 3, chunks
    assert "".join(chunks) == answer + "\n"
    assert "{" not in "".join(chunks), "the visible field, never the JSON"


async def test_chat_errors(api: Api) -> None:
    writer = await api.as_key("write")
    conversation_id = await new_chat(writer, "")

    empty = error_of(await writer.post(f"/chat/{conversation_id}", content="  \n"), 422)
    assert "empty" in empty["message"]
    not_utf8 = error_of(await writer.post(f"/chat/{conversation_id}", content=b"\xff\xfe"), 400)
    assert "UTF-8" in not_utf8["message"]
    too_long = error_of(await writer.post(f"/chat/{conversation_id}", content="x" * 32_001), 422)
    assert "32000" in too_long["message"]
    assert (await writer.post(f"/chat/{'0' * 32}", content="hi")).status_code == 404
    assert (await writer.post("/chat/not-an-id", content="hi")).status_code == 404
    assert len(await history(writer, conversation_id)) == 1, "nothing was said"

    anonymous = client_with(api)
    assert error_of(await anonymous.post("/chat"), 401)["code"] == "unauthorized"
    reader = await api.as_key("read")
    assert error_of(await reader.post("/chat"), 403)["code"] == "forbidden"
    assert (await reader.post(f"/chat/{conversation_id}", content="hi")).status_code == 403
