"""Keep the developer's own environment and .env out of tests that read settings."""

from __future__ import annotations

import os

import pytest

from config.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name in list(os.environ):
        if name.upper().startswith("MODEL_PROVIDERS__"):  # nested settings of the providers
            monkeypatch.delenv(name)
    return monkeypatch
