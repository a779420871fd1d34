"""Fixtures shared by the whole suite. Fakes and helpers live in ``tests/support``."""

pytest_plugins = [
    "tests.support.network",
    "tests.support.secantus",
    "tests.support.stores",
    "tests.support.env",
    "tests.support.fake_openai",
]
