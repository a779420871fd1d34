"""Keep the developer's own environment and .env out of tests that read settings."""

from __future__ import annotations

import pytest

from config.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch
