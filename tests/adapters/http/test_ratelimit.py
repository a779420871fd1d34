"""A token bucket per key: a burst, then 429 with Retry-After, then requests again as the
bucket refills (on a clock the test moves)."""

from __future__ import annotations

import dataclasses

import httpx

from adapters.http.app import build_app
from adapters.http.ratelimit import RateLimiter
from tests.adapters.http.helpers import API, client_with, error_of
from tests.support.api import Api, ApiFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_third_quick_request_is_429_with_retry_after(api_factory: ApiFactory) -> None:
    api = await api_factory(api_rate=1, api_burst=2)
    first = client_with(api, await api.key("read"))
    second = client_with(api, await api.key("read"))

    assert (await first.get(f"{API}/agents")).status_code == 200
    assert (await first.get(f"{API}/conversations")).status_code == 200
    limited = await first.get(f"{API}/agents")
    error = error_of(limited, 429)
    assert error["code"] == "rate_limited"
    assert "retry in" in error["message"]
    assert int(limited.headers["retry-after"]) >= 1

    assert (await second.get(f"{API}/agents")).status_code == 200, "each key has its own bucket"
    forbidden = await first.post(f"{API}/conversations", json={})
    assert forbidden.status_code == 429, "the rate applies before the scope"


def limited_app(api: Api, clock: Clock) -> Api:
    services = dataclasses.replace(api.services, limiter=RateLimiter(rate=1, burst=2, clock=clock))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(services=services)),
        base_url="http://parley.test",
    )
    return Api(services=services, client=client)


async def test_the_bucket_refills_at_the_rate(api: Api) -> None:
    clock = Clock()
    limited = limited_app(api, clock)
    try:
        client = client_with(limited, await limited.key("read"))

        async def status() -> int:
            return (await client.get(f"{API}/agents")).status_code

        assert [await status() for _ in range(3)] == [200, 200, 429]
        clock.now += 0.5
        refused = await client.get(f"{API}/agents")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        clock.now += 0.6
        assert await status() == 200, "one token back after a second"
        assert await status() == 429
        clock.now += 10
        assert [await status() for _ in range(3)] == [200, 200, 429], "never more than burst"
    finally:
        await limited.close()


async def test_unauthenticated_requests_take_no_token(api: Api) -> None:
    clock = Clock()
    limited = limited_app(api, clock)
    try:
        key = await limited.key("read")
        anonymous = client_with(limited)
        for _ in range(5):
            response = await anonymous.get(f"{API}/agents", headers={"Authorization": "Bearer x"})
            assert response.status_code == 401
        client = client_with(limited, key)
        assert (await client.get(f"{API}/agents")).status_code == 200
        assert (await client.get(f"{API}/agents")).status_code == 200
    finally:
        await limited.close()


def test_a_token_given_back_is_taken_again_but_never_past_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    assert [limiter.take("a"), limiter.take("a")] == [None, None]
    assert limiter.take("a") == 1.0
    limiter.give_back("a")
    assert limiter.take("a") is None, "the token given back"
    assert limiter.take("a") is not None
    for _ in range(5):
        limiter.give_back("b")
    assert [limiter.take("b") is None for _ in range(3)] == [True, True, False]
