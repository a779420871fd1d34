"""The console on the app: mounted only when enabled, its files shipped, its keys re-checked."""

from __future__ import annotations

from adapters.http.console.session import COOKIE
from bot.keys import ApiKeys
from memory.base import ConversationStore
from tests.support.api import Api, ApiFactory
from tests.support.console import Console


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_static_files_and_the_home_redirect(api: Api) -> None:
    css = await api.client.get("/console/static/console.css")
    assert css.status_code == 200
    assert ":focus-visible" in css.text
    script = await api.client.get("/console/static/chat.js")
    assert script.status_code == 200
    assert "getReader" in script.text
    home = await api.client.get("/console")
    assert home.status_code == 303
    assert home.headers["location"] == "/console/conversations"
    schema = (await api.client.get("/api/v1/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith("/console")]


async def test_the_console_can_be_turned_off(api_factory: ApiFactory) -> None:
    api = await api_factory(console_enabled=False)
    assert (await api.client.get("/console/signin")).status_code == 404
    assert (await api.client.get("/console/static/console.css")).status_code == 404
    assert (await api.client.get("/api/v1/agents")).status_code == 401, "the API stays"


async def test_a_shared_secret_lets_processes_share_sessions(api_factory: ApiFactory) -> None:
    first = await api_factory(console_secret="a long shared console secret")
    second = await api_factory(console_secret="a long shared console secret", store=first.store)
    third = await api_factory(store=first.store)
    console = Console(first)
    try:
        browser = await console.signed_in("read")
        cookie = browser.client.cookies[COOKIE]
        for other, status in ((second, 200), (third, 303)):
            response = await other.client.get(
                "/console/agents", headers={"Cookie": f"{COOKIE}={cookie}"}
            )
            assert response.status_code == status
    finally:
        await console.close()


async def test_active_keys_are_read_at_most_every_few_seconds(
    sqlite_store: ConversationStore,
) -> None:
    clock = Clock()
    keys = ApiKeys(sqlite_store, clock=clock)
    reads = 0
    real = sqlite_store.list_api_keys

    async def counted() -> list:  # type: ignore[type-arg]
        nonlocal reads
        reads += 1
        return await real()

    sqlite_store.list_api_keys = counted  # type: ignore[method-assign]
    _, record = await keys.create(name="console", scope="read")
    assert await keys.active(record.id) == record
    assert await keys.active(record.id) is not None
    assert reads == 1
    await sqlite_store.revoke_api_key(key_id=record.id)  # as another process would
    assert await keys.active(record.id) is not None, "within the 5 seconds"
    clock.now += 5
    assert await keys.active(record.id) is None
    assert reads == 2
    for _ in range(3):
        assert await keys.active("f" * 32) is None
    assert reads == 2, "unknown ids re-read at most once a second"
    clock.now += 1
    _, made_elsewhere = await ApiKeys(sqlite_store).create(name="other", scope="read")
    assert await keys.active(made_elsewhere.id) is not None, "a missing id re-reads the keys"
    assert await keys.active("not an id") is None
    _, mine = await keys.create(name="mine", scope="read")
    assert await keys.active(mine.id) is not None, "a key made here is seen at once"
    await keys.revoke(mine.id)
    assert await keys.active(mine.id) is None, "a key revoked here is refused at once"
