"""The HTTP API's share of a message's latency.

A server process (``bench.api_server``) runs the product's stack on SQLite with the instant
fake model. It first times the engine alone, then serves HTTP; this process then sends the
same number of messages as ``POST /api/v1/conversations/{id}/messages`` (JSON) from 1 and
from 50 concurrent clients over keep-alive connections, round-robin over the conversations.
Engine rows are timed inside the server; HTTP rows from the client, so they include the
client's own work and the loopback round trip. The HTTP layer's share is the difference.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import perf_counter, process_time

import aiohttp

from bench.report import Target
from bench.stats import Row, summarise

HTTP_TARGET_MS = 3.0
IN_FLIGHT = (1, 50)


async def _http_phase(
    base: str, key: str, *, ids: list[str], texts: list[str], messages: int, in_flight: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    plan = iter(range(messages))
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:

        async def client() -> None:
            for index in plan:
                path = f"/api/v1/conversations/{ids[index % len(ids)]}/messages"
                body = {"text": texts[index % len(texts)]}
                start = perf_counter()
                async with session.post(path, json=body) as response:
                    payload = await response.read()
                latencies.append(perf_counter() - start)
                if response.status != 200 or json.loads(payload)["failed"]:
                    raise RuntimeError(f"a benchmark request failed: {response.status}")

        wall = perf_counter()
        await asyncio.gather(*(client() for _ in range(in_flight)))
        return latencies, perf_counter() - wall


async def run_api(
    *, quick: bool, progress: Callable[[str], None]
) -> tuple[list[Row], list[Target], str]:
    conversations = 100 if quick else 500
    messages = 500 if quick else 5000
    with tempfile.TemporaryDirectory(prefix="parley-api-bench-") as tmp:
        progress(f"API: server with {conversations} conversations, engine alone first")
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.api_server",
            "--db",
            str(Path(tmp) / "api.sqlite3"),
            "--conversations",
            str(conversations),
            "--messages",
            str(messages),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        assert server.stdout is not None and server.stdin is not None  # noqa: S101, PT018
        try:
            line = await asyncio.wait_for(server.stdout.readline(), timeout=1800)
            if not line:
                raise RuntimeError("the API benchmark server did not start")
            ready = json.loads(line)
            base = f"http://127.0.0.1:{ready['port']}"
            rows: list[Row] = []
            for in_flight in IN_FLIGHT:
                engine = ready["engine"][str(in_flight)]
                row = summarise(
                    latencies=engine,
                    wall=sum(engine) / in_flight,
                    cpu=0.0,
                    store="sqlite",
                    section="api",
                    approach="engine",
                    scenario=f"engine alone, in flight {in_flight}",
                )
                row.in_flight = in_flight
                rows.append(row)
            for in_flight in IN_FLIGHT:
                progress(f"API: {messages:,} messages over HTTP, {in_flight} clients")
                cpu = process_time()
                latencies, wall = await _http_phase(
                    base,
                    ready["key"],
                    ids=ready["conversations"],
                    texts=ready["texts"],
                    messages=messages,
                    in_flight=in_flight,
                )
                row = summarise(
                    latencies=latencies,
                    wall=wall,
                    cpu=process_time() - cpu,
                    store="sqlite",
                    section="api",
                    approach="http",
                    scenario=f"HTTP API, {in_flight} clients",
                )
                row.in_flight = in_flight
                rows.append(row)
        finally:
            server.stdin.close()
            await asyncio.wait_for(server.wait(), timeout=60)
    targets = _judge(rows)
    setup = (
        f"API: {conversations} API conversations on SQLite, {messages:,} messages per row; "
        "engine rows timed in the server process, HTTP rows from a client process "
        "(aiohttp, keep-alive) on loopback, JSON replies."
    )
    return rows, targets, setup


def _judge(rows: list[Row]) -> list[Target]:
    targets = []
    by = {(row.approach, row.in_flight): row for row in rows}
    for in_flight in IN_FLIGHT:
        engine, http = by[("engine", in_flight)], by[("http", in_flight)]
        share = http.p99_ms - engine.p99_ms
        met = share < HTTP_TARGET_MS
        http.target = f"+{share:.2f}ms p99 {'met' if met else 'NOT met'}"
        targets.append(
            Target(
                store="sqlite",
                name=f"the HTTP layer adds < {HTTP_TARGET_MS:g} ms at p99 "
                f"({in_flight} client{'s' if in_flight > 1 else ''})",
                met=met,
                detail=f"p99 engine alone {engine.p99_ms:.2f} ms, over HTTP {http.p99_ms:.2f} "
                f"ms (+{share:.2f}); p50 {engine.p50_ms:.2f} -> {http.p50_ms:.2f} ms "
                f"(+{http.p50_ms - engine.p50_ms:.2f})",
            )
        )
    return targets
