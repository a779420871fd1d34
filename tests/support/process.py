"""``python -m bot`` as a separate process, for tests whose fakes run in the test's loop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.loopback import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Finished:
    code: int
    out: str
    err: str


def bot_environment(workdir: Path, **env: str) -> dict[str, str]:
    """A plain environment: only what a user would set, plus offline tiktoken files and a
    free ``PORT`` for the HTTP server (several bots may run at once)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "PYTHONPATH": str(REPO),
        "TIKTOKEN_CACHE_DIR": str(workdir / "tiktoken"),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        **env,
    }


async def run_bot(workdir: Path, *args: str, stdin: str = "", **env: str) -> Finished:
    """Run to the end (at most a minute) with ``env`` as the whole configuration."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=workdir,
        env=bot_environment(workdir, **env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


async def start_bot(workdir: Path, log: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    """Start a long-running ``python -m bot`` (e.g. ``run``) writing its output to ``log``."""
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=workdir,
            env=bot_environment(workdir, **env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )


async def create_key(workdir: Path, *args: str, **env: str) -> str:
    """``python -m bot keys create ARGS``: the key, which it prints alone on its last line."""
    made = await run_bot(workdir, "keys", "create", *args, **env)
    assert made.code == 0, made.err
    key = made.out.strip().splitlines()[-1]
    assert key.startswith("pk_"), made.out
    return key


async def wait_healthy(
    base: str,
    process: asyncio.subprocess.Process,
    log: Path,
    *,
    within: float = 60.0,
    path: str = "/healthz",
    ready: Callable[[httpx.Response], bool] = lambda response: True,
) -> None:
    """Wait until a started bot answers ``GET path`` (``/healthz``) with 200 and a response
    ``ready`` accepts; fail with its log if it exits."""
    async with asyncio.timeout(within), httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while True:
            if process.returncode is not None:
                output = await asyncio.to_thread(log.read_text)
                raise AssertionError(f"the bot exited early:\n{output}")
            try:
                response = await client.get(path)
                if response.status_code == 200 and ready(response):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def stop_bot(process: asyncio.subprocess.Process, *, within: float = 30.0) -> int:
    """SIGTERM a started bot and wait for its exit status; killed past ``within`` seconds."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), timeout=within)
    except TimeoutError:
        process.kill()
        return await process.wait()
