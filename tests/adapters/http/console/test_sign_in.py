"""Signing in exchanges a key for a signed session cookie; signing out and revoking end it."""

from __future__ import annotations

from http.cookies import SimpleCookie

from adapters.http.console.session import COOKIE
from tests.support.console import Console, csrf_of


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)
    morsel = jar[COOKIE]
    return {name: str(value) for name, value in morsel.items() if value} | {"value": morsel.value}


async def test_pages_need_a_session_and_send_to_sign_in(console: Console) -> None:
    browser = console.browser()
    for path in ("/console/conversations", "/console/agents", "/console/chats"):
        response = await browser.get(path + "?agent=chef")
        assert response.status_code == 303
        location = response.headers["location"]
        assert location.startswith("/console/signin?notice=signin&next=")
        assert "%2Fconsole%2F" in location
    page = await browser.get("/console/signin?notice=signin")
    assert page.status_code == 200
    assert "Sign in to continue." in page.text
    assert '<label for="key">API key</label>' in page.text


async def test_sign_in_sets_a_strict_httponly_session_without_the_key(console: Console) -> None:
    key = await console.api.key("read", name="ops")
    browser = console.browser()
    form = await browser.get("/console/signin")
    anonymous = cookie_attributes(form.headers["set-cookie"])
    assert anonymous["httponly"]
    assert anonymous["samesite"] == "strict"
    response = await browser.client.post(
        "/console/signin",
        data={"csrf": csrf_of(form.text), "key": key, "next": "/console/agents"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/agents"
    cookie = cookie_attributes(response.headers["set-cookie"])
    assert cookie["httponly"] is not None
    assert cookie["samesite"] == "strict"
    assert cookie["path"] == "/console"
    assert 12 * 3600 - 2 <= int(cookie["max-age"]) <= 12 * 3600
    assert "secure" not in cookie, "plain HTTP here; Secure is set over HTTPS"
    assert key not in cookie["value"]
    assert key[3:20] not in cookie["value"]
    page = await browser.get("/console/agents")
    assert page.status_code == 200
    assert "Key <strong>ops</strong>" in page.text


async def test_secure_cookie_over_https(console: Console) -> None:
    key = await console.api.key("read")
    browser = console.browser()
    browser.client.base_url = "https://parley.test"
    form = await browser.get("/console/signin")
    assert "secure" in cookie_attributes(form.headers["set-cookie"])
    response = await browser.client.post(
        "/console/signin", data={"csrf": csrf_of(form.text), "key": key}
    )
    assert "secure" in cookie_attributes(response.headers["set-cookie"])


async def test_wrong_key_and_missing_csrf_are_refused(console: Console) -> None:
    browser = console.browser()
    form = await browser.get("/console/signin")
    wrong = await browser.client.post(
        "/console/signin", data={"csrf": csrf_of(form.text), "key": "pk_" + "A" * 43}
    )
    assert wrong.status_code == 401
    assert "That key is unknown or revoked." in wrong.text
    key = await console.api.key("admin")
    no_token = await browser.client.post("/console/signin", data={"key": key})
    assert no_token.status_code == 403
    assert "The sign-in form had expired" in no_token.text
    assert (await browser.get("/console/conversations")).status_code == 303, "not signed in"
    other = console.browser()
    other_form = await other.get("/console/signin")
    stolen = await browser.client.post(
        "/console/signin", data={"csrf": csrf_of(other_form.text), "key": key}
    )
    assert stolen.status_code == 403, "another browser's token is not this session's"


async def test_next_never_leaves_the_console(console: Console) -> None:
    key = await console.api.key("read")
    for target in ("https://evil.example/", "//evil.example/console", "/api/v1/agents"):
        browser = console.browser()
        response = await browser.sign_in(key, next=target)
        assert response.headers["location"] == "/console/conversations"


async def test_sign_out_clears_the_cookie_and_refuses_a_copy(console: Console) -> None:
    browser = await console.signed_in("read")
    copied = browser.client.cookies[COOKIE]
    no_token = await browser.post_form("/console/signout", csrf="")
    assert no_token.status_code == 403, "signing out needs the token too"
    response = await browser.post_form("/console/signout")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/signin?notice=signed-out"
    assert cookie_attributes(response.headers["set-cookie"])["max-age"] == "0"
    assert (await browser.get("/console/conversations")).status_code == 303
    replay = console.browser()
    replay.client.cookies.set(COOKIE, copied, domain="parley.test", path="/console")
    refused = await replay.get("/console/conversations")
    assert refused.status_code == 303
    assert "notice=expired" in refused.headers["location"]


async def test_a_revoked_key_ends_its_sessions(console: Console) -> None:
    browser = await console.signed_in("admin")
    records = await console.api.services.keys.list()
    await console.api.services.keys.revoke(records[-1].id)
    response = await browser.get("/console/conversations")
    assert response.status_code == 303
    assert "notice=revoked" in response.headers["location"]
    page = await browser.get(response.headers["location"])
    assert "no longer active" in page.text


async def test_a_forged_or_foreign_cookie_is_refused(console: Console) -> None:
    browser = await console.signed_in("admin")
    value = browser.client.cookies[COOKIE]
    body, mac = value.split(".")
    forged = console.browser()
    forged.client.cookies.set(COOKIE, f"{body}.{mac[:-2]}AA", domain="parley.test", path="/console")
    assert (await forged.get("/console/agents")).status_code == 303
