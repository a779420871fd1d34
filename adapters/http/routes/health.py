"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work); no key needed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, JsonValue

from adapters.http.services import Readiness

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)

_PING_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["ok"]


class ReadinessReport(BaseModel):
    """``/readyz``'s answer: ``ok`` when the process has nothing to check (no API, no
    platforms), else ``ready`` or ``not ready`` (503) with what was checked."""

    status: Literal["ok", "ready", "not ready"]
    checks: dict[str, JsonValue]


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"model": ReadinessReport, "description": "Ready"},
        503: {"model": ReadinessReport, "description": "Not ready: checks says what is missing"},
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Ready when the store answers, agents are loaded, a model is configured and every
    platform adapter is connected (or serving HTTP mode).

    ``checks.adapters`` (when the process runs platforms) maps each adapter to its ``state``,
    ``ready`` and ``detail``; ``checks.journal_backlog`` (when known) is reported, not judged.
    """
    state = request.app.state
    services = getattr(state, "services", None)
    readiness: Readiness | None = (
        services.readiness if services is not None else getattr(state, "readiness", None)
    )
    checks: dict[str, Any] = {}
    ready = True
    if services is not None:
        try:
            async with asyncio.timeout(_PING_SECONDS):
                store = await services.store.ping()
        except TimeoutError:
            store = False
        checks = {
            "store": store,
            "agents": bool(services.catalog.agents),
            "model": services.settings.model_configured,
        }
        ready = all(checks.values())
    if readiness is not None:
        adapters = readiness.health()
        if adapters:
            checks["adapters"] = {
                one.name: {"state": one.state, "ready": one.ready, "detail": one.detail}
                for one in adapters
            }
            ready = ready and all(one.ready for one in adapters)
        if readiness.journal_backlog is not None:
            checks["journal_backlog"] = await _backlog(readiness)
    if services is None and not checks:
        return JSONResponse({"status": "ok", "checks": {}})
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


async def _backlog(readiness: Readiness) -> int | None:
    """The journal's backlog, or None when it cannot be counted in time."""
    count = readiness.journal_backlog
    if count is None:
        return None
    try:
        async with asyncio.timeout(_PING_SECONDS):
            return await count()
    except Exception as exc:  # noqa: BLE001 - a report, not a check: the store check judges
        logger.debug("journal backlog not counted: %s", exc.__class__.__name__)
        return None
