"""Server addresses shown without their credentials."""

from __future__ import annotations

import pytest

from config.redact import redact_url, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://user:hunter2@host/v1", "http://user:***@host/v1"),
        ("https://user:@host", "https://user:***@host"),
        ("https://user@host/api/", "https://user@host/api/"),
        ("http://us:p@ss/w:rd@host/api", "http://us:***@host/api"),
        ("http://us:p%40ss@host/api", "http://us:***@host/api"),
        ("https://host/v1?api-key=hunter2&x=1", "https://host/v1?api-key=***&x=1"),
        ("https://host/v1?x=1;Token=hunter2", "https://host/v1?x=1;Token=***"),
        ("host:1/v1", "host:1/v1"),
    ],
)
def test_credentials_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_secret_parts_are_found_as_written_and_decoded() -> None:
    assert set(url_secrets("http://a:p%40ss@h/?key=k%3D1&x=2")) == {
        "p%40ss",
        "p@ss",
        "k%3D1",
        "k=1",
    }
    assert url_secrets("http://h/v1") == []
    assert url_secrets(None) == []
