"""/api/docs, where people paste keys, carries the console's security headers adjusted to what
Swagger UI needs, and Swagger UI still works under them in a real Chromium."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.adapters.http.helpers import client_with
from tests.support.api import Api
from tests.support.browser import CHROMIUM_ARGS, chromium_or_skip

WAIT_MS = 20_000


def directives(policy: str) -> dict[str, list[str]]:
    found = {}
    for part in policy.split(";"):
        name, *values = part.split()
        found[name] = values
    return found


async def test_the_docs_page_sends_a_strict_policy(api: Api) -> None:
    page = await client_with(api).get("/api/docs")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    policy = directives(page.headers["content-security-policy"])

    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert len(inline) == 1, "Swagger UI's start-up script"
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"], "no 'unsafe-inline'"
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert src.startswith("/api/docs/static/"), "everything from this server"
        assert (await client_with(api).get(src)).status_code == 200, src


@pytest.fixture
async def docs_page(api: Api) -> AsyncIterator[tuple[Page, list[str]]]:
    """Swagger UI in headless Chromium, with every CSP violation and console error recorded."""
    path = chromium_or_skip()
    base = await api.serve()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(WAIT_MS)
            problems: list[str] = []
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.add_init_script(
                "document.addEventListener('securitypolicyviolation', e =>"
                " console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));"
            )
            await page.goto(f"{base}/api/docs")
            yield page, problems
        finally:
            await browser.close()


async def test_swagger_ui_works_under_its_policy(docs_page: tuple[Page, list[str]]) -> None:
    page, problems = docs_page
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Parley API")
    agents = page.locator(".opblock-get", has_text="/api/v1/agents").first
    await agents.locator(".opblock-summary").click()
    await agents.get_by_role("button", name="Try it out").click()
    await agents.get_by_role("button", name="Execute").click()
    status = agents.locator(".live-responses-table tbody .response-col_status").first
    await expect(status).to_contain_text("401")  # the page's fetch reached the API
    schema = page.locator("section.models article", has_text="AgentOut").first
    await schema.get_by_role("button", name="Expand all").click()
    await expect(schema.locator(".json-schema-2020-12-property").first).to_be_visible()
    await page.locator(".auth-wrapper .authorize").click()
    await expect(page.locator(".dialog-ux .modal-ux")).to_be_visible()
    expected = "the server responded with a status of 401"
    assert [p for p in problems if expected not in p] == [], "no CSP violation, no error"
