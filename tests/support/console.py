"""The web console for tests: browsers (httpx clients with their own cookies) on the real app.

``Browser.post_form`` sends a form as a browser does, with the page's CSRF token unless told
otherwise; ``csrf_of`` reads the token from a page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.engine import IncomingMessage, TurnResult
from memory.base import PlatformKey, Scope
from tests.support.api import Api

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SLACK_TEAM = "T0CONSOLE"
SLACK_CHANNEL = "C0KITCHEN"


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


@dataclass
class Browser:
    client: httpx.AsyncClient
    key: str = ""
    csrf: str = ""

    async def get(self, path: str, **options: Any) -> httpx.Response:
        return await self.client.get(path, **options)

    async def post_form(
        self, path: str, *, csrf: str | None = None, **fields: str
    ) -> httpx.Response:
        """Post ``fields`` with this session's CSRF token (``csrf=""`` leaves it out)."""
        token = self.csrf if csrf is None else csrf
        data = {**({"csrf": token} if token else {}), **fields}
        return await self.client.post(path, data=data)

    async def sign_in(self, key: str, *, next: str | None = None) -> httpx.Response:
        form = await self.client.get("/console/signin")
        data = {"csrf": csrf_of(form.text), "key": key, **({"next": next} if next else {})}
        response = await self.client.post("/console/signin", data=data)
        if response.status_code == 303:
            self.key = key
            page = await self.client.get("/console/conversations")
            self.csrf = csrf_of(page.text)
        return response


@dataclass
class Console:
    api: Api
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        transport = self.api.client._transport
        client = httpx.AsyncClient(transport=transport, base_url=self.api.client.base_url)
        browser = Browser(client)
        self.browsers.append(browser)
        return browser

    async def signed_in(self, scope: Scope = "admin", *, agents: Sequence[str] = ()) -> Browser:
        browser = self.browser()
        response = await browser.sign_in(await self.api.key(scope, agents=agents))
        assert response.status_code == 303, response.text
        return browser

    async def slack_turn(self, text: str, *, thread: str = "1700000000.000100") -> TurnResult:
        """A message in a Slack thread, answered by the real engine (as the adapter does)."""
        turn = self.api.engine.reply(
            IncomingMessage(
                key=PlatformKey(
                    platform="slack", workspace=SLACK_TEAM, channel=SLACK_CHANNEL, thread=thread
                ),
                text=text,
                author_id="U0ADA",
                author_name="Ada",
            )
        )
        return await turn.result()

    async def close(self) -> None:
        for browser in self.browsers:
            await browser.client.aclose()
