"""Operations: ``/health``, ``/metrics`` and the page at ``/``."""

from __future__ import annotations

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
async def health(svc: Service = Depends(service)):
    return {**svc.health(), "version": __version__}


@router.get("/metrics")
async def metrics(request: Request, svc: Service = Depends(service)):
    return Response(render(svc, request.app.state.counter), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/", include_in_schema=False)
async def index():
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))
