"""Response shapes are JSON Schema, checked when the agents file is read: the metaschema, and
keywords the dialect does not know (which the metaschema would let through)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.errors import ConfigError
from config.agents import load_agents
from config.schemas import schema_problems


def shape(**answer: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"answer": {"type": "string", **answer}},
        "required": ["answer"],
        "additionalProperties": False,
    }


def test_a_rich_schema_passes() -> None:
    schema = {
        "type": "object",
        "$defs": {"tag": {"type": "string", "pattern": "^[a-z]+$", "x-ui": "chip"}},
        "properties": {
            "answer": {"type": "string", "description": "the reply", "minLength": 1},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1},
            "tpye": {"anyOf": [{"type": "integer"}, {"type": "null"}]},  # a field, not a keyword
        },
        "required": ["answer", "tags", "tpye"],
        "additionalProperties": False,
    }
    assert schema_problems(schema) == []


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (
            {"type": "object", "properties": {"answer": {"tpye": "string"}}},
            "unknown JSON Schema keyword 'tpye' at properties.answer (did you mean 'type'?)",
        ),
        (
            shape(minitems=2),
            "unknown JSON Schema keyword 'minitems' at properties.answer "
            "(did you mean 'minItems'?)",
        ),
        (
            {"type": "object", "properties": {"a": {"anyOf": [{"type": "string", "patern": "x"}]}}},
            "unknown JSON Schema keyword 'patern' at properties.a.anyOf.0 "
            "(did you mean 'pattern'?)",
        ),
        (
            {"type": "object", "properties": {"a": {"zzzqqq": 1}}},
            "unknown JSON Schema keyword 'zzzqqq' at properties.a",
        ),
        (
            shape(type="strin"),
            "invalid JSON Schema at properties.answer.type: 'strin' is not valid under any of the "
            "given schemas",
        ),
        (shape(minLength=-1), "invalid JSON Schema at properties.answer.minLength: -1 is less"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
            "$ref '#/$defs/missing' at properties.a does not point inside the schema",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            "$ref 'https://example.com/s.json' at properties.a does not point inside",
        ),
    ],
)
def test_problems_are_named_with_where_they_are(schema: dict[str, Any], problem: str) -> None:
    problems = schema_problems(schema)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def agents_with(tmp_path: Path, response_shape: dict[str, Any]) -> Path:
    agent = {
        "id": "chef",
        "name": "Chef",
        "context": "You are a chef.",
        "first_message": "Hello!",
        "response_shape": response_shape,
    }
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump({"agents": [agent]}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "response_shape",
    [
        shape(tpye="string"),  # the full form
        {"answer": "String, the reply", "tags": {"type": "array", "itmes": {"type": "string"}}},
    ],
    ids=["json-schema", "simple-form"],
)
def test_the_agents_file_refuses_a_typo_in_a_shape(
    tmp_path: Path, response_shape: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_agents(agents_with(tmp_path, response_shape))

    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'agents.yaml'}: agent 'chef': response_shape: unknown")
    assert "did you mean" in message
    assert len(message.splitlines()) == 1
