"""The console under misuse: page views count against the key's rate, malformed cookies and
huge numbers are refused with a 4xx and no traceback, and the cookie can be forced Secure."""

from __future__ import annotations

import asyncio
import logging
from http.cookies import SimpleCookie

import httpx
import pytest

from adapters.http.console.session import COOKIE
from memory.base import NewMessage, PlatformKey
from tests.support.api import Api, ApiFactory
from tests.support.console import Console, csrf_of

HUGE = str(10**30)
"""Past SQLite's 64-bit integers: the store would raise OverflowError."""


def cookie_of(response: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.exc_info is not None or record.levelno >= logging.ERROR
    ]


async def conversation_with_messages(api: Api, count: int) -> str:
    conversation, _ = await api.engine.open_conversation(
        key=PlatformKey(platform="api", channel="limits"), agent_id="plain"
    )
    for n in range(count):
        await api.store.append_message(
            conversation_id=conversation.id, message=NewMessage(role="user", text=f"*{n}*")
        )
    return conversation.id


async def test_page_views_and_fragments_count_against_the_keys_rate(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(api_rate=0.01, api_burst=4)
    console = Console(api)
    try:
        conversation_id = await conversation_with_messages(api, 1)
        browser = await console.signed_in("read")  # its first page is one view
        other = await console.signed_in("read")
        for path in (
            f"/console/conversations/{conversation_id}",
            f"/console/conversations/{conversation_id}/messages?after=0",
            "/console/agents",
        ):
            assert (await browser.get(path)).status_code == 200, path
        for path in (
            f"/console/conversations/{conversation_id}",
            f"/console/conversations/{conversation_id}/messages?after=0",
            "/console/conversations",
        ):
            refused = await browser.get(path)
            assert refused.status_code == 429, path
            assert refused.headers["content-type"].startswith("text/html")
            assert "too many requests for this key" in refused.text
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.headers["x-frame-options"] == "DENY", "the console's own error page"
        assert (await other.get("/console/agents")).status_code == 200, "per key"
    finally:
        await console.close()


async def test_forced_secure_cookie_over_plain_http(api_factory: ApiFactory) -> None:
    api = await api_factory(console_secure_cookie=True)
    key = await api.key("read")
    form = await api.client.get("/console/signin")
    anonymous = cookie_of(form)[COOKIE]
    assert anonymous["secure"], "Secure although the request came over plain HTTP"
    sent = {"Cookie": f"{COOKIE}={anonymous.value}"}  # a client keeps Secure cookies off HTTP
    signed = await api.client.post(
        "/console/signin", data={"csrf": csrf_of(form.text), "key": key}, headers=sent
    )
    assert signed.status_code == 303
    session = cookie_of(signed)[COOKIE]
    assert session["secure"]
    page = await api.client.get(
        "/console/conversations", headers={"Cookie": f"{COOKIE}={session.value}"}
    )
    out = await api.client.post(
        "/console/signout",
        data={"csrf": csrf_of(page.text)},
        headers={"Cookie": f"{COOKIE}={session.value}"},
    )
    assert out.status_code == 303
    cleared = cookie_of(out)[COOKIE]
    assert cleared["max-age"] == "0"
    assert cleared["secure"]


async def test_cookie_is_secure_only_over_https_by_default(api: Api) -> None:
    plain = await api.client.get("/console/signin")
    assert not cookie_of(plain)[COOKIE]["secure"]
    secure = await api.client.get("https://parley.test/console/signin")
    assert cookie_of(secure)[COOKIE]["secure"]


MALFORMED = [
    b"\xc3\xa9t\xc3\xa9.abc",
    b"abc.\xff\xfe",
    b"\xff",
    b"a.b.c",
    b"..",
    b"!!!!.????",
    b"x" * 5000 + b".y",
    b"eyJ2IjoxfQ.\x00",
]


@pytest.mark.parametrize("value", MALFORMED)
async def test_a_malformed_cookie_is_no_session(
    api: Api, caplog: pytest.LogCaptureFixture, value: bytes
) -> None:
    caplog.set_level(logging.INFO)
    cookie = {b"Cookie": b"other=1; " + COOKIE.encode() + b"=" + value}
    page = await api.client.get("/console/conversations", headers=cookie)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/signin?notice=expired")
    form = await api.client.get("/console/signin", headers=cookie)
    assert form.status_code == 200
    assert 'name="csrf"' in form.text
    posted = await api.client.post(
        "/console/signin", data={"csrf": "x", "key": "pk_nope"}, headers=cookie
    )
    assert posted.status_code == 403
    assert tracebacks(caplog) == []


async def test_a_non_ascii_cookie_on_the_wire(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Raw bytes as a client may send them, through the real server's HTTP parser."""
    caplog.set_level(logging.INFO)
    base = httpx.URL(await api.serve())
    reader, writer = await asyncio.open_connection(base.host, base.port)
    writer.write(
        b"GET /console/agents HTTP/1.1\r\nHost: parley.test\r\n"
        b"Cookie: " + COOKIE.encode() + b"=\xe2\x98\x83.\xe9\xff\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 303 "), head
    assert b"location: /console/signin?notice=expired" in head.lower()
    assert tracebacks(caplog) == []


async def test_huge_numbers_in_the_query_are_refused(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    conversation_id = await conversation_with_messages(console.api, 3)
    browser = await console.signed_in("read")
    conversation = f"/console/conversations/{conversation_id}"
    for path in (
        f"{conversation}?before={HUGE}",
        f"{conversation}?before={2**63}",
        f"{conversation}/messages?after={HUGE}",
        f"{conversation}/messages?after={2**63}",
        f"/console/conversations?page={HUGE}",
    ):
        refused = await browser.get(path)
        assert refused.status_code == 422, path
        assert "less than or equal to" in refused.text, path
    for path in (f"{conversation}?before={2**53}", f"{conversation}/messages?after={2**53}"):
        assert (await browser.get(path)).status_code == 200, path
    assert tracebacks(caplog) == []
