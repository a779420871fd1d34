"""Structured replies: ask for JSON, fall back when a server cannot, repair once, stream the
visible field out of partial JSON, and never lose a reply.

The order of attempts is strict ``json_schema``, then ``json_object`` (JSON mode) with the
schema in the prompt, then the schema in the prompt alone. A server that refuses a format is
remembered per provider and model, so later turns start with what works. Every reply is
validated with JSON Schema (``jsonschema``), so ``anyOf``, ``pattern`` or ``minItems`` hold in
the fallback modes too; broken JSON is first mended locally (``json-repair``), and only when
that does not give a valid object is the model asked once for a repair. The reasoning local
models write before their answer (``<think>...</think>``) is never shown, parsed or stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from bot.fieldstream import FieldReader
from bot.llm import ChatRequest, FormatRejected, ModelClient, ModelError, ResponseFormat
from bot.lru import BoundedLRU
from bot.metrics import Metrics
from bot.prompt import ChatMessage
from bot.thinking import ThinkingFilter, without_thinking
from config.schemas import schema_key, validator

logger = logging.getLogger(__name__)

Mode = Literal["json_schema", "json_object", "prompt"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "prompt")
_MEMORY = 256
"""How many models' refused formats (and schemas' validators) are remembered."""


class VisibleText(Protocol):
    """Where the visible text of a reply goes while it is produced."""

    def extend(self, gained: str) -> None:
        """It grew by ``gained``."""
        ...

    def replace(self, text: str) -> None:
        """It is now ``text`` (a fallback's first words, a mended or repaired reply)."""
        ...


@dataclass(frozen=True, slots=True)
class Generated:
    text: str
    """What people see: the reply field, or the raw text when the JSON stayed invalid."""
    data: dict[str, Any] | None
    raw: str
    error: str | None = None
    mode: Mode | None = None


def strict_schema_ok(schema: dict[str, Any]) -> bool:
    """Whether OpenAI's strict mode accepts the schema: every object closed and fully required."""
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", [])) != set(properties):
            return False
        return all(strict_schema_ok(sub) for sub in properties.values() if isinstance(sub, dict))
    items = schema.get("items")
    if isinstance(items, dict):
        return strict_schema_ok(items)
    return True


def json_start(text: str) -> str:
    """The text from the first ``{``: models in prompt mode often wrap JSON in prose or fences."""
    start = text.find("{")
    return text[start:] if start >= 0 else ""


def parse_object(text: str) -> dict[str, Any] | None:
    """The complete JSON object in ``text`` (fences and prose around it tolerated)."""
    candidate = json_start(text).strip()
    if candidate.endswith("```"):
        candidate = candidate.removesuffix("```").rstrip()
    end = candidate.rfind("}")
    if end < 0:
        return None
    try:
        value = json.loads(candidate[: end + 1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def mend_object(text: str) -> dict[str, Any] | None:
    """The JSON object in broken ``text`` as json-repair mends it (unclosed brackets, trailing
    commas, single quotes...), or None when what it finds is not one object. Runs in a worker
    thread: it is pure Python and a long reply takes it a while."""
    candidate = json_start(text).strip()
    if not candidate:
        return None
    import json_repair  # 1.4 MiB that only a broken reply needs, imported in this worker

    try:
        value = json_repair.repair_json(candidate.removesuffix("```"), return_objects=True)
    except Exception:  # json-repair gives up on some inputs in its own ways
        logger.debug("json-repair could not mend the reply", exc_info=True)
        return None
    return value if isinstance(value, dict) and value else None


_VALIDATORS: BoundedLRU[str, Validator] = BoundedLRU(_MEMORY)
"""Validators by schema: the agents' shapes and the engine's own, built once each."""
_MAX_PROBLEM = 160


def reply_problems(value: Any, schema: dict[str, Any]) -> list[str]:
    """What in ``value`` does not match ``schema`` (JSON Schema 2020-12: types, required and
    extra fields, enums, ``anyOf``, ``pattern``, ``minItems``...), in short lines a model can
    act on; empty when it matches."""
    key = schema_key(schema)
    checker = _VALIDATORS.get(key)
    if checker is None:
        checker = validator(schema)
        _VALIDATORS.put(key, checker)
    problems = [_problem(error) for error in checker.iter_errors(value)]
    return list(dict.fromkeys(line for group in problems for line in group))


def _problem(error: ValidationError) -> list[str]:
    """One validation error as lines naming the field (``field 'recipes[0]'``)."""
    path = list(error.absolute_path)
    name = f"field {_field(path)!r}" if path else "the reply"
    kind, expected, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        allowed = [expected] if isinstance(expected, str) else list(expected)
        return [f"{name} must be {' or '.join(map(str, allowed))}"]
    if kind == "required" and isinstance(instance, dict):
        return [f"missing field {_field([*path, k])!r}" for k in expected if k not in instance]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        return [
            f"unexpected field {_field([*path, k])!r}"
            for k in instance
            if k not in known and not any(re.search(p, k) for p in patterns)
        ]
    if kind == "enum":
        return [f"{name} must be one of {expected}"]
    message = error.message
    if len(message) > _MAX_PROBLEM:
        message = message[: _MAX_PROBLEM - 3] + "..."
    return [f"{name}: {message}"]


def _field(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class StructuredReplies:
    """Runs one structured (or plain) generation with fallback and repair."""

    def __init__(self, model: ModelClient, *, metrics: Metrics | None = None) -> None:
        self._model = model
        self._metrics = metrics or Metrics()
        self._refused: BoundedLRU[tuple[str | None, str], frozenset[Mode]] = BoundedLRU(_MEMORY)
        """Formats refused, by provider and model: one model name may be served by two
        providers that differ (OpenAI and a gateway, say)."""

    def modes_for(self, request: ChatRequest, schema: dict[str, Any]) -> list[Mode]:
        refused = self._refused.get((request.provider, request.model)) or frozenset()
        modes = [mode for mode in MODES if mode not in refused]
        if not strict_schema_ok(schema) and "json_schema" in modes:
            modes.remove("json_schema")
        return modes

    def _remember_refusal(self, request: ChatRequest, mode: Mode) -> None:
        key = (request.provider, request.model)
        self._refused.put(key, (self._refused.get(key) or frozenset()) | {mode})

    async def generate(
        self,
        request: ChatRequest,
        *,
        schema: dict[str, Any] | None,
        reply_field: str | None,
        on_text: VisibleText | None = None,
        stream: bool = True,
    ) -> Generated:
        """Produce one reply. ``on_text`` receives the visible text each time it grows.

        Raises ModelError when the model fails (after the SDK's retries); invalid JSON after
        the repair attempt is not an error: the raw text is returned with ``error`` set.
        """
        if schema is None:
            raw = await self._run(request, on_text, None, stream)
            return Generated(text=raw.strip(), data=None, raw=raw)
        last_refusal: FormatRejected | None = None
        for mode in self.modes_for(request, schema):
            attempt = replace(request, response_format=_format(mode, schema))
            try:
                raw = await self._run(attempt, on_text, reply_field, stream)
            except FormatRejected as exc:
                logger.info("model %s refused %s output; falling back", request.model, mode)
                self._metrics.structured_fallback(mode)
                self._remember_refusal(request, mode)
                last_refusal = exc
                continue
            return await self._validated(
                request=attempt,
                raw=raw,
                schema=schema,
                reply_field=reply_field,
                mode=mode,
                on_text=on_text,
            )
        assert last_refusal is not None  # noqa: S101 - "prompt" mode is never refused
        raise last_refusal

    async def _run(
        self,
        request: ChatRequest,
        on_text: VisibleText | None,
        reply_field: str | None,
        stream: bool,
    ) -> str:
        """The model's answer, without the reasoning a local model writes before it."""
        if not stream:
            return without_thinking(await self._model.complete(request))
        thinking = ThinkingFilter()
        field = None if reply_field is None else FieldReader(reply_field)
        fresh = True  # this run's first text replaces what an earlier run (a fallback) showed
        async for piece in self._model.stream(request):
            gained = thinking.feed(piece)
            if on_text is None or not gained:
                continue
            if field is not None:
                gained = field.feed(gained)
            if gained:  # each piece is read once: the cost grows with the reply, not its square
                if fresh:
                    on_text.replace(gained)
                    fresh = False
                else:
                    on_text.extend(gained)
        return thinking.finish()

    async def _validated(
        self,
        *,
        request: ChatRequest,
        raw: str,
        schema: dict[str, Any],
        reply_field: str | None,
        mode: Mode,
        on_text: VisibleText | None,
    ) -> Generated:
        data = parse_object(raw)
        if data is None:  # broken JSON: mended here if that is enough, before a repair call
            mended = await asyncio.to_thread(mend_object, raw)
            if mended is not None and not reply_problems(mended, schema):
                logger.info("model %s returned broken JSON, mended locally", request.model)
                text = _visible(mended, reply_field, raw)
                if on_text is not None:
                    on_text.replace(text)
                return Generated(text=text, data=mended, raw=raw, mode=mode)
        problems = (
            ["the reply is not a JSON object"] if data is None else reply_problems(data, schema)
        )
        if not problems and data is not None:
            return Generated(text=_visible(data, reply_field, raw), data=data, raw=raw, mode=mode)
        logger.warning(
            "model %s returned invalid JSON (%s); asking once for a repair",
            request.model,
            "; ".join(problems[:3]),
        )
        repair = replace(
            request,
            metadata={**request.metadata, "purpose": "repair"},
            messages=(
                *request.messages,
                ChatMessage(role="assistant", content=raw),
                ChatMessage(
                    role="user",
                    content=(
                        "Your last reply was not valid: "
                        + "; ".join(problems[:5])
                        + ". Send the corrected reply: exactly one JSON object matching the "
                        "schema, with no other text."
                    ),
                ),
            ),
        )
        try:
            repaired = await self._run(repair, None, None, stream=False)
        except ModelError as exc:
            logger.warning("repair request failed: %s", exc)
            repaired = ""
        data = parse_object(repaired)
        if data is None and repaired:
            data = await asyncio.to_thread(mend_object, repaired)
        valid = data is not None and not reply_problems(data, schema)
        self._metrics.structured_repair(repaired=valid)
        if data is not None and valid:
            text = _visible(data, reply_field, repaired)
            if on_text is not None:
                on_text.replace(text)
            return Generated(text=text, data=data, raw=repaired, mode=mode)
        logger.warning(
            "model %s reply still invalid after repair; showing the raw text", request.model
        )
        return Generated(
            text=raw.strip(),
            data=None,
            raw=raw,
            error="invalid JSON: " + "; ".join(problems[:3]),
            mode=mode,
        )


def _visible(data: dict[str, Any], reply_field: str | None, raw: str) -> str:
    if reply_field is None:
        return raw.strip()
    value = data.get(reply_field)
    return value.strip() if isinstance(value, str) else raw.strip()


def _format(mode: Mode, schema: dict[str, Any]) -> ResponseFormat | None:
    if mode == "json_schema":
        return ResponseFormat(kind="json_schema", schema=schema)
    if mode == "json_object":
        return ResponseFormat(kind="json_object")
    return None
