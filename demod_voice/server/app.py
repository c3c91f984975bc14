"""The FastAPI application: ``create_app(cfg)`` wires the ``Service``, the middleware and the route surfaces.

Read top-down: ``routes/openai.py`` (OpenAI-compatible), ``routes/native.py`` (``/api/tts`` and friends),
``routes/voices.py`` (profiles), ``routes/ops.py`` (health, metrics, page), ``routes/stt.py`` (OpenAI
speech-to-text); request and response shapes in
``schemas.py``; everything that is not HTTP in ``service.py`` and ``router.py``. ``demod-voice serve``
runs the app under uvicorn. Every error is OpenAI's JSON shape, ``{"error": {"message", "type", "param",
"code"}}`` plus our ``hint`` (``schemas.error_body``): the handlers below cover the service's own errors,
FastAPI's request validation, Starlette's (unknown route, wrong method, bad multipart) and anything
unexpected; the middleware answers its refusals in the same shape.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from demod_voice import __version__
from demod_voice.errors import DemodError
from demod_voice.server import middleware, openapi_doc, security
from demod_voice.server.metrics import RequestCounter
from demod_voice.server.routes import native, openai, ops, stt, training, voices
from demod_voice.server.schemas import error_body, status_for
from demod_voice.server.service import Service

_LOGGER = logging.getLogger(__name__)


def _error(status: int, message: str, code: str | None = None, hint: str | None = None,
           headers: dict | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, hint, param), status_code=status, headers=headers)


#: Codes for Starlette's own errors (OpenAI's code is a short string, never the status number).
_STARLETTE_CODES = {400: "invalid_body", 404: "unknown_url", 405: "method_not_allowed", 413: "request_too_large"}


def _validation_param(loc) -> str | None:
    """The request field a validation error names: ``("body", "speed")`` -> ``speed``."""
    loc = tuple(loc)
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    return ".".join(str(p) for p in loc) or None


def create_app(cfg, preload: bool | None = None, service: Service | None = None) -> FastAPI:
    """The app around ``service`` (default: a ``Service(cfg)``; ``serve --ray`` passes its ``RayService``)."""
    service = service or Service(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        from demod_voice.synthesis.manager import MODELS

        MODELS.configure(cfg)
        MODELS.start_idle_unload(cfg.get("server.model_idle_unload_s"))  # the server only: 0 keeps models
        if cfg.get("server.preload") if preload is None else preload:
            import asyncio

            await asyncio.to_thread(service.preload)
        yield
        MODELS.stop_idle_unload()
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
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        code = exc.code or ("invalid_api_key" if status == 401 else None)
        return _error(status, exc.message, code, exc.hint, headers, exc.param)

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
        # A value of the wrong type ({"voice": {"id": 5}}) does not fit the schema at all: 422. A missing field,
        # bad JSON or a value out of range is a bad parameter: 400, as OpenAI answers it. Both in OpenAI's shape.
        first = exc.errors()[0] if exc.errors() else {}
        kind = first.get("type") or ""
        param = None if kind == "json_invalid" else _validation_param(first.get("loc", ()))
        status = 422 if kind.endswith(("_type", "_parsing")) else 400
        code = {"missing": "missing_required_parameter", "json_invalid": "invalid_json"}.get(
            kind, "invalid_type" if status == 422 else "invalid_value")
        return _error(status, f"invalid request: {param or 'body'}: {first.get('msg', 'bad value')}", code,
                      "see /docs for the request schema", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException):
        status = exc.status_code
        if status == 404 and exc.detail == "Not Found":
            message = f"unknown URL: {request.method} {request.url.path}"
        elif status == 405:
            allowed = openapi_doc.allowed_methods(request.app, request.url.path)
            if allowed and request.method == "OPTIONS":  # what this path takes, from every route on it
                return Response(status_code=204, headers={"Allow": ", ".join(allowed)})
            message = f"method {request.method} is not allowed on {request.url.path}"
            if allowed:
                exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        else:
            message = str(exc.detail)
        hint = "see /docs for the routes" if status in (404, 405) else None
        return _error(status, message, _STARLETTE_CODES.get(status), hint, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        # Starlette logs the traceback and re-raises after this answer
        return _error(500, "internal server error", None, "see the server log")

    # Host, origin, auth and body limits are checked before FastAPI reads the body (pure ASGI).
    middleware.install(app, cfg, app.state.keys, app.state.counter)
    for surface in (openai, stt, native, voices, training, ops):
        app.include_router(surface.router)
    openapi_doc.install(app)
    return app


__all__ = ["create_app"]
