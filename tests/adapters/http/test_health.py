"""``/healthz`` and ``/readyz`` (no key), and CORS: off unless origins are configured."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from adapters.base import AdapterHealth, AdapterState
from adapters.http.app import build_app
from adapters.http.services import Readiness
from tests.adapters.http.helpers import API, client_with
from tests.support.api import Api, ApiFactory

SHOP = "https://shop.example"


@dataclass
class Platform:
    """An adapter as ``/readyz`` sees it: a name and a state the test sets."""

    name: str
    state: AdapterState = "connected"
    detail: str = ""

    def health(self) -> AdapterHealth:
        return AdapterHealth(self.name, self.state, self.detail)


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


async def test_readyz_reports_each_adapter_and_is_503_while_one_is_not_ready(api: Api) -> None:
    slack = Platform("slack", "connected", "Socket Mode")
    discord = Platform("discord", "connecting", "identifying 2 shards")
    api.services.readiness.add(slack)
    api.services.readiness.add(discord)
    api.services.readiness.add(slack)

    response = await client_with(api).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {
            "store": True,
            "agents": True,
            "model": True,
            "adapters": {
                "slack": {"state": "connected", "ready": True, "detail": "Socket Mode"},
                "discord": {
                    "state": "connecting",
                    "ready": False,
                    "detail": "identifying 2 shards",
                },
            },
        },
    }

    discord.state, discord.detail = "connected", "2 servers, 2 shards open"
    response = await client_with(api).get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"

    for state in ("reconnecting", "failed", "stopped"):
        discord.state = state
        response = await client_with(api).get("/readyz")
        assert response.status_code == 503, state
        assert response.json()["checks"]["adapters"]["discord"]["ready"] is False
    assert (await client_with(api).get("/healthz")).status_code == 200, "alive all the same"


async def test_slack_in_http_mode_is_ready(api: Api) -> None:
    api.services.readiness.add(Platform("slack", "http", "events at /slack/events"))
    response = await client_with(api).get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["adapters"]["slack"]["ready"] is True


async def test_readyz_reports_the_journal_backlog_without_judging_it(api: Api) -> None:
    async def backlog() -> int:
        return 7

    api.services.readiness.journal_backlog = backlog
    response = await client_with(api).get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["journal_backlog"] == 7

    async def broken() -> int:
        raise RuntimeError("the journal cannot be counted")

    api.services.readiness.journal_backlog = broken
    response = await client_with(api).get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["journal_backlog"] is None


async def test_readyz_reports_the_adapters_without_the_api() -> None:
    """``API_ENABLED=false``: the runtime still serves the probes, with the adapters."""
    app = build_app()
    readiness = Readiness()
    app.state.readiness = readiness
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as client:
        assert (await client.get("/readyz")).json() == {"status": "ok", "checks": {}}
        readiness.add(Platform("slack", "reconnecting", "no Socket Mode connection for 3 s"))
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "status": "not ready",
            "checks": {
                "adapters": {
                    "slack": {
                        "state": "reconnecting",
                        "ready": False,
                        "detail": "no Socket Mode connection for 3 s",
                    }
                }
            },
        }


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
