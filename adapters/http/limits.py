"""Refuse request bodies over the limit, whether announced (Content-Length) or streamed.

Limits belong to routes: the API keeps ``API_MAX_BODY`` while a platform's own route takes
what the platform sends (an event carrying a 40,000-character message is well over 64 KB)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.errors import BodyTooLarge, error_response


class BodyLimit:
    """Pure ASGI middleware: 413 before reading an announced oversized body; a streamed one
    raises :class:`BodyTooLarge` from ``receive`` once it passes the limit.

    ``limit`` applies everywhere except under the prefixes of ``by_path`` (the longest prefix
    that matches a path, on a ``/`` boundary, wins). ``by_path`` is read at each request, so
    routes mounted after the app was built (:mod:`adapters.http.mounts`) bring theirs."""

    def __init__(
        self, app: ASGIApp, *, limit: int, by_path: Mapping[str, int] | None = None
    ) -> None:
        self._app = app
        self._limit = limit
        self._by_path: Mapping[str, int] = by_path if by_path is not None else {}

    def limit_for(self, path: str) -> int:
        best: tuple[int, int] | None = None
        for raw, value in self._by_path.items():
            prefix = raw.rstrip("/")
            if (path == prefix or path.startswith(prefix + "/")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), value)
        return self._limit if best is None else best[1]

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
