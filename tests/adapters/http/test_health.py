"""``/healthz`` and ``/readyz`` (no key), and CORS: off unless origins are configured."""

from __future__ import annotations

import pytest

from tests.adapters.http.helpers import API, client_with
from tests.support.api import Api, ApiFactory

SHOP = "https://shop.example"


async def test_healthz_answers_without_a_key(api: Api) -> None:
    response = await client_with(api).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_its_checks(api: Api) -> None:
    response = await client_with(api).get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"store": True, "agents": True, "model": True},
    }


async def test_readyz_is_503_without_a_model(
    api_factory: ApiFactory, clean_env: pytest.MonkeyPatch
) -> None:
    api = await api_factory(openai_base_url=None)
    assert not api.services.settings.model_configured
    response = await client_with(api).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"store": True, "agents": True, "model": False},
    }
    assert (await client_with(api).get("/healthz")).status_code == 200, "alive all the same"


async def test_readyz_is_ready_with_a_key_and_no_base_url(
    api_factory: ApiFactory, clean_env: pytest.MonkeyPatch
) -> None:
    api = await api_factory(openai_base_url=None, openai_api_key="sk-test")
    assert (await client_with(api).get("/readyz")).status_code == 200


async def test_readyz_is_503_when_the_store_is_down(api: Api) -> None:
    await api.store.close()
    response = await client_with(api).get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert response.json()["checks"]["store"] is False
    assert (await client_with(api).get("/healthz")).status_code == 200


async def test_cors_is_off_by_default(api: Api) -> None:
    client = client_with(api, await api.key("read"))
    response = await client.get(f"{API}/agents", headers={"Origin": SHOP})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        f"{API}/agents",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_the_configured_origins_only(api_factory: ApiFactory) -> None:
    api = await api_factory(api_cors_origins=f"{SHOP}, https://admin.example")
    client = client_with(api, await api.key("write"))

    response = await client.get(f"{API}/agents", headers={"Origin": SHOP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    preflight = await client_with(api).options(
        f"{API}/conversations",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    other = await client_with(api, await api.key("read")).get(
        f"{API}/agents", headers={"Origin": "https://admin.example"}
    )
    assert other.headers["access-control-allow-origin"] == "https://admin.example"

    evil = await client.get(f"{API}/agents", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers
    refused = await client_with(api).options(
        f"{API}/conversations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
