"""Which addresses text from a model or a person may link to, on every surface: web and mail
addresses only. Anything else (``javascript:``, Slack's ``!here``, ``@U1``, ``#C1``, relative
paths) is shown as written, never followed."""

from __future__ import annotations

SAFE_LINK_SCHEMES = ("http://", "https://", "mailto:")


def is_safe_link(target: str) -> bool:
    """Whether a link to ``target`` may be made."""
    return target.strip().lower().startswith(SAFE_LINK_SCHEMES)
