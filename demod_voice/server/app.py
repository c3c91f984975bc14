"""The FastAPI application: ``create_app(cfg)`` wires the ``Service``, the middleware and the route surfaces.

Read top-down: ``routes/openai.py`` (OpenAI-compatible), ``routes/native.py`` (``/api/tts`` and friends),
``routes/voices.py`` (profiles), ``routes/ops.py`` (health, metrics, page); request and response shapes in
``schemas.py``; everything that is not HTTP in ``service.py`` and ``router.py``. ``demod-voice serve``
runs the app under uvicorn. Every error is JSON: ``{"error": {"message", "type", "hint", "code"}}``.
"""

from __future__ import annotations

import contextlib
import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from demod_voice import __version__
from demod_voice.errors import DemodError, EngineError, ModelNotFoundError, NotAvailableError
from demod_voice.server import auth
from demod_voice.server.metrics import RequestCounter
from demod_voice.server.routes import native, openai, ops, voices
from demod_voice.server.schemas import error_body
from demod_voice.server.service import HTTPProblem, Service

_LOGGER = logging.getLogger(__name__)


def _status(exc: DemodError) -> int:
    if isinstance(exc, HTTPProblem):
        return exc.status
    if isinstance(exc, ModelNotFoundError):
        return 404
    if isinstance(exc, NotAvailableError):
        return 501
    if isinstance(exc, EngineError):
        return 503
    return 400 if exc.exit_code == 2 else 500


def _error(status: int, message: str, kind: str, hint: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, kind, hint), status_code=status, headers=headers)


def create_app(cfg, preload: bool | None = None) -> FastAPI:
    service = Service(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if cfg.get("server.preload") if preload is None else preload:
            import asyncio

            await asyncio.to_thread(service.preload)
        yield
        service.close()

    app = FastAPI(title="demod-voice", version=__version__, lifespan=lifespan,
                  description="Offline voice service: OpenAI-compatible speech, native TTS/voice-cloning API.")
    app.state.service = service
    app.state.keys = auth.load_keys(cfg)
    app.state.auth_required = bool(cfg.get("auth.required"))
    app.state.counter = RequestCounter()
    app.state.max_upload = max_upload = int(cfg.get("server.max_upload_mb") * 1024 * 1024)

    if cfg.get("server.cors_origins"):
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cfg.get("server.cors_origins"), allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["X-Engine", "X-Cache", "X-Fallback", "X-Voice"])

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next):
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload + 64 * 1024:
            response = _error(413, f"request body is {int(length)} bytes; the limit is {max_upload}",
                              "request_too_large", "server.max_upload_mb")
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        app.state.counter.observe(getattr(route, "path", "other"), request.method, response.status_code,
                                  time.perf_counter() - started)
        return response

    @app.exception_handler(DemodError)
    async def demod_error(request: Request, exc: DemodError):
        status = _status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _error(status, exc.message, type(exc).__name__, exc.hint, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"invalid request: {where or 'body'}: {first.get('msg', 'bad value')}",
                      "invalid_request_error", "see /docs for the request schema")

    for surface in (openai, native, voices, ops):
        app.include_router(surface.router)
    return app


__all__ = ["create_app"]
