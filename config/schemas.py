"""JSON Schema as agents' response shapes use it: one dialect (2020-12), checked when the
agents file is read, and the validator replies are checked with.

The metaschema allows any unknown keyword, so a typo (``tpye``) would silently check nothing;
keywords outside the dialect are refused here, with the nearest known one as a hint.
Vendor extensions (``x-...``) are allowed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

DIALECT: type[Validator] = Draft202012Validator

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""Keywords whose value maps names to schemas (the names are data, not keywords)."""
_SCHEMA_VALUES = (
    "additionalProperties",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
KNOWN_KEYWORDS = frozenset(Draft202012Validator.VALIDATORS) | {
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$vocabulary",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "then",
    "else",
}
_MAX_MESSAGE = 160


def schema_problems(schema: dict[str, Any]) -> list[str]:
    """What is wrong with ``schema`` as a response shape: the metaschema's verdict, unknown
    keywords (with a "did you mean"), and ``$ref`` that do not point inside the schema."""
    try:
        DIALECT.check_schema(schema)
    except SchemaError as exc:
        where = _path(exc.absolute_path)
        return [f"invalid JSON Schema{f' at {where}' if where else ''}: {_short(exc.message)}"]
    problems: list[str] = []
    for at_path, sub in _schemas(schema, ()):
        for keyword in sub:
            if keyword in KNOWN_KEYWORDS or keyword.startswith("x-"):
                continue
            close = difflib.get_close_matches(keyword, KNOWN_KEYWORDS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            at = f" at {_path(at_path)}" if at_path else ""
            problems.append(f"unknown JSON Schema keyword {keyword!r}{at}{hint}")
        ref = sub.get("$ref")
        if isinstance(ref, str) and not _resolves(schema, ref):
            at = f" at {_path(at_path)}" if at_path else ""
            problems.append(f"$ref {ref!r}{at} does not point inside the schema (#/$defs/...)")
    return problems


def validator(schema: dict[str, Any]) -> Validator:
    """The validator for a checked schema."""
    return DIALECT(schema)


def schema_key(schema: dict[str, Any]) -> str:
    """A stable key for caching what is built from a schema."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _schemas(
    schema: Any, where: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every (sub)schema that is an object, with where it is; boolean schemas have no keywords."""
    if not isinstance(schema, dict):
        return
    yield where, schema
    for keyword in _SCHEMA_MAPS:
        named = schema.get(keyword)
        if isinstance(named, dict):
            for name, sub in named.items():
                yield from _schemas(sub, (*where, keyword, name))
    for keyword in _SCHEMA_VALUES:
        if keyword in schema:
            yield from _schemas(schema[keyword], (*where, keyword))
    for keyword in _SCHEMA_LISTS:
        options = schema.get(keyword)
        if isinstance(options, list):
            for index, sub in enumerate(options):
                yield from _schemas(sub, (*where, keyword, index))


def _resolves(root: dict[str, Any], ref: str) -> bool:
    """Whether ``ref`` is ``#`` or a JSON pointer (``#/$defs/x``) to something in ``root``."""
    if ref == "#":
        return True
    if not ref.startswith("#/"):
        return False
    target: Any = root
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            return False
    return True


def _path(parts: Any) -> str:
    return ".".join(str(part) for part in parts)


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
