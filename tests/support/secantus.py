"""SecantusDB, a MongoDB wire-protocol server, as a test-only subprocess.

Product code never imports it: the stores reach it through ``MONGODB_URI`` like any MongoDB.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.support.loopback import free_port

_START_TIMEOUT = 30.0


def _server_command(port: int) -> list[str]:
    exe = shutil.which("secantusd-py", path=str(Path(sys.executable).parent)) or shutil.which(
        "secantusd-py"
    )
    if exe is None:
        raise RuntimeError("secantusd-py is not installed; run the README's test command")
    return [
        exe,
        "--port",
        str(port),
        "--storage-path",
        ":memory:",
        "--log-level",
        "WARNING",
    ]


def _wait_for_ping(uri: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"secantusd-py exited with status {process.returncode}")
        client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=500)
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            last_error = exc
            time.sleep(0.1)
        else:
            return
        finally:
            client.close()
    raise RuntimeError(f"secantusd-py did not answer ping in {_START_TIMEOUT}s: {last_error}")


@pytest.fixture(scope="session")
def secantus_uri() -> Iterator[str]:
    """A running SecantusDB for the whole session; each test uses its own database."""
    port = free_port()
    process = subprocess.Popen(
        _server_command(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"mongodb://127.0.0.1:{port}"
    try:
        _wait_for_ping(uri, process)
        yield uri
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
