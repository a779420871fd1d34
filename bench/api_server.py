"""The server side of the API benchmark, run as its own process by ``bench.api_bench``.

``python -m bench.api_server --db PATH --conversations N --messages M``: builds the product's
stack (SQLite store, engine, HTTP app) with the instant fake model, creates an API key and N
API conversations, measures the engine alone (the same turns the HTTP clients will send,
with 1 and 50 in flight), prints one JSON line (key, conversation ids, engine latencies),
then serves HTTP on a free loopback port (printed in the same line) until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from time import perf_counter

from adapters.http.host import WebHost
from adapters.http.services import Services
from bench.fake_model import InstantModel
from bench.workload import MODEL, TextSource, bench_agents
from bot.engine import Engine, IncomingMessage
from bot.tokens import TokenCounter
from config.settings import Settings
from memory.base import PlatformKey
from memory.sqlite import SqliteStore


async def _engine_phase(
    engine: Engine, keys: list[PlatformKey], texts: list[str], messages: int, in_flight: int
) -> list[float]:
    latencies: list[float] = []
    plan = iter(range(messages))

    async def worker() -> None:
        for index in plan:
            incoming = IncomingMessage(key=keys[index % len(keys)], text=texts[index % len(texts)])
            start = perf_counter()
            result = await engine.reply(incoming).result()
            latencies.append(perf_counter() - start)
            if result.failed:
                raise RuntimeError("a benchmark turn failed")

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return latencies


async def main(args: argparse.Namespace) -> None:
    store = SqliteStore(path=Path(args.db))
    await store.open()
    tokens = TokenCounter()
    tokens.warm(MODEL)
    model = InstantModel()
    engine = Engine(
        store=store, agents=bench_agents(), model=model, tokens=tokens, default_model=MODEL
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        openai_base_url="http://127.0.0.1:9/v1",
        api_rate=1_000_000.0,
        api_burst=1_000_000,
        console_enabled=False,
    )
    services = Services.build(settings, engine)
    key, _ = await services.keys.create(name="bench", scope="write")
    keys = []
    for _ in range(args.conversations):
        conversation, _ = await engine.open_conversation(
            key=PlatformKey(platform="api", channel=uuid.uuid4().hex), agent_id="chef"
        )
        keys.append(conversation.key)
    source = TextSource(seed=11)
    texts = [source.user_text() for _ in range(257)]
    engine_latencies = {
        str(in_flight): await _engine_phase(engine, keys, texts, args.messages, in_flight)
        for in_flight in (1, 50)
    }
    ids = []
    for platform_key in keys:
        found = await store.find_conversation(key=platform_key)
        assert found is not None  # noqa: S101 - made above
        ids.append(found.id)
    web = WebHost(host="127.0.0.1", port=0, services=services)
    await web.start()
    print(
        json.dumps(
            {
                "port": web.port,
                "key": key,
                "conversations": ids,
                "engine": engine_latencies,
                "texts": texts,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
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
