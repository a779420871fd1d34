"""Request parameters a model refuses, learned from its 400 answers and remembered per model.

OpenAI's reasoning models (gpt-5, the o-series) refuse ``max_tokens`` and want
``max_completion_tokens`` instead, and take no ``temperature`` but the default. Which model
does what changes with every release, so nothing is guessed from names: the first refusal is
read (``param``, ``code``), the call is sent again without the refused parameter, and later
calls to that model are sent that way at once, like the structured-output fallback.
"""

from __future__ import annotations

from typing import Any

import openai

from bot.lru import BoundedLRU

_RENAMED = {"max_tokens": "max_completion_tokens"}
"""A refused parameter sent under another name."""
_DROPPED = frozenset({"temperature"})
"""A refused parameter left out (the model uses its default)."""
_REFUSAL_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
MODELS_REMEMBERED = 256


def refused_parameter(exc: openai.APIStatusError) -> str | None:
    """The parameter a 400 refuses, when it is one this module knows how to do without.

    Servers that copy OpenAI's errors set ``param`` and ``code``; some only say it in the
    message ("... Use 'max_completion_tokens' instead.").
    """
    if exc.status_code != 400:
        return None
    param = getattr(exc, "param", None)
    code = getattr(exc, "code", None)
    if param in _RENAMED or param in _DROPPED:
        # OpenAI's "max_tokens is too large" names the parameter too, with no code
        return str(param) if code in _REFUSAL_CODES else None
    if "max_completion_tokens" in str(exc.message) and "max_tokens" in str(exc.message):
        return "max_tokens"
    return None


class RefusedParameters:
    """What each model refused, for a bounded number of models (least recently used go)."""

    def __init__(self, capacity: int = MODELS_REMEMBERED) -> None:
        self._refused: BoundedLRU[str, frozenset[str]] = BoundedLRU(capacity)

    def refused(self, model: str) -> frozenset[str]:
        return self._refused.get(model) or frozenset()

    def adjusted(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` as ``model`` takes them: refused ones renamed or left out."""
        refused = self.refused(model)
        if not refused.intersection(params):
            return params
        adjusted: dict[str, Any] = {}
        for name, value in params.items():
            if name not in refused:
                adjusted[name] = value
            elif name in _RENAMED:
                adjusted[_RENAMED[name]] = value
        return adjusted

    def learn(self, model: str, exc: openai.APIStatusError, params: dict[str, Any]) -> str | None:
        """Remember the parameter ``exc`` refuses, when sending again without it can help:
        it was sent (as ``params`` were) and was not known to be refused already. Returns it."""
        param = refused_parameter(exc)
        refused = self.refused(model)
        if param is None or param in refused or param not in params:
            return None
        self._refused.put(model, refused | {param})
        return param
