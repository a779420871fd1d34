"""``python -m bot`` as a separate process, for tests whose fakes run in the test's loop."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

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
