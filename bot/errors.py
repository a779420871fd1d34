"""One exception root for Parley, and the few kinds callers tell apart."""

from __future__ import annotations


class ParleyError(Exception):
    """Root of every error Parley raises on purpose. Messages are short and hold no secrets."""


class ConfigError(ParleyError):
    """Settings or the agents file are invalid. The message names the file, agent and field."""


class StoreError(ParleyError):
    """The conversation store failed."""


class StoreUnavailable(StoreError):
    """The store could not be reached."""


class NotFound(StoreError):
    """The conversation (or other record) does not exist."""


class Conflict(ParleyError):
    """The record already exists (an id or a name is taken)."""
