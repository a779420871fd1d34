"""Failed authentications are throttled per client address (API keys and console sign-ins
share one budget), and the client address and scheme come from X-Forwarded-For and
X-Forwarded-Proto only when the peer is a trusted proxy (checked on a real uvicorn server)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from adapters.http.server import HttpServer
from bot.keys import generate_key
from tests.adapters.http.helpers import API, client_with, error_of
from tests.support.api import Api, ApiFactory
from tests.support.console import Console, csrf_of

BURST = 10
SLOW = 0.001
"""A refill rate slow enough that no token comes back during a test."""


async def statuses(client: httpx.AsyncClient, keys: Sequence[str], **headers: str) -> list[int]:
    found = []
    for key in keys:
        response = await client.get(
            f"{API}/agents", headers={"Authorization": f"Bearer {key}", **headers}
        )
        found.append(response.status_code)
    return found


def failures_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]


async def test_wrong_keys_from_one_address_get_429_after_the_burst(
    api_factory: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.http.auth")
    api = await api_factory(auth_failure_burst=BURST, auth_failure_rate=SLOW)
    key = await api.key("read")
    wrong = [generate_key() for _ in range(300)]
    anonymous = client_with(api)

    found = await statuses(anonymous, wrong)
    assert found[:BURST] == [401] * BURST
    assert found[BURST:] == [429] * (300 - BURST)

    throttled = await anonymous.get(f"{API}/agents", headers={"Authorization": f"Bearer {key}"})
    error = error_of(throttled, 429)
    assert error["code"] == "rate_limited"
    assert "failed authentications from this address" in error["message"]
    assert int(throttled.headers["retry-after"]) >= 1
    assert throttled.status_code == 429, "over the budget even a good key is not looked at"

    logged = failures_logged(caplog)
    assert len(logged) == BURST, "one line per failure looked at; none per 429"
    assert all("from 127.0.0.1 on GET /api/v1/agents" in line for line in logged)
    assert not any(k in caplog.text for k in (key, *wrong))


async def test_successful_authentications_spend_nothing(api_factory: ApiFactory) -> None:
    api = await api_factory(auth_failure_burst=3, auth_failure_rate=SLOW)
    key = await api.key("read")
    anonymous = client_with(api)
    assert await statuses(anonymous, [key] * 20) == [200] * 20
    assert await statuses(anonymous, [generate_key() for _ in range(4)]) == [401] * 3 + [429]


async def test_a_good_key_with_many_requests_at_once_is_never_refused(
    api_factory: ApiFactory,
) -> None:
    """Each request holds a token of the budget while its key is looked up: a client with
    more requests in flight than the burst is not refused once its key has authenticated
    here, and guesses from its address are still throttled."""
    api = await api_factory(auth_failure_burst=3, auth_failure_rate=SLOW)
    key = await api.key("read")
    anonymous = client_with(api)
    assert await statuses(anonymous, [key]) == [200]
    headers = {"Authorization": f"Bearer {key}"}
    many = await asyncio.gather(
        *(anonymous.get(f"{API}/agents", headers=headers) for _ in range(40))
    )
    assert [r.status_code for r in many] == [200] * 40
    assert await statuses(anonymous, [generate_key() for _ in range(4)]) == [401] * 3 + [429]
    assert await statuses(anonymous, [key]) == [200], "its guessing neighbour does not lock it out"
    await api.services.keys.revoke((await api.services.keys.list())[0].id)
    assert await statuses(anonymous, [key]) == [401], "a revoked key is looked up, and refused"


@pytest.fixture
async def serve(api_factory: ApiFactory) -> AsyncIterator[tuple[Api, list[HttpServer]]]:
    api = await api_factory(auth_failure_burst=3, auth_failure_rate=SLOW)
    servers: list[HttpServer] = []
    yield api, servers
    for server in servers:
        await server.stop()


async def start(
    served: tuple[Api, list[HttpServer]], *, trusted: Sequence[str]
) -> httpx.AsyncClient:
    api, servers = served
    app = api.app
    server = HttpServer(app, host="127.0.0.1", port=0, trusted_proxies=trusted)
    await server.start()
    servers.append(server)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10.0)


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(
    serve: tuple[Api, list[HttpServer]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.http.auth")
    async with await start(serve, trusted=["127.0.0.1"]) as client:
        guesser = {"X-Forwarded-For": "203.0.113.7"}
        other = {"X-Forwarded-For": "198.51.100.20, 203.0.113.8"}
        wrong = [generate_key() for _ in range(4)]
        assert await statuses(client, wrong, **guesser) == [401, 401, 401, 429]
        assert await statuses(client, wrong[:1], **other) == [401], "another client is not affected"
        assert await statuses(client, wrong[:1]) == [401], "nor is the proxy's own address"
        assert await statuses(client, wrong[:1], **guesser) == [429]
    logged = failures_logged(caplog)
    assert sum("from 203.0.113.7 " in line for line in logged) == 3
    assert sum("from 203.0.113.8 " in line for line in logged) == 1, "the nearest client"


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    serve: tuple[Api, list[HttpServer]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.http.auth")
    async with await start(serve, trusted=["192.0.2.1"]) as client:
        found = [
            (await statuses(client, [generate_key()], **{"X-Forwarded-For": f"203.0.113.{n}"}))[0]
            for n in range(5)
        ]
    assert found == [401, 401, 401, 429, 429], "every forged address counts as the peer's"
    logged = failures_logged(caplog)
    assert len(logged) == 3
    assert all("from 127.0.0.1 " in line for line in logged)


async def test_the_scheme_is_https_only_from_a_trusted_proxy(
    serve: tuple[Api, list[HttpServer]],
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with await start(serve, trusted=["127.0.0.1"]) as trusted:
        form = await trusted.get("/console/signin", headers=https)
        assert form.status_code == 200
        assert "secure" in form.headers["set-cookie"].lower(), "the console's cookie is Secure"
        plain = await trusted.get("/console/signin")
        assert "secure" not in plain.headers["set-cookie"].lower()
    async with await start(serve, trusted=["192.0.2.1"]) as untrusted:
        form = await untrusted.get("/console/signin", headers=https)
        assert "secure" not in form.headers["set-cookie"].lower()


async def test_console_sign_in_shares_the_budget(api_factory: ApiFactory) -> None:
    api = await api_factory(auth_failure_burst=3, auth_failure_rate=SLOW)
    console = Console(api)
    try:
        key = await api.key("read")
        for _ in range(5):
            assert (await console.browser().sign_in(key)).status_code == 303, "no cost"
        browser = console.browser()
        csrf = csrf_of((await browser.get("/console/signin")).text)

        async def sign_in(with_key: str) -> httpx.Response:
            return await browser.post_form("/console/signin", csrf=csrf, key=with_key)

        assert [(await sign_in(generate_key())).status_code for _ in range(3)] == [401] * 3
        unseen = await api.key("read")
        throttled = await sign_in(unseen)
        assert throttled.status_code == 429, "over the budget a key not seen here is not looked at"
        assert "Too many failed sign-ins" in throttled.text
        assert int(throttled.headers["retry-after"]) >= 1
        assert (await browser.get("/console/agents")).status_code == 303, "not signed in"
        api_call = await client_with(api, unseen).get(f"{API}/agents")
        assert api_call.status_code == 429, "the API shares the address's budget"
        assert (await sign_in(key)).status_code == 303, "a key that signed in here lately"
    finally:
        await console.close()
