"""The operating system's Chromium for Playwright (its own browser download is not used).

Without Chromium a browser test is skipped where people run the tests on a machine of their
own; with ``CI`` set it fails instead, because CI installs Chromium (``.ci/run``) and a skip
there would hide a missing piece.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    for candidate in (shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate:
            return candidate
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def chromium_or_skip() -> str:
    """Chromium's path; a skip without it, a failure in CI."""
    found = chromium()
    if found is None:
        message = "no Chromium installed (apt-get install chromium): browser test skipped"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    return found
