"""Schemathesis fuzzes every operation of the published OpenAPI document against the app,
with a key, and each answer must be one the document declares: its status, its content type
and its body's schema, and never a server error.

The app runs on a real server on loopback in the test's event loop (its store, engine and
locks live there); Schemathesis generates and sends from a worker thread. The seed is fixed
and the number of examples per operation bounded, so a run is the same every time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.adapters.http.helpers import API, client_with, create_conversation
from tests.support.api import Api

SEED = 17
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 25}
"""Examples per operation and mode (fewer where there are fewer to make); with the runs on
known ids, about 2,000 requests over the document's operations."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(
    spec: dict[str, Any], base_url: str, key: str, known: dict[str, str]
) -> tuple[list[str], int]:
    """Every operation's cases against ``base_url``: what failed, one entry per operation and
    mode, and how many requests were sent.

    ``known`` gives path parameters that exist (a conversation, an agent), so the fuzzer
    reaches past the 404s and into the routes' own answers for some of its cases."""
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    sent = 0

    def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        nonlocal sent
        sent += 1

    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {key}"
        session.hooks["response"].append(count)
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode, examples in EXAMPLES.items():
                given = {
                    name: value
                    for name, value in known.items()
                    if any(p.name == name for p in operation.path_parameters)
                }
                for parameters in ({}, given) if given else ({},):
                    problem = _run(
                        operation,
                        mode,
                        count=examples,
                        parameters=parameters,
                        base_url=base_url,
                        session=session,
                    )
                    if problem:
                        failures.append(f"{operation.label} ({mode.value}): {problem}")
    return failures, sent


def _run(
    operation: Any,
    mode: GenerationMode,
    *,
    count: int,
    parameters: dict[str, str],
    base_url: str,
    session: requests.Session,
) -> str | None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=parameters or None)

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(strategy)
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=10)

    try:
        check()
    except Unsatisfiable:  # nothing to send that the document forbids (no parameters, no body)
        return None
    except (Exception, BaseExceptionGroup) as exc:  # a FailureGroup is a BaseExceptionGroup
        return str(exc)[:1500]
    return None


async def test_every_answer_of_every_operation_is_documented(api: Api) -> None:
    key = await api.key("admin")
    client = client_with(api, key)
    spec = (await client.get(f"{API}/openapi.json")).json()
    conversation = await create_conversation(client)
    known = {"conversation_id": conversation["id"], "agent_id": "chef"}
    base_url = await api.serve()
    failures, sent = await asyncio.to_thread(fuzz, spec, base_url, key, known)
    assert not failures, "\n\n".join(failures)
    assert sent > 1000, sent
