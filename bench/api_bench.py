"""The HTTP API's share of a message's latency.

A server process (``bench.api_server``) runs the product's stack on SQLite with the instant
fake model. One message at a time, it alternates turns straight to the engine with turns
over HTTP from a client in its own process: the difference is the HTTP layer's share (client
work and the loopback round trip included). Then this process sends the same number of
messages from 50 concurrent clients over keep-alive connections, round-robin over the
conversations, beside the engine alone with 50 turns in flight.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

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
                    raise RuntimeError(
                        f"a benchmark request failed: {response.status} {payload[:300]!r}"
                    )

        wall = perf_counter()
        await asyncio.gather(*(client() for _ in range(in_flight)))
        return latencies, perf_counter() - wall


def _row(latencies: list[float], scenario: str, approach: str, in_flight: int, wall: float) -> Row:
    row = summarise(
        latencies=latencies,
        wall=wall,
        cpu=0.0,
        store="sqlite",
        section="api",
        approach=approach,
        scenario=scenario,
    )
    row.in_flight = in_flight
    return row


async def run_api(
    *, quick: bool, progress: Callable[[str], None]
) -> tuple[list[Row], list[Target], str]:
    conversations = 100 if quick else 500
    messages = 500 if quick else 5000
    with tempfile.TemporaryDirectory(prefix="parley-api-bench-") as tmp:
        progress(f"API: {conversations} conversations; engine and HTTP turns one at a time")
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
        assert server.stdout is not None  # noqa: S101 - piped above
        assert server.stdin is not None  # noqa: S101 - piped above
        try:
            line = await asyncio.wait_for(server.stdout.readline(), timeout=1800)
            if not line:
                raise RuntimeError("the API benchmark server did not start")
            ready = json.loads(line)
            progress(f"API: {messages:,} messages from 50 clients in another process")
            latencies, wall = await _http_phase(
                f"http://127.0.0.1:{ready['port']}",
                ready["key"],
                ids=ready["conversations"],
                texts=ready["texts"],
                messages=messages,
                in_flight=50,
            )
            server.stdin.close()
            finished = json.loads(await asyncio.wait_for(server.stdout.readline(), timeout=60))
        finally:
            if not server.stdin.is_closing():
                server.stdin.close()
            await asyncio.wait_for(server.wait(), timeout=60)
    engine_1, engine_50 = ready["engine"]["1"], ready["engine"]["50"]
    rows = [
        _row(engine_1, "engine alone, in flight 1", "engine", 1, sum(engine_1)),
        _row(
            ready["http_interleaved"],
            "HTTP round trip, 1 client",
            "http",
            1,
            sum(ready["http_interleaved"]),
        ),
        _row(ready["http_share_1"], "HTTP layer's own time, 1 client", "layer", 1, 0.0),
        _row(engine_50, "engine alone, in flight 50", "engine", 50, sum(engine_50) / 50),
        _row(latencies, "HTTP round trip, 50 clients", "http", 50, wall),
        _row(finished["http_share_50"], "HTTP layer's own time, 50 clients", "layer", 50, 0.0),
    ]
    setup = (
        f"API: {conversations} API conversations on SQLite, {messages:,} messages per row, "
        "JSON replies, aiohttp clients with keep-alive on loopback. In flight 1: engine and "
        "HTTP turns alternate in the server process. 50 clients: a separate client process; "
        "the engine row beside it is the engine alone with 50 turns in flight. 'HTTP layer's "
        "own time' is measured in the server: the request's time in the app minus its turn."
    )
    return rows, _judge(rows), setup


def _judge(rows: list[Row]) -> list[Target]:
    """The target is judged on one client: with 50, a request's time in the app also holds its
    wait for the event loop behind the other 49 turns, which is queueing, not the layer's cost;
    there the amortised cost per message (wall / messages) tells the layer's share."""
    by = {(row.approach, row.in_flight): row for row in rows}
    layer, engine, http = by[("layer", 1)], by[("engine", 1)], by[("http", 1)]
    met = layer.p99_ms < HTTP_TARGET_MS
    layer.target = f"p99<{HTTP_TARGET_MS:g}ms {'met' if met else 'NOT met'}"
    many, alone = by[("http", 50)], by[("engine", 50)]
    return [
        Target(
            store="sqlite",
            name=f"the HTTP layer adds < {HTTP_TARGET_MS:g} ms at p99 (one request at a time)",
            met=met,
            detail=f"HTTP layer's own time per request p50 {layer.p50_ms:.2f} ms, p99 "
            f"{layer.p99_ms:.2f} ms; round trip p50 {http.p50_ms:.2f} ms vs engine alone "
            f"{engine.p50_ms:.2f} ms. With 50 clients: {many.msgs_per_s:,.0f} msgs/s over "
            f"HTTP vs {alone.msgs_per_s:,.0f} engine alone, amortised "
            f"{many.wall_s / many.samples * 1000:.2f} vs "
            f"{alone.wall_s / alone.samples * 1000:.2f} ms per message",
        )
    ]
