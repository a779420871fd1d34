"""The OpenAPI document lists every API route with its schemas; the interactive docs are
served from files in the package, with no CDN."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from adapters.http.app import build_app
from tests.adapters.http.helpers import API, client_with
from tests.support.api import Api

EXPECTED = {
    ("GET", "/agents"),
    ("POST", "/agents"),
    ("GET", "/agents/{agent_id}"),
    ("PUT", "/agents/{agent_id}"),
    ("DELETE", "/agents/{agent_id}"),
    ("GET", "/conversations"),
    ("POST", "/conversations"),
    ("GET", "/conversations/{conversation_id}"),
    ("PATCH", "/conversations/{conversation_id}"),
    ("DELETE", "/conversations/{conversation_id}"),
    ("POST", "/conversations/{conversation_id}/goal-check"),
    ("GET", "/conversations/{conversation_id}/goal-checks"),
    ("GET", "/conversations/{conversation_id}/export"),
    ("GET", "/conversations/{conversation_id}/messages"),
    ("POST", "/conversations/{conversation_id}/messages"),
    ("POST", "/chat"),
    ("POST", "/chat/{conversation_id}"),
}
REQUEST_BODIES = {
    ("POST", "/agents"): "Agent",
    ("PUT", "/agents/{agent_id}"): "Agent",
    ("POST", "/conversations"): "NewConversation",
    ("PATCH", "/conversations/{conversation_id}"): "ConversationChanges",
    ("POST", "/conversations/{conversation_id}/messages"): "NewUserMessage",
}
RESPONSES = {
    ("GET", "/agents"): ("200", "AgentOut"),
    ("POST", "/agents"): ("201", "AgentOut"),
    ("GET", "/conversations"): ("200", "ConversationPage"),
    ("POST", "/conversations"): ("201", "Conversation"),
    ("GET", "/conversations/{conversation_id}"): ("200", "Conversation"),
    ("POST", "/conversations/{conversation_id}/goal-check"): ("201", "GoalCheck"),
    ("GET", "/conversations/{conversation_id}/goal-checks"): ("200", "GoalCheck"),
    ("GET", "/conversations/{conversation_id}/messages"): ("200", "MessagePage"),
    ("POST", "/conversations/{conversation_id}/messages"): ("200", "TurnOut"),
}


def refs(value: Any) -> set[str]:
    """Every schema named by a ``$ref`` anywhere in ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for item in value.values():
            found |= refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= refs(item)
    return found


async def test_the_document_lists_every_api_route_with_its_schemas(api: Api) -> None:
    response = await client_with(api).get(f"{API}/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "Parley API"
    paths = spec["paths"]
    documented = {
        (method.upper(), path.removeprefix(API))
        for path, operations in paths.items()
        if path.startswith(f"{API}/")
        for method in operations
    }
    assert documented >= EXPECTED, EXPECTED - documented
    app = api.app
    served = {
        (method, route.path.removeprefix(API))
        for route in app.routes
        if isinstance(route, APIRoute)
        and route.path.startswith(f"{API}/")
        and route.include_in_schema
        for method in route.methods
    }
    assert served <= documented, served - documented

    schemas = spec["components"]["schemas"]
    for (method, path), name in REQUEST_BODIES.items():
        body = paths[API + path][method.lower()]["requestBody"]
        assert refs(body["content"]["application/json"]) == {name}, (method, path)
        assert name in schemas
    for (method, path), (status, name) in RESPONSES.items():
        answer = paths[API + path][method.lower()]["responses"][status]
        assert name in refs(answer["content"]["application/json"]), (method, path)
    streamed = paths[f"{API}/conversations/{{conversation_id}}/messages"]["post"]
    assert "text/event-stream" in streamed["responses"]["200"]["content"]
    chat = paths[f"{API}/chat/{{conversation_id}}"]["post"]
    assert "text/plain" in chat["requestBody"]["content"]
    assert "text/plain" in chat["responses"]["200"]["content"]
    exported = paths[f"{API}/conversations/{{conversation_id}}/export"]["get"]
    assert set(exported["responses"]["200"]["content"]) == {"text/markdown", "application/json"}

    for method, path in EXPECTED:
        operation = paths[API + path][method.lower()]
        for status in ("401", "403", "404"):
            assert refs(operation["responses"][status]) == {"ErrorBody"}, (method, path, status)
        assert operation.get("security"), (method, path)
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert set(schemas["ErrorBody"]["properties"]) == {"error"}


async def test_the_document_validates_as_openapi_3_1(api: Api) -> None:
    spec = (await client_with(api).get(f"{API}/openapi.json")).json()
    assert spec["openapi"].startswith("3.1.")
    validate(spec, cls=OpenAPIV31SpecValidator)


async def test_every_error_is_the_json_envelope_even_on_plain_text_routes(api: Api) -> None:
    spec = (await client_with(api).get(f"{API}/openapi.json")).json()
    errors = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and (path, status) != ("/readyz", "503"):
                    errors += 1
                    assert set(answer["content"]) == {"application/json"}, (method, path, status)
                    assert refs(answer) == {"ErrorBody"}, (method, path, status)
                    assert answer["description"], (method, path, status)
    assert errors > 100
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    ready = spec["paths"]["/readyz"]["get"]["responses"]
    assert refs(ready["503"]) == refs(ready["200"]) == {"ReadinessReport"}
    for path in (f"{API}/chat/{{conversation_id}}", "/chat/{conversation_id}"):
        chat = spec["paths"][path]["post"]["responses"]
        assert {"400", "401", "403", "404", "413", "422", "429", "503"} <= set(chat)
        assert set(chat["200"]["content"]) == {"text/plain"}


async def test_json_bodies_document_their_400_and_413(api: Api) -> None:
    spec = (await client_with(api).get(f"{API}/openapi.json")).json()
    for (method, path), name in REQUEST_BODIES.items():
        operation = spec["paths"][API + path][method.lower()]
        assert {"400", "413", "422"} <= set(operation["responses"]), (method, path, name)
    upload = spec["paths"][f"{API}/agents/{{agent_id}}/documents"]["post"]
    assert {"413", "415"} <= set(upload["responses"])
    assert "400" not in upload["responses"]  # bytes as they are: nothing to decode


async def test_the_docs_use_local_files_only(api: Api) -> None:
    client = client_with(api)
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"'{API}/openapi.json'" in page.text
    assert "https://" not in page.text
    assert "http://" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/api/docs/static/swagger-ui-bundle.js" in assets
    for asset in assets:
        assert asset.startswith("/api/docs/static/"), asset
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert served.content, asset
    script = await client.get("/api/docs/static/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert "SwaggerUIBundle" in script.text
    assert (await client.get("/api/docs/static/..%2F..%2F..%2Fhttp%2Fapp.py")).status_code == 404


async def test_without_services_there_is_no_api_and_no_document() -> None:
    app = build_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://parley.test"
    ) as client:
        assert (await client.get(f"{API}/openapi.json")).status_code == 404
        assert (await client.get("/api/docs")).status_code == 404
        assert (await client.get(f"{API}/agents")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
