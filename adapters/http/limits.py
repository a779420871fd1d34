"""Refuse request bodies over the limit, whether announced (Content-Length) or streamed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.errors import BodyTooLarge, error_response


class BodyLimit:
    """Pure ASGI middleware: 413 before reading an announced oversized body; a streamed one
    raises :class:`BodyTooLarge` from ``receive`` once it passes the limit."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self._limit:
                    response = error_response(413, str(BodyTooLarge(self._limit)))
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self._limit:
                    raise BodyTooLarge(self._limit)
            return message

        await self._app(scope, limited, send)
