"""The FastAPI application: ``create_app(cfg)`` wires the ``Service``, the middleware and the route surfaces.

Read top-down: ``routes/openai.py`` (OpenAI-compatible), ``routes/native.py`` (``/api/tts`` and friends),
``routes/voices.py`` (profiles), ``routes/ops.py`` (health, metrics, page), ``routes/stt.py`` (OpenAI
speech-to-text); request and response shapes in
``schemas.py``; everything that is not HTTP in ``service.py`` and ``router.py``. ``demod-voice serve``
runs the app under uvicorn. Every error is JSON: ``{"error": {"message", "type", "hint", "code"}}``.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from demod_voice import __version__
from demod_voice.errors import DemodError, EngineError, ModelNotFoundError, NotAvailableError
from demod_voice.server import middleware, security
from demod_voice.server.metrics import RequestCounter
from demod_voice.server.routes import native, openai, ops, stt, voices
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

    # Swagger UI and ReDoc from the assets of the fastapi-offline package: /docs works offline.
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(title="demod-voice", version=__version__, lifespan=lifespan,
                         description="Offline voice service: OpenAI-compatible speech, native TTS/voice-cloning API.")
    app.state.service = service
    app.state.keys = security.load_keys(cfg)
    app.state.counter = RequestCounter()
    app.state.max_upload = int(cfg.get("server.max_upload_mb") * 1024 * 1024)

    @app.exception_handler(DemodError)
    async def demod_error(request: Request, exc: DemodError):
        status = _status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _error(status, exc.message, type(exc).__name__, exc.hint, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # Starlette's own errors (a multipart body that does not parse, an unknown path) in the service's
        # shape; after a 4xx the rest of the body may be unread, so the connection is closed instead of
        # reading it to its end
        headers = {**(exc.headers or {}), **({"Connection": "close"} if 400 <= exc.status_code < 500 else {})}
        kind = "invalid_request_error" if exc.status_code == 400 else "not_found" if exc.status_code == 404 else "http_error"
        return _error(exc.status_code, str(exc.detail), kind, None, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"invalid request: {where or 'body'}: {first.get('msg', 'bad value')}",
                      "invalid_request_error", "see /docs for the request schema")

    # Host, origin, auth and body limits are checked before FastAPI reads the body (pure ASGI).
    middleware.install(app, cfg, app.state.keys, app.state.counter)
    for surface in (openai, stt, native, voices, ops):
        app.include_router(surface.router)
    return app


__all__ = ["create_app"]
