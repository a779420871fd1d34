"""Slack's acknowledgement through the whole process: ``python -m bot run`` in Socket Mode
against the fake Slack, whose Web API takes 100 ms to answer every call (as Slack's does from
far away), and the fake model server.

Slack wants each envelope acknowledged within 3 s, and Parley acknowledges a message only once
its turn journal entry is stored: the acknowledgement must wait for that write and nothing
else (no Web API call, no model call). Threads receive their messages in rounds, spread over
time; each round waits for the replies of the one before. The fake Slack measures each
acknowledgement from the envelope sent to the acknowledgement received. The bot's own CPU time
(from ``/proc``) over the load gives CPU per reply, and its peak RSS is read at the end (shown
only: the peak RSS target belongs to ``bench.footprint``, which runs the target's
configuration).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

from bench.proc import cpu_seconds, memory_mib
from bench.report import Target
from bench.stats import Row, summarise
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_slack import FakeSlack, mention_event
from tests.support.loopback import free_port
from tests.support.process import REPO, start_bot, stop_bot, wait_healthy

API_LATENCY = 0.1
ACK_TARGET_MS = 100.0
CPU_TARGET_MS = 20.0
CHANNELS = ("C0KITCHEN", "C0GARDEN", "C0PANTRY")


def _environment(slack: FakeSlack, model: FakeOpenAI, workdir: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_MAX_RETRIES": "0",
        "BOT_DATA_DIR": str(workdir / "data"),
        "LOG_LEVEL": "WARNING",
    }


async def run_slack_ack(
    *, threads: int, rounds: int, rate: float, progress: Callable[[str], None]
) -> tuple[list[Row], list[Target], str]:
    """``threads`` Slack threads, ``rounds`` messages each, sent at ``rate`` a second."""
    with tempfile.TemporaryDirectory(prefix="parley-slack-bench-") as tmp:
        workdir = Path(tmp)
        shutil.copy(REPO / "agents.yaml", workdir / "agents.yaml")
        async with FakeSlack(api_latency=API_LATENCY) as slack, FakeOpenAI() as model:
            env = _environment(slack, model, workdir)
            port = str(free_port())
            log = workdir / "bot.log"
            process = await start_bot(workdir, log, "run", **env, PORT=port)
            try:
                await wait_healthy(f"http://127.0.0.1:{port}", process, log)
                await slack.wait_connected()
                progress(
                    f"Slack: {threads} threads x {rounds} messages at {rate:g}/s, "
                    f"Web API {API_LATENCY * 1000:.0f} ms"
                )
                cpu_before = cpu_seconds(process.pid)
                started = perf_counter()
                roots: list[tuple[str, str]] = []
                for n in range(rounds):
                    for t in range(threads):
                        channel = CHANNELS[t % len(CHANNELS)]
                        text = f"thread {t} message {n}: what should I cook tonight?"
                        if n == 0:
                            event = mention_event(text, channel=channel)
                            roots.append((channel, event["ts"]))
                        else:
                            event = mention_event(text, channel=channel, thread_ts=roots[t][1])
                        await slack.send_event(event)
                        await asyncio.sleep(1 / rate)
                    await slack.wait_for(
                        lambda done=n + 1: all(
                            _finished(slack, channel, root) >= done for channel, root in roots
                        ),
                        within=120.0,
                    )
                wall = perf_counter() - started
                cpu = cpu_seconds(process.pid) - cpu_before
                rss = memory_mib(process.pid).peak
            finally:
                await stop_bot(process)
            acks = [e.ack_seconds for e in slack.envelopes if e.ack_seconds is not None]
            calls = len(slack.calls)
    replies = threads * rounds
    if len(acks) != replies:
        raise RuntimeError(f"{replies - len(acks)} envelopes were not acknowledged")
    row = summarise(
        latencies=acks,
        wall=wall,
        cpu=cpu,
        store="sqlite",
        section="slack",
        approach="ack",
        scenario=f"Socket Mode acknowledgement, {threads} threads, Web API 100 ms",
    )
    row.target = f"p99<{ACK_TARGET_MS:g}ms {'met' if row.p99_ms < ACK_TARGET_MS else 'NOT met'}"
    target = Target(
        store="sqlite",
        name=f"Slack acknowledgement p99 < {ACK_TARGET_MS:g} ms with the Web API at 100 ms",
        met=row.p99_ms < ACK_TARGET_MS,
        detail=f"p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms over {len(acks):,} "
        f"envelopes; bot process: {cpu / replies * 1000:.1f} ms CPU per reply, "
        f"peak RSS {rss:.0f} MiB, {calls / replies:.1f} Web API calls per reply",
    )
    cpu_per_reply = cpu / replies * 1000
    targets = [
        target,
        Target(
            store="sqlite",
            name=f"CPU per streamed reply <= {CPU_TARGET_MS:g} ms (the bot process, Socket Mode)",
            met=cpu_per_reply <= CPU_TARGET_MS,
            detail=f"{cpu_per_reply:.1f} ms over {replies:,} replies, "
            f"{calls / replies:.1f} Web API calls per reply",
        ),
    ]
    setup = (
        "Slack: python -m bot run (SQLite, Socket Mode) against the fake Slack (every Web API "
        f"call answered after {API_LATENCY * 1000:.0f} ms) and the fake model server; "
        "acknowledgement times measured by the fake Slack."
    )
    return [row], targets, setup


def _finished(slack: FakeSlack, channel: str, root: str) -> int:
    """The bot's messages in a thread that are no longer streaming."""
    return sum(not message.streaming for message in slack.thread(channel, root))
