"""API keys on every API route: 401 without a valid key, 403 outside its scope or agents,
and a revoked key refused on its very next request."""

from __future__ import annotations

from bot.keys import ApiKeys, generate_key
from tests.adapters.http.helpers import API, client_with, create_conversation, error_of
from tests.support.api import Api, ApiFactory

CONVERSATION = "0123456789abcdef0123456789abcdef"


async def test_requests_without_a_valid_key_are_401_with_a_challenge(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(auth_failure_burst=100)  # 21 wrong keys, all answered 401
    known = await api.key("admin")
    attempts: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": f"Basic {known}"},
        {"Authorization": known},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Bearer {known}x"},
        {"Authorization": f"Bearer {generate_key()}"},
    ]
    anonymous = client_with(api)
    routes = [
        ("GET", f"{API}/agents"),
        ("GET", f"{API}/conversations"),
        ("POST", f"{API}/conversations"),
        ("GET", f"{API}/conversations/{CONVERSATION}"),
        ("POST", f"{API}/conversations/{CONVERSATION}/messages"),
        ("DELETE", f"{API}/agents/chef"),
        ("POST", "/chat"),
    ]
    for headers in attempts:
        for method, url in routes:
            response = await anonymous.request(method, url, headers=headers, json={"text": "x"})
            error = error_of(response, 401)
            assert error["code"] == "unauthorized", (headers, method, url)
            assert response.headers["www-authenticate"] == "Bearer"
            assert known not in response.text
    assert (
        await anonymous.get(f"{API}/agents", headers={"Authorization": f"Bearer {known}"})
    ).status_code == 200
    assert (
        await anonymous.get(f"{API}/agents", headers={"Authorization": f"bearer {known}"})
    ).status_code == 200


async def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    key = await api.key("admin", name="ops")
    client = client_with(api, key)
    assert (await client.get(f"{API}/agents")).status_code == 200

    revoked = await api.services.keys.revoke("ops")
    assert revoked.name == "ops"
    response = await client.get(f"{API}/agents")
    assert error_of(response, 401)["message"] == "the API key is unknown or revoked"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_key_revoked_by_another_process_is_refused_at_once(api: Api) -> None:
    key = await api.key("write", name="widget")
    client = client_with(api, key)
    assert (await client.get(f"{API}/conversations")).status_code == 200
    await ApiKeys(api.store).revoke("widget")
    assert error_of(await client.get(f"{API}/conversations"), 401)["code"] == "unauthorized"


async def test_a_read_key_reads_but_cannot_write(api: Api) -> None:
    admin = await api.as_key("admin")
    conversation = await create_conversation(admin)
    url = f"{API}/conversations/{conversation['id']}"
    reader = await api.as_key("read")

    for path in ("", "/messages", "/goal-checks", "/export"):
        assert (await reader.get(url + path)).status_code == 200, path
    assert (await reader.get(f"{API}/agents")).status_code == 200
    assert (await reader.get(f"{API}/conversations")).status_code == 200

    refused = [
        await reader.post(f"{url}/messages", json={"text": "hi"}),
        await reader.post(f"{API}/conversations", json={}),
        await reader.patch(url, json={"tags": ["x"]}),
        await reader.post(f"{url}/goal-check"),
        await reader.delete(url),
        await reader.post(f"{API}/agents", json={}),
    ]
    for response in refused:
        error = error_of(response, 403)
        assert error["code"] == "forbidden"
        assert "scope 'read'" in error["message"]
    assert (await admin.get(f"{url}/messages")).json()["next_before"] is None
    assert len((await admin.get(f"{url}/messages")).json()["items"]) == 1, "nothing was said"


async def test_a_write_key_talks_but_cannot_administer(api: Api) -> None:
    writer = await api.as_key("write")
    conversation = await create_conversation(writer)
    url = f"{API}/conversations/{conversation['id']}"
    said = await writer.post(f"{url}/messages", json={"text": "hi"})
    assert said.status_code == 200
    assert (await writer.patch(url, json={"tags": ["x"]})).status_code == 200
    assert (await writer.post(f"{url}/goal-check")).status_code == 201

    agent = {"id": "new", "name": "New", "context": "c", "first_message": "f"}
    refused = [
        await writer.delete(url),
        await writer.post(f"{API}/agents", json=agent),
        await writer.put(f"{API}/agents/new", json=agent),
        await writer.delete(f"{API}/agents/new"),
    ]
    for response in refused:
        error = error_of(response, 403)
        assert "needs 'admin'" in error["message"]
    assert (await writer.get(url)).status_code == 200, "not deleted"
    assert (await writer.get(f"{API}/agents/new")).status_code == 404, "not created"


async def test_a_key_limited_to_agents_reaches_only_those(api: Api) -> None:
    admin = await api.as_key("admin")
    chef = await create_conversation(admin)
    plain = await create_conversation(admin, agent_id="plain")
    limited = await api.as_key("admin", agents=["plain"])

    agents = (await limited.get(f"{API}/agents")).json()
    assert [a["id"] for a in agents] == ["plain"]
    assert (await limited.get(f"{API}/agents/plain")).status_code == 200
    assert error_of(await limited.get(f"{API}/agents/chef"), 403)["code"] == "forbidden"

    chef_url = f"{API}/conversations/{chef['id']}"
    for response in [
        await limited.get(chef_url),
        await limited.get(f"{chef_url}/messages"),
        await limited.get(f"{chef_url}/export"),
        await limited.post(f"{chef_url}/messages", json={"text": "hi"}),
        await limited.patch(chef_url, json={"tags": ["x"]}),
        await limited.delete(chef_url),
        await limited.post(f"{chef_url}/goal-check"),
        await limited.post(f"/chat/{chef['id']}", content="hi"),
        await limited.post(f"{API}/conversations", json={}),
        await limited.post(f"{API}/conversations", json={"agent_id": "chef"}),
        await limited.get(f"{API}/conversations", params={"agent_id": "chef"}),
        await limited.delete(f"{API}/agents/chef"),
    ]:
        error = error_of(response, 403)
        assert "may not use agent 'chef'" in error["message"], response.request.url
    assert (await admin.get(chef_url)).json()["tags"] == [], "nothing changed"

    assert (await limited.get(f"{API}/conversations/{plain['id']}")).status_code == 200
    page = (await limited.get(f"{API}/conversations")).json()
    assert [c["id"] for c in page["items"]] == [plain["id"]]
    assert page["total"] == 1
    created = await create_conversation(limited, agent_id="plain")
    assert created["agent_id"] == "plain"


async def test_health_and_docs_need_no_key(api: Api) -> None:
    anonymous = client_with(api)
    for path in ("/healthz", "/readyz", f"{API}/openapi.json", "/api/docs"):
        assert (await anonymous.get(path)).status_code == 200, path
