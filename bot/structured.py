"""Structured replies: ask for JSON, fall back when a server cannot, repair once, stream the
visible field out of partial JSON, and never lose a reply.

The order of attempts is strict ``json_schema``, then ``json_object`` (JSON mode) with the
schema in the prompt, then the schema in the prompt alone. A server that refuses a format is
remembered per model, so later turns start with what works.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic_core import from_json

from bot.llm import ChatRequest, FormatRejected, ModelClient, ModelError, ResponseFormat
from bot.prompt import ChatMessage
from bot.thinking import ThinkingFilter, without_thinking

logger = logging.getLogger(__name__)

Mode = Literal["json_schema", "json_object", "prompt"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "prompt")
_MEMORY = 256
"""How many models' refused formats are remembered."""


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


def partial_field(text: str, field: str) -> str | None:
    """The value of ``field`` so far in a JSON object that is still being written."""
    candidate = json_start(text)
    if not candidate:
        return None
    try:
        value = from_json(candidate, allow_partial="trailing-strings")
    except ValueError:
        return None
    if isinstance(value, dict):
        found = value.get(field)
        return found if isinstance(found, str) else None
    return None


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


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def schema_problems(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """What does not match the schema: types, required and extra fields, enums, items.

    Covers the subset of JSON Schema that response shapes use; unknown keywords are ignored.
    """
    problems: list[str] = []
    name = where or "the reply"
    expected = schema.get("type")
    if isinstance(expected, str | list):
        allowed = [expected] if isinstance(expected, str) else expected
        kinds = tuple(t for kind in allowed for t in _TYPES.get(str(kind), ()))
        is_bool = isinstance(value, bool)
        if kinds and (not isinstance(value, kinds) or (is_bool and "boolean" not in allowed)):
            return [f"{name} must be {' or '.join(map(str, allowed))}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{name} must be one of {schema['enum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for required in schema.get("required", []):
            if required not in value:
                problems.append(f"missing field {required!r}")
        if schema.get("additionalProperties") is False:
            problems += [f"unexpected field {key!r}" for key in value if key not in properties]
        for key, sub in properties.items():
            if key in value and isinstance(sub, dict):
                problems += schema_problems(value[key], sub, f"field {key!r}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{name}[{index}]")
    return problems


class StructuredReplies:
    """Runs one structured (or plain) generation with fallback and repair."""

    def __init__(self, model: ModelClient) -> None:
        self._model = model
        self._refused: OrderedDict[str, set[Mode]] = OrderedDict()

    def modes_for(self, model: str, schema: dict[str, Any]) -> list[Mode]:
        refused = self._refused.get(model, set())
        modes = [mode for mode in MODES if mode not in refused]
        if not strict_schema_ok(schema) and "json_schema" in modes:
            modes.remove("json_schema")
        return modes

    def _remember_refusal(self, model: str, mode: Mode) -> None:
        self._refused.setdefault(model, set()).add(mode)
        self._refused.move_to_end(model)
        while len(self._refused) > _MEMORY:
            self._refused.popitem(last=False)

    async def generate(
        self,
        request: ChatRequest,
        *,
        schema: dict[str, Any] | None,
        reply_field: str | None,
        on_text: Callable[[str], None] | None = None,
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
        for mode in self.modes_for(request.model, schema):
            attempt = replace(request, response_format=_format(mode, schema))
            try:
                raw = await self._run(attempt, on_text, reply_field, stream)
            except FormatRejected as exc:
                logger.info("model %s refused %s output; falling back", request.model, mode)
                self._remember_refusal(request.model, mode)
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
        on_text: Callable[[str], None] | None,
        reply_field: str | None,
        stream: bool,
    ) -> str:
        """The model's answer, without the reasoning a local model writes before it."""
        if not stream:
            return without_thinking(await self._model.complete(request))
        thinking = ThinkingFilter()
        shown = ""
        async for piece in self._model.stream(request):
            raw = thinking.feed(piece)
            if on_text is None:
                continue
            visible = raw if reply_field is None else partial_field(raw, reply_field)
            if visible and visible != shown:
                shown = visible
                on_text(visible)
        return thinking.finish()

    async def _validated(
        self,
        *,
        request: ChatRequest,
        raw: str,
        schema: dict[str, Any],
        reply_field: str | None,
        mode: Mode,
        on_text: Callable[[str], None] | None,
    ) -> Generated:
        data = parse_object(raw)
        problems = (
            ["the reply is not a JSON object"] if data is None else schema_problems(data, schema)
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
        if data is not None and not schema_problems(data, schema):
            text = _visible(data, reply_field, repaired)
            if on_text is not None:
                on_text(text)
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
