"""Every error is ``{"error": {"code", "message"}}`` with its status: oversized bodies, bad
JSON, unknown routes and ids, a store that is down, an unexpected failure. No traceback and
no secret ever reaches a client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
import pytest

from adapters.http.schemas import MAX_SEQ
from adapters.http.turns import TurnNotAnswered
from bot.engine import ApiShareFull, ConversationBusy, EngineBusy, KeyBusy
from tests.adapters.http.helpers import API, client_with, create_conversation, error_of
from tests.support.api import Api, ApiFactory

OPENAI_SECRET = "sk-test-0123456789SECRETabcdef"
MONGO_SECRET = "mongodb://parley:hunter2-SECRET@127.0.0.1:1/parley"


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    """A JSON body sent without Content-Length (chunked), ``count`` pieces of ``size`` bytes."""
    yield b'{"text": "'
    for _ in range(count):
        yield b"a" * size
    yield b'"}'


async def test_an_announced_body_over_the_limit_is_413(api_factory: ApiFactory) -> None:
    api = await api_factory(api_max_body=1024)
    writer = client_with(api, await api.key("write"))
    conversation = await create_conversation(writer)
    url = f"{API}/conversations/{conversation['id']}/messages"

    response = await writer.post(url, json={"text": "a" * 2000})
    error = error_of(response, 413)
    assert error["code"] == "payload_too_large"
    assert "1024 bytes" in error["message"]
    assert (await writer.post(url, json={"text": "a" * 900})).status_code == 200, "under it"
    anonymous = await client_with(api).post(url, json={"text": "a" * 2000})
    assert anonymous.status_code == 413, "refused before anything reads it"


async def test_a_streamed_body_over_the_limit_is_413(api_factory: ApiFactory) -> None:
    api = await api_factory(api_max_body=1024)
    writer = client_with(api, await api.key("write"))
    conversation = await create_conversation(writer)
    cid = conversation["id"]
    headers = {"Content-Type": "application/json"}

    request = writer.build_request(
        "POST", f"{API}/conversations/{cid}/messages", content=chunks(3, 500), headers=headers
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    error = error_of(await writer.send(request), 413)
    assert error["code"] == "payload_too_large"

    plain = error_of(await writer.post(f"/chat/{cid}", content=chunks(3, 500)), 413)
    assert plain["code"] == "payload_too_large"
    agent = error_of(await writer.post(f"{API}/agents", content=chunks(3, 500)), 413)
    assert agent["code"] == "payload_too_large"

    small = await writer.post(
        f"{API}/conversations/{cid}/messages", content=chunks(2, 100), headers=headers
    )
    assert small.status_code == 200, "a streamed body under the limit is read whole"
    assert small.json()["user_message"]["text"] == "a" * 200


async def test_a_streamed_body_over_the_limit_is_413_over_a_real_server(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(api_max_body=1024)
    base = await api.serve()
    async with client_with(api, await api.key("write"), base_url=base) as writer:
        conversation = await create_conversation(writer)
        response = await writer.post(
            f"{API}/conversations/{conversation['id']}/messages",
            content=chunks(4, 500),
            headers={"Content-Type": "application/json"},
        )
        assert error_of(response, 413)["code"] == "payload_too_large"
        assert (await writer.get("/healthz")).status_code == 200, "the server carries on"


async def test_invalid_json_is_400_bad_json(api: Api) -> None:
    writer = await api.as_key("admin")
    conversation = await create_conversation(writer)
    headers = {"Content-Type": "application/json"}
    for url in (
        f"{API}/conversations",
        f"{API}/conversations/{conversation['id']}/messages",
        f"{API}/agents",
    ):
        for body in (b"{not json", b'{"text": "unterminated', b"\xff"):
            response = await writer.post(url, content=body, headers=headers)
            error = error_of(response, 400)
            assert error == {"code": "bad_json", "message": "the body is not valid JSON"}, url


async def test_unknown_routes_and_ids_are_404(api: Api) -> None:
    reader = await api.as_key("read")
    route = error_of(await reader.get(f"{API}/nothing-here"), 404)
    assert route == {"code": "not_found", "message": f"no route GET {API}/nothing-here"}
    assert (await reader.get("/nothing-here")).status_code == 404
    method = error_of(await reader.delete(f"{API}/conversations"), 405)
    assert method["code"] == "method_not_allowed"

    for conversation_id in (
        "0" * 32,
        "..%2F..%2Fetc",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%7B%22%24gt%22%3A%22%22%7D",
        "A" * 32,
        "0" * 33,
        "%00",
    ):
        for suffix in ("", "/messages", "/goal-checks", "/export"):
            response = await reader.get(f"{API}/conversations/{conversation_id}{suffix}")
            assert error_of(response, 404)["code"] == "not_found", (conversation_id, suffix)
            assert "root:" not in response.text


async def test_a_store_that_is_down_is_503_without_details(api: Api) -> None:
    reader = await api.as_key("read")
    conversation = await create_conversation(await api.as_key("write"))
    await api.store.close()

    for url in (
        f"{API}/conversations",
        f"{API}/conversations/{conversation['id']}",
        f"{API}/agents",
    ):
        response = await reader.get(url)
        assert error_of(response, 503) == {
            "code": "store_unavailable",
            "message": "the store cannot be reached; try again shortly",
        }
        assert "Traceback" not in response.text
        assert "sqlite" not in response.text.lower()
        assert "engine.sqlite3" not in response.text
    ready = await client_with(api).get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"] is False


def boom(*args: Any, **kwargs: Any) -> NoReturn:
    raise RuntimeError(f"driver exploded connecting to {MONGO_SECRET} with {OPENAI_SECRET}")


async def test_an_unexpected_failure_is_500_generic_and_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = await api.key("read")
    monkeypatch.setattr(api.store, "list_conversations", boom)
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://parley.test",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        with caplog.at_level(logging.ERROR, logger="adapters.http.errors"):
            response = await client.get(f"{API}/conversations")

    assert error_of(response, 500) == {
        "code": "internal",
        "message": "something went wrong on our side",
    }
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert "hunter2" not in response.text
    assert OPENAI_SECRET not in response.text
    logged = [r for r in caplog.records if r.name == "adapters.http.errors"]
    assert logged, "the failure is logged on the server"
    assert logged[0].exc_info is not None
    assert "GET /api/v1/conversations" in logged[0].getMessage()


async def test_a_parley_failure_on_our_side_is_500_generic_and_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A ParleyError that is our failure (the model's, the journal's) says so in one generic
    line: its message, which may name internals, stays in the log with the traceback."""
    reader = await api.as_key("read")

    def fail(*args: Any, **kwargs: Any) -> NoReturn:
        raise TurnNotAnswered(f"gave up on a turn for {MONGO_SECRET}")

    monkeypatch.setattr(api.store, "list_conversations", fail)
    with caplog.at_level(logging.ERROR, logger="adapters.http.errors"):
        response = await reader.get(f"{API}/conversations")

    assert error_of(response, 500) == {
        "code": "internal",
        "message": "something went wrong on our side",
    }
    assert "hunter2" not in response.text
    assert "TurnNotAnswered" not in response.text
    logged = [r for r in caplog.records if r.name == "adapters.http.errors"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "GET /api/v1/conversations" in logged[0].getMessage()


async def test_a_store_that_is_down_is_logged_as_one_line(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    reader = await api.as_key("read")
    await api.store.close()
    with caplog.at_level(logging.WARNING, logger="adapters.http.errors"):
        response = await reader.get(f"{API}/conversations")

    assert error_of(response, 503)["code"] == "store_unavailable"
    logged = [r for r in caplog.records if r.name == "adapters.http.errors"]
    assert [r.levelno for r in logged] == [logging.WARNING]
    assert logged[0].exc_info is None
    assert "store_unavailable on GET /api/v1/conversations" in logged[0].getMessage()


async def test_no_error_body_ever_shows_a_configured_secret(
    api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await api_factory(
        openai_api_key=OPENAI_SECRET, mongodb_uri=MONGO_SECRET, api_max_body=1024
    )
    admin = client_with(api, await api.key("admin"))
    conversation = await create_conversation(admin, agent_id="plain")
    cid = conversation["id"]
    responses = [
        await client_with(api).get(f"{API}/agents"),
        await client_with(api, OPENAI_SECRET).get(f"{API}/agents"),
        await admin.get(f"{API}/conversations/{'0' * 32}"),
        await admin.get(f"{API}/nope"),
        await admin.post(
            f"{API}/conversations", content=b"{", headers={"Content-Type": "application/json"}
        ),
        await admin.post(f"{API}/conversations", json={"agent_id": OPENAI_SECRET}),
        await admin.post(f"{API}/conversations/{cid}/messages", json={"text": "x" * 5000}),
        await admin.post(f"{API}/conversations/{cid}/goal-check"),
        await admin.put(
            f"{API}/agents/chef",
            json={"id": "chef", "name": "x", "context": "c", "first_message": "f"},
        ),
        await admin.post(f"{API}/agents", json={"id": "x", "name": MONGO_SECRET}),
        await admin.get(f"{API}/conversations", params={"limit": MONGO_SECRET}),
    ]
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://parley.test", headers=admin.headers
    ) as unguarded:
        monkeypatch.setattr(api.store, "list_conversations", boom)
        responses.append(await unguarded.get(f"{API}/conversations"))
        monkeypatch.undo()
        await api.store.close()
        responses.append(await unguarded.get(f"{API}/conversations"))
        responses.append(await unguarded.get("/readyz"))

    statuses = [response.status_code for response in responses]
    assert statuses == [401, 401, 404, 404, 400, 422, 413, 409, 409, 422, 422, 500, 503, 503]
    for response in responses:
        text = response.text + str(response.headers)
        assert OPENAI_SECRET not in text, response.request.url
        assert "hunter2" not in text, response.request.url
        assert MONGO_SECRET not in text, response.request.url


async def test_integer_query_parameters_past_any_position_are_422_not_500(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    cid = conversation["id"]
    huge = 10**30
    cases = [
        (f"{API}/conversations/{cid}/messages", "before"),
        (f"{API}/conversations/{cid}/messages", "limit"),
        (f"{API}/conversations", "limit"),
        (f"{API}/conversations", "offset"),
        (f"{API}/conversations/{cid}/goal-checks", "limit"),
    ]
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://parley.test", headers=writer.headers
    ) as client:
        with caplog.at_level(logging.WARNING):
            for url, name in cases:
                for value in (huge, -huge, MAX_SEQ + 1):
                    response = await client.get(url, params={name: value})
                    error = error_of(response, 422)
                    assert error["code"] == "invalid", (url, name, value)
                    assert error["message"].startswith(f"{name}: "), error
            last = await client.get(
                f"{API}/conversations/{cid}/messages", params={"before": MAX_SEQ}
            )
    assert last.status_code == 200, "the bound itself is a valid position"
    assert [m["seq"] for m in last.json()["items"]] == [1]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], (
        "nothing reached the store or the 500 handler"
    )


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (KeyBusy("this key already has 4 turns running or waiting"), 429, "too_many_turns"),
        (ConversationBusy("this conversation already has 8"), 429, "conversation_busy"),
        (ApiShareFull("the API is handling too many messages"), 503, "busy"),
        (EngineBusy("too many messages are waiting"), 503, "busy"),
    ],
)
async def test_a_refused_turn_is_its_status_with_retry_after_on_every_route(
    api: Api, monkeypatch: pytest.MonkeyPatch, refusal: EngineBusy, status: int, code: str
) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    url = f"{API}/conversations/{conversation['id']}/messages"

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise refusal

    monkeypatch.setattr(api.engine, "admit", refuse)
    responses = [
        await writer.post(url, json={"text": "hi"}),
        await writer.post(url, json={"text": "hi"}, headers={"Accept": "text/event-stream"}),
        await writer.post(f"/chat/{conversation['id']}", content="hi"),
    ]
    for response in responses:
        assert error_of(response, status) == {"code": code, "message": str(refusal)}
        assert response.headers["retry-after"] == str(refusal.retry_after)
