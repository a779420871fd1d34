"""Refuse request bodies over the limit, whether announced (Content-Length) or streamed.

Limits belong to routes: the API keeps ``API_MAX_BODY`` while a platform's own route takes
what the platform sends (an event carrying a 40,000-character message is well over 64 KB),
and an agent's document upload takes a whole document."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.errors import BodyTooLarge, error_response


class BodyLimit:
    """Pure ASGI middleware: 413 before reading an announced oversized body; a streamed one
    raises :class:`BodyTooLarge` from ``receive`` once it passes the limit.

    ``limit`` applies everywhere except under the prefixes of ``by_path`` (the longest prefix
    that matches a path, on a ``/`` boundary, wins). A prefix may name a route's parameters
    as FastAPI does, ``/api/v1/agents/{agent_id}/documents``: each ``{...}`` segment matches
    any one non-empty segment, and among prefixes as long a literal segment beats a parameter.
    ``by_path`` is read at each request, so routes mounted after the app was built
    (:mod:`adapters.http.mounts`) bring theirs."""

    def __init__(
        self, app: ASGIApp, *, limit: int, by_path: Mapping[str, int] | None = None
    ) -> None:
        self._app = app
        self._limit = limit
        self._by_path: Mapping[str, int] = by_path if by_path is not None else {}

    def limit_for(self, path: str) -> int:
        segments = path.split("/")
        best: tuple[int, int, int] | None = None
        for raw, value in self._by_path.items():
            matched = _match(raw.rstrip("/").split("/"), segments)
            if matched is not None and (best is None or matched > best[:2]):
                best = (*matched, value)
        return self._limit if best is None else best[2]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > limit:
                    response = error_response(413, str(BodyTooLarge(limit)))
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self._app(scope, limited, send)


def _match(prefix: list[str], segments: list[str]) -> tuple[int, int] | None:
    """How closely ``prefix`` (its segments) matches the start of a path's ``segments``:
    (segments, literal segments), or None when it does not."""
    if len(prefix) > len(segments):
        return None
    literal = 0
    for wanted, given in zip(prefix, segments, strict=False):
        if wanted.startswith("{") and wanted.endswith("}"):
            if not given:
                return None
        elif wanted == given:
            literal += 1
        else:
            return None
    return len(prefix), literal
