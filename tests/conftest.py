"""Fixtures shared by the whole suite. Fakes and helpers live in ``tests/support``."""

pytest_plugins = [
    "tests.support.network",
    "tests.support.secantus",
    "tests.support.stores",
    "tests.support.env",
    "tests.support.logs",
    "tests.support.fake_openai",
    "tests.support.engines",
    "tests.support.fake_slack",
    "tests.support.slack_bot",
    "tests.support.discord_bot",
    "tests.support.api",
]
