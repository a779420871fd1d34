"""The API key records' contract, run unchanged against each store."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import Conflict
from memory.base import (
    ConversationStore,
    NewApiKey,
    is_valid_id,
)
from tests.memory.helpers import (
    HOSTILE,
    key_hash,
    new_key,
)
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory


async def test_add_find_and_list_api_keys(store_factory: StoreFactory, clock: FakeClock) -> None:
    store = await store_factory()
    assert await store.list_api_keys() == []
    ci = await store.add_api_key(
        new_key("ci", key="pk_ci_secret", scope="write", agents=("chef", "tutor"), hint="pk_ci…")
    )
    assert is_valid_id(ci.id)
    assert (ci.name, ci.scope, ci.agents, ci.hint) == ("ci", "write", ("chef", "tutor"), "pk_ci…")
    assert ci.key_hash == key_hash("pk_ci_secret")
    assert ci.created_at == clock.now
    assert ci.last_used_at is None
    assert ci.revoked_at is None

    clock.advance(1)
    admin = await store.add_api_key(new_key("admin", scope="admin"))
    assert admin.agents == ()
    assert admin.id != ci.id

    other_process = await store_factory()
    assert await other_process.find_api_key(key_hash=key_hash("pk_ci_secret")) == ci
    assert await other_process.find_api_key(key_hash=admin.key_hash) == admin
    assert await store.find_api_key(key_hash=key_hash("pk_unknown")) is None
    assert await other_process.list_api_keys() == [ci, admin]


async def test_api_keys_keep_their_place_limits(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = await store_factory()
    slack = await store.add_api_key(
        new_key("slack-t1", platforms=("slack",), workspaces=("T01ABC", "dm"), agents=("chef",))
    )
    assert (slack.platforms, slack.workspaces) == (("slack",), ("T01ABC", "dm"))
    clock.advance(1)
    everywhere = await store.add_api_key(new_key("everywhere"))
    assert (everywhere.platforms, everywhere.workspaces) == ((), ())

    other_process = await store_factory()
    assert await other_process.find_api_key(key_hash=slack.key_hash) == slack
    assert await other_process.list_api_keys() == [slack, everywhere]


def test_new_api_key_validates_place_limits() -> None:
    for workspace in ("", '{"$gt": ""}', "T1 T2", "-T1", "a" * 65, "dm\n", "ÉQUIPE"):
        with pytest.raises(ValueError, match="workspaces"):
            new_key("ci", workspaces=(workspace,))
    with pytest.raises(ValueError, match="platforms"):
        new_key("ci", platforms=("telegram",))
    with pytest.raises(ValueError, match="workspaces"):
        new_key("ci", workspaces=tuple(f"T{n}" for n in range(101)))
    limited = new_key("ci", workspaces=("T0123ABCD", "123456789012345678", "dm", "a" * 64))
    assert len(limited.workspaces) == 4


async def test_api_keys_list_oldest_first(store: ConversationStore, clock: FakeClock) -> None:
    names = ["zulu", "alpha", "mike"]
    for name in names:
        clock.advance(1)
        await store.add_api_key(new_key(name))
    assert [key.name for key in await store.list_api_keys()] == names


async def test_duplicate_api_keys_conflict(store: ConversationStore) -> None:
    first = await store.add_api_key(new_key("ci", key="pk_one"))
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("ci", key="pk_two"))
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("deploy", key="pk_one"))
    assert await store.list_api_keys() == [first]
    assert await store.find_api_key(key_hash=key_hash("pk_two")) is None


async def test_revoke_frees_the_name(store: ConversationStore, clock: FakeClock) -> None:
    old = await store.add_api_key(new_key("ci", key="pk_old"))
    clock.advance(2)
    assert await store.revoke_api_key(key_id=old.id) is True
    assert await store.revoke_api_key(key_id=old.id) is False
    revoked = await store.find_api_key(key_hash=old.key_hash)
    assert revoked is not None
    assert revoked.revoked_at == clock.now
    assert revoked.model_copy(update={"revoked_at": None}) == old

    clock.advance(1)
    new = await store.add_api_key(new_key("ci", key="pk_new"))
    assert new.id != old.id
    assert new.revoked_at is None
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("ci", key="pk_newer"))
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("other", key="pk_old"))
    assert [key.id for key in await store.list_api_keys()] == [old.id, new.id]
    assert (await store.list_api_keys())[0].revoked_at == revoked.revoked_at

    assert await store.revoke_api_key(key_id="f" * 32) is False
    assert await store.revoke_api_key(key_id='{"$gt": ""}') is False
    still = await store.find_api_key(key_hash=new.key_hash)
    assert still is not None
    assert still.revoked_at is None


async def test_touch_api_key_uses_the_store_clock(
    store: ConversationStore, clock: FakeClock
) -> None:
    key = await store.add_api_key(new_key("ci"))
    other = await store.add_api_key(new_key("other"))
    clock.advance(30)
    await store.touch_api_key(key_id=key.id)
    touched = await store.find_api_key(key_hash=key.key_hash)
    assert touched is not None
    assert touched.last_used_at == clock.now
    assert touched.created_at == key.created_at
    untouched = await store.find_api_key(key_hash=other.key_hash)
    assert untouched == other

    clock.advance(30)
    await store.touch_api_key(key_id=key.id)
    again = await store.find_api_key(key_hash=key.key_hash)
    assert again is not None
    assert again.last_used_at == clock.now
    await store.touch_api_key(key_id="e" * 32)
    await store.touch_api_key(key_id="not an id")
    assert len(await store.list_api_keys()) == 2


async def test_concurrent_adds_of_one_name_have_one_winner(store_factory: StoreFactory) -> None:
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *((one if n % 2 else two).add_api_key(new_key("ci", key=f"pk_{n}")) for n in range(10)),
        return_exceptions=True,
    )
    winners = [result for result in results if not isinstance(result, BaseException)]
    assert len(winners) == 1
    assert sum(isinstance(result, Conflict) for result in results) == 9
    assert await one.list_api_keys() == winners


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_find_api_key_is_literal(store: ConversationStore, hostile: str) -> None:
    await store.add_api_key(new_key("ci"))
    assert await store.find_api_key(key_hash=hostile) is None
    assert await store.find_api_key(key_hash=key_hash(hostile)) is None


def test_new_api_key_validates() -> None:
    with pytest.raises(ValueError, match="key_hash"):
        NewApiKey(name="ci", scope="read", key_hash='{"$gt": ""}', hint="")
    with pytest.raises(ValueError, match="name"):
        NewApiKey(name="", scope="read", key_hash="a" * 64, hint="")
    with pytest.raises(ValueError, match="scope"):
        NewApiKey(name="ci", scope="root", key_hash="a" * 64, hint="")  # type: ignore[arg-type]
