"""Operations: ``/health``, ``/metrics`` and the page at ``/``."""

from __future__ import annotations

import asyncio
from importlib import resources

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from demod_voice import __version__
from demod_voice.server.metrics import render
from demod_voice.server.routes import service
from demod_voice.server.service import Service

router = APIRouter(tags=["ops"])
_PAGE = resources.files("demod_voice.server").joinpath("static/index.html")


@router.get("/health")
async def health(request: Request, svc: Service = Depends(service)):
    """Status and version for anyone (probes); the details (jobs, cache, engines, STT model) only with a
    valid API key, or when auth is off: they describe every user's activity."""
    from demod_voice.server.middleware import header
    from demod_voice.server.security import key_from_headers

    key = key_from_headers({"authorization": header(request.scope, b"authorization") or "",
                            "x-api-key": header(request.scope, b"x-api-key")})
    keys = request.app.state.keys
    user = await asyncio.to_thread(keys.user_for, key) if key else keys.user_for(None)
    if not user:
        return {"status": "ok", "version": __version__}
    return {**svc.health(), "version": __version__}


@router.get("/metrics", response_class=Response,
            responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}})
async def metrics(request: Request, svc: Service = Depends(service)):
    return Response(render(svc, request.app.state.counter), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/", include_in_schema=False)
async def index():
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))


@router.get("/favicon.ico", include_in_schema=False)
async def favicon():
    """The page's icon (browsers ask for it on every load; a 404 is a console error)."""
    from demod_voice.server.icon import ICON_SVG

    return Response(ICON_SVG, media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})
