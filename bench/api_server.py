"""The server side of the API benchmark, run as its own process by ``bench.api_bench``.

``python -m bench.api_server --db PATH --conversations N --messages M``: builds the product's
stack (SQLite store, engine, HTTP app on a free loopback port) with the instant fake model,
creates an API key and N API conversations, then measures:

* one message at a time, alternately straight to the engine and over HTTP from a client in
  this process, so both see the same machine and store at the same moment;
* the engine alone with 50 turns in flight.

Every HTTP request is also timed inside the server, from the moment the app is called to the
last byte of the response handed to the server, minus the turn itself (from ``reply`` to its
result): that is the HTTP layer's own time per request (routing, the key check, reading the
conversation, validation, serialising), free of the store's and the model's jitter.

It prints one JSON line (port, key, conversations, latencies), serves HTTP for the 50-client
phase that ``bench.api_bench`` runs from its own process, and when stdin closes prints a
second line with the server-side times of those requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from contextvars import ContextVar
from pathlib import Path
from time import perf_counter

import aiohttp
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.host import WebHost
from adapters.http.services import Services
from bench.engine_bench import run_pool, timed_turn
from bench.fake_model import InstantModel
from bench.workload import MODEL, TextSource, bench_agents
from bot.engine import Engine, IncomingMessage, Turn
from bot.tokens import TokenCounter
from config.settings import Settings
from memory.base import PlatformKey
from memory.sqlite import SqliteStore

_REQUEST: ContextVar[dict[str, float] | None] = ContextVar("bench_request", default=None)


class RequestClock:
    """ASGI middleware: when each request entered the app and when its response ended."""

    def __init__(self, app: ASGIApp, *, log: list[dict[str, float]]) -> None:
        self._app = app
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        record = {"start": perf_counter()}
        token = _REQUEST.set(record)

        async def timed(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                record["end"] = perf_counter()

        try:
            await self._app(scope, receive, timed)
        finally:
            _REQUEST.reset(token)
            self._log.append(record)


class TimedEngine(Engine):
    """Notes, for the request that started it, when a turn began and when its result was set."""

    def reply(self, incoming: IncomingMessage) -> Turn:
        record = _REQUEST.get()
        started = perf_counter()
        turn = super().reply(incoming)
        if record is not None:
            record["turn"] = started

            def ended(_: object) -> None:
                record["turn"] = perf_counter() - record["turn"]

            turn._result.add_done_callback(ended)
        return turn


def http_shares(log: list[dict[str, float]]) -> list[float]:
    """Seconds each turn request spent in the HTTP layer: the request's time minus its turn."""
    return [r["end"] - r["start"] - r["turn"] for r in log if "end" in r and "turn" in r]


async def _interleaved(
    engine: Engine,
    base: str,
    key: str,
    *,
    convs: list[tuple[PlatformKey, str]],
    texts: list[str],
    messages: int,
) -> tuple[list[float], list[float]]:
    """Alternate one turn straight to the engine and one over HTTP (first and second half of
    the conversations); the HTTP figure carries the client's work and the loopback trip."""
    alone: list[float] = []
    over_http: list[float] = []
    half = len(convs) // 2
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(base, headers=headers) as session:
        for index in range(messages):
            text = texts[index % len(texts)]
            incoming = IncomingMessage(key=convs[index % half][0], text=text)
            alone.append(await timed_turn(engine, incoming))
            conversation = convs[half + index % (len(convs) - half)][1]
            start = perf_counter()
            async with session.post(
                f"/api/v1/conversations/{conversation}/messages", json={"text": text}
            ) as response:
                payload = await response.read()
            over_http.append(perf_counter() - start)
            if response.status != 200 or json.loads(payload)["failed"]:
                raise RuntimeError("a benchmark turn failed")
    return alone, over_http


async def main(args: argparse.Namespace) -> None:
    store = SqliteStore(path=Path(args.db))
    await store.open()
    tokens = TokenCounter()
    tokens.warm(MODEL)
    model = InstantModel()
    engine = TimedEngine(  # one key drives all 50 clients: its turn cap must not bind
        store=store,
        agents=bench_agents(),
        model=model,
        tokens=tokens,
        default_model=MODEL,
        api_turns_per_key=1000,
    )
    settings = Settings(
        _env_file=None,
        openai_base_url="http://127.0.0.1:9/v1",
        api_rate=1_000_000.0,
        api_burst=1_000_000,
        console_enabled=False,
    )
    services = Services.build(settings, engine)
    key, _ = await services.keys.create(name="bench", scope="write")
    convs = []
    for _ in range(args.conversations):
        conversation, _ = await engine.open_conversation(
            key=PlatformKey(platform="api", channel=uuid.uuid4().hex), agent_id="chef"
        )
        convs.append((conversation.key, conversation.id))
    source = TextSource(seed=11)
    texts = [source.user_text() for _ in range(257)]
    log: list[dict[str, float]] = []
    web = WebHost(host="127.0.0.1", port=0, services=services)
    web.app.add_middleware(RequestClock, log=log)
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    alone, over_http = await _interleaved(
        engine, base, key, convs=convs, texts=texts, messages=args.messages
    )
    shares_1 = http_shares(log)
    log.clear()
    turns = (
        IncomingMessage(key=convs[i % len(convs)][0], text=texts[i % len(texts)])
        for i in range(args.messages)
    )
    alone_50 = await run_pool(engine, turns, 50)
    ready = {
        "port": web.port,
        "key": key,
        "conversations": [c for _, c in convs],
        "texts": texts,
        "engine": {"1": alone, "50": alone_50},
        "http_interleaved": over_http,
        "http_share_1": shares_1,
    }
    print(json.dumps(ready), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    print(json.dumps({"http_share_50": http_shares(log)}), flush=True)
    await web.stop()
    await engine.aclose()
    await model.close()
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.api_server")
    parser.add_argument("--db", required=True)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--messages", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
