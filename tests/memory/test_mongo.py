"""What only the MongoDB store has: URI redaction, secret hygiene, connection failures."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

import pytest
from pymongo import MongoClient

from bot.errors import StoreError
from memory.base import PlatformKey
from memory.mongo import MongoStore, redact_uri
from tests.support.loopback import free_port
from tests.support.process import REPO

PASSWORD = "s3cr%40t%3Apa%2Fss"
"""``s3cr@t:pa/ss`` percent-encoded: no piece of either spelling may show anywhere."""

SECRETS = ("s3cr", "pa/ss", "pa%2Fss")


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"),
        ("mongodb://localhost/parley", "mongodb://localhost/parley"),
        (
            "mongodb://parley:hunter2@db.example:27017/parley?authSource=admin",
            "mongodb://parley:***@db.example:27017/parley?authSource=admin",
        ),
        (
            "mongodb+srv://parley:hunter2@cluster0.example.net/parley?retryWrites=true&w=majority",
            "mongodb+srv://parley:***@cluster0.example.net/parley?retryWrites=true&w=majority",
        ),
        (
            "mongodb://parley:p%40ss%3Aw%2Frd@a:27017,b:27018/parley?replicaSet=rs0",
            "mongodb://parley:***@a:27017,b:27018/parley?replicaSet=rs0",
        ),
        ("mongodb://user@host:27017/db", "mongodb://user@host:27017/db"),
        ("mongodb://user:@host", "mongodb://user:***@host"),
        ("mongodb://us:p@ss/w:rd@host/db", "mongodb://us:***@host/db"),
        (
            "mongodb://host/?tls=true&tlsCertificateKeyFilePassword=hunter2",
            "mongodb://host/?tls=true&tlsCertificateKeyFilePassword=***",
        ),
        (
            "mongodb://host/?authMechanism=MONGODB-AWS"
            "&authMechanismProperties=SERVICE_NAME:mongo,AWS_SESSION_TOKEN:hunter2",
            "mongodb://host/?authMechanism=MONGODB-AWS"
            "&authMechanismProperties=SERVICE_NAME:mongo,AWS_SESSION_TOKEN:***",
        ),
    ],
)
def test_redact_uri(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected
    assert "hunter2" not in redact_uri(uri)


def test_repr_and_description_hide_the_password() -> None:
    store = MongoStore(uri=f"mongodb://parley:{PASSWORD}@db.example:27017", database="parley")
    assert store.description == "MongoDB (mongodb://parley:***@db.example:27017, database parley)"
    assert_no_secret(repr(store))
    assert_no_secret(store.description)
    assert not any(
        isinstance(value, str) and "s3cr" in value
        for name, value in vars(store).items()
        if not name.startswith("_")
    )


_UNREACHABLE = """
import asyncio, json, sys
from memory.base import PlatformKey
from memory.mongo import MongoStore
from bot.errors import StoreError, StoreUnavailable

async def main():
    store = MongoStore(uri=sys.argv[1], database="parley", server_selection_timeout_ms=300)
    report = {}
    try:
        await store.open()
    except StoreUnavailable as exc:
        chain, error = [], exc
        while error is not None:
            chain.append(str(error))
            error = error.__cause__
        report["open"] = chain
    report["ping"] = await store.ping()
    try:
        await store.find_conversation(key=PlatformKey(platform="console", channel="main"))
    except StoreError as exc:
        report["find"] = type(exc).__name__
    await store.close()
    print(json.dumps(report))

asyncio.run(main())
"""


async def test_unreachable_server() -> None:
    """Runs in a process of its own: PyMongo's async monitor can leave the socket of a
    cancelled connection attempt unclosed, and that ResourceWarning would otherwise surface in
    whichever test the garbage collector happens to run in."""
    uri = f"mongodb://parley:{PASSWORD}@127.0.0.1:{free_port()}/parley?authSource=admin"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _UNREACHABLE,
        uri,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["open"], "open() raised StoreUnavailable"
    assert "unreachable" in report["open"][0]
    for message in report["open"]:
        assert_no_secret(message)
    assert report["ping"] is False
    assert report["find"] in {"StoreError", "StoreUnavailable"}
    assert_no_secret(err.decode())


async def test_invalid_uri_is_a_store_error_without_the_password() -> None:
    """The driver quotes pieces of a URI it cannot parse, such as an unescaped password."""
    store = MongoStore(uri="mongodb://parley:s3cr@t:pa/ss@127.0.0.1/parley", database="parley")
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True
    assert_no_secret(str(caught.value))
    assert await store.ping() is False


async def test_invalid_uri_without_credentials_explains_itself() -> None:
    store = MongoStore(uri="mongodb://127.0.0.1:notaport", database="parley")
    with pytest.raises(StoreError, match="port"):
        await store.open()


async def test_two_closed_conversations_share_a_key(secantus_uri: str, mongo_database: str) -> None:
    """The unique key index holds only open conversations, so closed ones never collide."""
    store = MongoStore(uri=secantus_uri, database=mongo_database)
    await store.open()
    try:
        key = PlatformKey(platform="console", channel="main")
        ids = set()
        for _ in range(3):
            conversation, created = await store.get_or_create_conversation(key=key, agent_id="a")
            assert created is True
            ids.add(conversation.id)
            assert await store.close_conversation(conversation_id=conversation.id)
        assert len(ids) == 3
    finally:
        await store.close()


async def test_keys_from_before_place_limits_reach_everywhere(
    secantus_uri: str, mongo_database: str
) -> None:
    """A key document without platforms and workspaces reads as limited to no place."""
    client: MongoClient[dict[str, object]] = MongoClient(secantus_uri)
    try:
        client[mongo_database]["api_keys"].insert_one(
            {
                "_id": "a" * 32,
                "name": "old",
                "active_name": "old",
                "scope": "read",
                "agents": ["chef"],
                "key_hash": "b" * 64,
                "hint": "pk_old…",
                "created_at": datetime(2025, 1, 1, tzinfo=UTC),
                "last_used_at": None,
                "revoked_at": None,
            }
        )
    finally:
        client.close()
    store = MongoStore(uri=secantus_uri, database=mongo_database)
    await store.open()
    try:
        old = await store.find_api_key(key_hash="b" * 64)
        assert old is not None
        assert (old.name, old.agents, old.platforms, old.workspaces) == ("old", ("chef",), (), ())
    finally:
        await store.close()
