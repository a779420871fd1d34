"""One exception root for Parley, and the few kinds callers tell apart.

Each error class carries how every edge shows it, so no edge keeps a table of its own (the
way discord.py's exceptions carry their ``status`` and ``code``):

- ``status`` and ``code``: the HTTP status and the error code of the API's error body, and
  the status of a console error page;
- ``client_line``: what an API client or a console reader reads. ``None`` means the message
  itself is written for them (short, and never holding a secret); otherwise the message may
  name internals (a driver's words, a path) and stays in the server's log;
- ``public_line``: the line a person talking to the bot reads on Slack, Discord, in the
  terminal chat, or at the end of a streamed reply that failed;
- ``retry_after``: seconds to wait before trying again (the ``Retry-After`` header), if any;
- ``exit_code``: the command line's exit status when a command stops on it.

Subclasses override what differs; the rest is inherited. Error classes that live elsewhere
(the engine's, the model client's, the HTTP server's) derive from :class:`ParleyError` too.
"""

from __future__ import annotations

EXIT_FAILURE = 1
"""A runtime failure: the store could not be reached, a platform refused to start..."""
EXIT_CONFIG = 2
"""Bad settings, a bad agents file or bad usage."""

FAILURE_LINE = "Something went wrong on my side. Please try again."
BUSY_LINE = "I'm handling a lot of messages right now; please try again in a moment."
STORE_LINE = "I can't reach my memory right now, so I can't answer safely. Please try again soon."


class ParleyError(Exception):
    """Root of every error Parley raises on purpose. Messages are short and hold no secrets.

    Unless a subclass says otherwise it is a failure on our side: 500 ``internal``, a generic
    line for clients and people (the message goes to the log), exit status 1."""

    status: int = 500
    code: str = "internal"
    client_line: str | None = "something went wrong on our side"
    public_line: str = FAILURE_LINE
    retry_after: int | None = None
    exit_code: int = EXIT_FAILURE

    def client_message(self) -> str:
        """What an API client or a console reader reads about this error."""
        return str(self) if self.client_line is None else self.client_line

    def http_headers(self) -> dict[str, str]:
        """Headers an HTTP answer about this error carries."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class ConfigError(ParleyError):
    """Settings or the agents file are invalid. The message names the file, agent and field."""

    status = 422
    code = "invalid"
    client_line = None
    exit_code = EXIT_CONFIG


class StoreError(ParleyError):
    """The conversation store failed."""

    status = 503
    code = "store_error"
    client_line: str | None = "the store failed; try again shortly"
    public_line = STORE_LINE


class StoreUnavailable(StoreError):
    """The store could not be reached."""

    code = "store_unavailable"
    client_line = "the store cannot be reached; try again shortly"


class NotFound(StoreError):
    """The conversation (or other record) does not exist."""

    status = 404
    code = "not_found"
    client_line = None


class Conflict(ParleyError):
    """The record already exists (an id or a name is taken)."""

    status = 409
    code = "conflict"
    client_line = None
