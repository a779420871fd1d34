"""``GET /metrics``: the process's metrics in Prometheus' text format.

Open unless ``METRICS_TOKEN`` is set; then it wants ``Authorization: Bearer <token>``. What
is read at scrape time (the platform adapters' connection, the journal's backlog) is read
from the same :class:`~adapters.http.services.Readiness` as ``/readyz``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from adapters.http.services import Readiness
from bot.metrics import CONTENT_TYPE, Metrics

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)

METRICS = "metrics"
"""The app state's attribute holding the :class:`bot.metrics.Metrics` to serve."""
METRICS_TOKEN = "metrics_token"  # noqa: S105 - an attribute's name, not a secret
"""The app state's attribute holding ``METRICS_TOKEN`` (or None)."""
_COUNT_SECONDS = 2.0


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = request.app.state
    token: SecretStr | None = getattr(state, METRICS_TOKEN, None)
    if token is not None and not _authorized(request, token):
        return JSONResponse(
            {"error": {"code": "unauthorized", "message": "a valid metrics token is needed"}},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    found: Metrics | None = getattr(state, METRICS, None)
    if found is None:
        return JSONResponse(
            {"error": {"code": "not_found", "message": "no metrics here"}}, status_code=404
        )
    services = getattr(state, "services", None)
    readiness: Readiness | None = (
        services.readiness if services is not None else getattr(state, "readiness", None)
    )
    if readiness is not None:
        await _read(found, readiness)
    return Response(found.render(), media_type=CONTENT_TYPE)


def _authorized(request: Request, token: SecretStr) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.get_secret_value().encode()
    )


async def _read(metrics: Metrics, readiness: Readiness) -> None:
    metrics.set_adapters((one.name, one.ready) for one in readiness.health())
    count = readiness.journal_backlog
    if count is None:
        return
    try:
        async with asyncio.timeout(_COUNT_SECONDS):
            metrics.set_journal_backlog(await count())
    except Exception as exc:  # noqa: BLE001 - a figure, not a check: /readyz judges the store
        logger.debug("journal backlog not counted: %s", exc.__class__.__name__)
        metrics.set_journal_backlog(None)
