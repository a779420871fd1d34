"""Server addresses without their secrets, for anything people or logs see.

``OPENAI_BASE_URL``, ``SLACK_API_URL``, ``DISCORD_API_URL`` and ``MONGODB_URI`` may carry a
password (``http://user:pass@host``) or a key in the query string (``?api-key=...``); they are
shown everywhere as :func:`redact_url` renders them, and :func:`url_secrets` hands the secret
parts to the log redactor as a second line of defence.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import unquote

MASK = "***"
HTTP_SECRET_PARAMS = frozenset(
    {"key", "api-key", "api_key", "apikey", "token", "access_token", "password", "secret", "sig"}
)
"""Query parameters of an HTTP base URL whose values are secrets (lowercase)."""


def redact_url(url: str, *, secret_params: Collection[str] = HTTP_SECRET_PARAMS) -> str:
    """``url`` with the password of its user info and the values of ``secret_params`` (query
    parameters, compared in lowercase) replaced by ``***``.

    User info ends at the last ``@`` before the query string, so a password with unescaped
    ``@``, ``:`` or ``/`` is still hidden.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    before_query, question, query = rest.partition("?")
    userinfo, at, location = before_query.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        before_query = f"{user}{':' + MASK if colon else ''}@{location}"
    if question:
        query = _redact_query(query, secret_params)
    return f"{scheme}{separator}{before_query}{question}{query}"


def url_secrets(
    url: str | None, *, secret_params: Collection[str] = HTTP_SECRET_PARAMS
) -> list[str]:
    """The secret parts of ``url`` as written and decoded: its password and secret parameters."""
    if not url:
        return []
    found: list[str] = []
    _, separator, rest = url.partition("://")
    before_query, _, query = (rest if separator else url).partition("?")
    userinfo, at, _ = before_query.rpartition("@")
    if at and ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    for part in re.split(r"[&;]", query):
        name, equals, value = part.partition("=")
        if equals and unquote(name).lower() in secret_params:
            found.append(value)
    return [text for secret in found for text in {secret, unquote(secret)} if text]


def _redact_query(query: str, secret_params: Collection[str]) -> str:
    parts = re.split(r"([&;])", query)
    for index, part in enumerate(parts):
        name, equals, _value = part.partition("=")
        if equals and unquote(name).lower() in secret_params:
            parts[index] = f"{name}={MASK}"
    return "".join(parts)
