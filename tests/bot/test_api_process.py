"""``python -m bot run`` serving the HTTP API as a plain process, as a user runs it from the
README: a key made with ``python -m bot keys create``, the seed's two-session curl demo, SSE,
and an agent created through one process used by another sharing the store."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.support.fake_openai import FakeOpenAI
from tests.support.loopback import free_port
from tests.support.process import REPO, create_key, run_bot, start_bot, stop_bot, wait_healthy

START = 60.0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    return tmp_path


def settings(workdir: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "sk-api-process-secret",
        "BOT_DATA_DIR": str(workdir / "data"),
    }


async def serve(workdir: Path, name: str, **env: str) -> AsyncIterator[str]:
    port = free_port()
    log = workdir / f"{name}.log"
    process = await start_bot(workdir, log, "run", PORT=str(port), **env)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, process, log, within=START)
        yield base
    finally:
        code = await stop_bot(process)
        text = log.read_text()
        assert code == 0, text
        assert "Traceback" not in text
        assert "sk-api-process-secret" not in text
        assert "No chat platform is configured" in text
        assert "serving the HTTP API" in text


@pytest.fixture
async def bot(workdir: Path, fake_openai: FakeOpenAI) -> AsyncIterator[str]:
    async for base in serve(workdir, "bot", **settings(workdir, fake_openai)):
        yield base


async def test_keys_are_printed_once_and_stored_only_as_hashes(
    workdir: Path, fake_openai: FakeOpenAI
) -> None:
    env = settings(workdir, fake_openai)
    made = await run_bot(workdir, "keys", "create", "--name", "shop", "--scope", "write", **env)
    assert made.code == 0, made.err
    key = made.out.strip().splitlines()[-1]
    assert key.startswith("pk_")
    assert len(key) == 46
    listed = await run_bot(workdir, "keys", "list", **env)
    assert "shop" in listed.out
    assert "write" in listed.out
    assert "active" in listed.out
    assert key not in listed.out
    assert key.encode() not in (workdir / "data" / "parley.sqlite3").read_bytes()

    duplicate = await run_bot(workdir, "keys", "create", "--name", "shop", "--scope", "read", **env)
    assert duplicate.code == 1
    assert "shop" in duplicate.err
    assert "Traceback" not in duplicate.err
    revoked = await run_bot(workdir, "keys", "revoke", "shop", **env)
    assert revoked.code == 0
    assert "Revoked" in revoked.out
    assert "revoked" in (await run_bot(workdir, "keys", "list", **env)).out
    again = await run_bot(workdir, "keys", "revoke", "shop", **env)
    assert again.code == 1
    assert "no active API key 'shop'" in again.err
    bad = await run_bot(workdir, "keys", "create", "--name", "x", "--scope", "root", **env)
    assert bad.code == 2
    assert "invalid choice" in bad.err


async def test_the_seed_curl_demo_remembers_bob_and_matt(
    workdir: Path, fake_openai: FakeOpenAI, bot: str
) -> None:
    key = await create_key(workdir, "--name", "demo", "--scope", "write")
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=bot, headers=auth, timeout=30) as curl:
        first = (await curl.post("/chat")).text.strip()
        second = (await curl.post("/chat")).text.strip()
        assert first != second
        assert len(first) == 32

        form = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
        await curl.post(f"/chat/{first}", content="Hi! My name is Bob.", headers=form)
        await curl.post(f"/chat/{second}", content="Hi! My name is Matt.", headers=form)
        chunks: list[str] = []
        async with curl.stream(
            "POST", f"/chat/{first}", content="What's my name again?", headers=form
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            assert response.headers.get("transfer-encoding") == "chunked"
            chunks = [chunk async for chunk in response.aiter_text()]
        assert "".join(chunks) == "Your name is Bob.\n"
        matt = await curl.post(f"/chat/{second}", content="What's my name again?", headers=form)
        assert matt.text == "Your name is Matt.\n"

        anonymous = await curl.post("/chat", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "unauthorized"


async def test_sse_and_docs_through_the_process(
    workdir: Path, fake_openai: FakeOpenAI, bot: str
) -> None:
    key = await create_key(workdir, "--name", "crm", "--scope", "write", "--agents", "chef")
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=bot, headers=auth, timeout=30) as client:
        created = await client.post("/api/v1/conversations", json={"agent_id": "chef"})
        assert created.status_code == 201, created.text
        conversation = created.json()["id"]
        events = []
        async with aconnect_sse(
            client,
            "POST",
            f"/api/v1/conversations/{conversation}/messages",
            json={"text": "my name is Ada", "author": "Ada"},
        ) as source:
            events = [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse()]
        names = [name for name, _ in events]
        assert names[-2:] == ["message", "done"]
        assert set(names[:-2]) == {"delta"}
        message = events[-2][1]
        assert message["reply"]["data"]["answer"] == message["text"]
        assert events[-3][1]["text"] == message["text"]

        tutor = await client.post("/api/v1/conversations", json={"agent_id": "tutor"})
        assert tutor.status_code == 403
        assert (await client.get("/api/docs")).status_code == 200
        spec = (await client.get("/api/v1/openapi.json")).json()
        assert "/api/v1/conversations/{conversation_id}/messages" in spec["paths"]
        ready = await client.get("/readyz")
        assert ready.json() == {
            "status": "ready",
            "checks": {"store": True, "agents": True, "model": True, "journal_backlog": 0},
        }


async def test_an_agent_created_through_one_process_is_used_by_another(
    workdir: Path, fake_openai: FakeOpenAI
) -> None:
    env = settings(workdir, fake_openai)
    key = await create_key(workdir, "--name", "admin", "--scope", "admin", **env)
    auth = {"Authorization": f"Bearer {key}"}
    pirate = {
        "id": "pirate",
        "name": "Pirate",
        "context": "You are a pirate who talks about the sea.",
        "first_message": "Ahoy! What be yer name?",
        "response_shape": {"answer": "String, the reply", "mood": "String, the mood"},
    }
    async for first in serve(workdir, "first", **env):
        async for second in serve(workdir, "second", **env):
            async with httpx.AsyncClient(headers=auth, timeout=30) as client:
                made = await client.post(f"{first}/api/v1/agents", json=pirate)
                assert made.status_code == 201, made.text
                assert made.json()["source"] == "store"
                opened = await client.post(
                    f"{second}/api/v1/conversations", json={"agent_id": "pirate"}
                )
                assert opened.status_code == 201, opened.text
                conversation = opened.json()["id"]
                turn = await client.post(
                    f"{second}/api/v1/conversations/{conversation}/messages",
                    json={"text": "my name is Anne"},
                )
                assert turn.status_code == 200, turn.text
                assert set(turn.json()["data"]) == {"answer", "mood"}
                messages = await client.get(
                    f"{second}/api/v1/conversations/{conversation}/messages"
                )
                oldest = messages.json()["items"][-1]
                assert oldest["text"] == "Ahoy! What be yer name?"
                listed = await client.get(f"{second}/api/v1/agents")
                assert "pirate" in [agent["id"] for agent in listed.json()]
    prompt = fake_openai.chat_requests()[-1].system_text
    assert "You are a pirate who talks about the sea." in prompt
