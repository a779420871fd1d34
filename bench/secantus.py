"""SecantusDB (a MongoDB wire-protocol server) as a subprocess the benchmark owns.

Started as ``secantusd-py --port N --storage-path :memory: --log-level WARNING`` on a free
loopback port, in a temporary working directory (so no stray ``secantusd.toml`` is picked up),
and stopped by its process id at the end. SecantusDB is a test server written in Python, not
a tuned MongoDB: its figures show the engine's behaviour over the real MongoDB driver, not
what a production MongoDB would cost.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import time
from pathlib import Path

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class SecantusUnavailable(RuntimeError):
    """SecantusDB is not installed or did not start; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_executable() -> str | None:
    venv_bin = str(Path(sys.executable).parent)
    return shutil.which("secantusd-py", path=venv_bin) or shutil.which("secantusd-py")


class SecantusServer:
    """``async with SecantusServer(workdir) as uri:`` runs one ephemeral server."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> str:
        exe = server_executable()
        if exe is None:
            raise SecantusUnavailable(
                "secantusd-py is not installed (it comes with the dev requirements: "
                "pip install -r requirements-dev.txt)"
            )
        port = free_port()
        self._process = await asyncio.create_subprocess_exec(
            exe,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            ":memory:",
            "--log-level",
            "WARNING",
            cwd=self._workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            await self._wait_for_port(port)
        except BaseException:
            await self._stop()
            raise
        return f"mongodb://127.0.0.1:{port}"

    async def __aexit__(self, *_: object) -> None:
        await self._stop()

    async def _wait_for_port(self, port: int) -> None:
        assert self._process is not None  # noqa: S101 - set by __aenter__
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise SecantusUnavailable(
                    f"secantusd-py exited with status {self._process.returncode}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise SecantusUnavailable(f"secantusd-py did not listen on port {port} within 30 s")

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
