"""Records and values the store contract tests share."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import JsonValue

from memory.base import (
    NewApiKey,
    NewMessage,
    PlatformKey,
)

SLACK_A = PlatformKey(platform="slack", workspace="T_A", channel="C1", thread="1700000000.000100")


SLACK_B = PlatformKey(platform="slack", workspace="T_B", channel="C1", thread="1700000000.000100")


DISCORD = PlatformKey(platform="discord", workspace="9001", channel="42")


def user(text: str, **kwargs: object) -> NewMessage:
    fields: dict[str, object] = {"author_id": "U1", "author_name": "Ada", **kwargs}
    return NewMessage(role="user", text=text, **fields)  # type: ignore[arg-type]


def reply(text: str, **kwargs: object) -> NewMessage:
    return NewMessage(role="assistant", text=text, **kwargs)  # type: ignore[arg-type]


HOSTILE = ['{"$gt": ""}', "$where", ".*", "' OR 1=1 --", "%", "\x00", ""]


CHEF: dict[str, JsonValue] = {
    "name": "Chef Ünïcødé 🍝",
    "system_prompt": "Réponds en français. 日本語も。",
    "model": {"name": "gpt-4o-mini", "temperature": 0.25, "max_tokens": 800},
    "response": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"answer": {"type": "string"}, "a.b": {"enum": [1, None, True, "x"]}},
        "required": ["answer"],
    },
    "big": 2**70,
    "empty": {"list": [], "object": {}},
}


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str, key: str | None = None, **fields: Any) -> NewApiKey:
    values: dict[str, Any] = {"scope": "read", "hint": f"pk_{name[:4]}…", **fields}
    return NewApiKey(name=name, key_hash=key_hash(key or f"pk_secret_{name}"), **values)
