"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work); no key needed."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])

_PING_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the store answers, agents are loaded and a model is configured."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "ok", "checks": {}})
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
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
