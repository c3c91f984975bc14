"""The FastAPI application: OpenAI-compatible routes, the native API, health, metrics and the page.

``create_app(cfg)`` builds everything from a ``Config``; ``demod-voice serve``
runs it under uvicorn. Routes are thin: they parse, authenticate and hand
over to ``Service``. Every error is JSON: ``{"error": {"message", "type",
"hint", "code"}}`` (the shape OpenAI clients expect).
"""

from __future__ import annotations

import contextlib
import logging
import time
from importlib import resources
from typing import Any, Literal

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from demod_voice import __version__
from demod_voice.errors import DemodError, EngineError, InputError, ModelNotFoundError, NotAvailableError
from demod_voice.router import OPENAI_VOICES, TIERS, TTSRequest
from demod_voice.server import auth
from demod_voice.server.metrics import RequestCounter, render
from demod_voice.server.service import HTTPProblem, Result, Service

_LOGGER = logging.getLogger(__name__)

OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


# --- request bodies ------------------------------------------------------------------------

class SpeechBody(BaseModel):
    """``POST /v1/audio/speech`` (OpenAI)."""

    model: str = "tts-1"
    input: str
    voice: str | dict = "alloy"
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] | None = None


class TTSBody(BaseModel):
    """``POST /api/tts`` (native)."""

    text: str
    voice: str = ""
    engine: Literal["xtts", "piper"] | None = None
    tier: Literal["highest", "high", "medium", "fast"] | None = None
    fallback: bool = True
    format: Literal["wav", "flac", "ogg", "opus", "mp3", "aac", "pcm"] = "wav"
    stream: bool = False
    speed: float = Field(1.0, ge=0.25, le=4.0)
    language: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    rvc: dict[str, Any] | None = None
    cache: bool = True
    timestamps: bool = False
    """Answer JSON with the audio (base64) and word timings; with ``stream``, Server-Sent Events."""


class VoiceBody(BaseModel):
    name: str
    engine: Literal["xtts", "piper"] = "xtts"
    language: str = "en"
    piper_voice: str = ""
    description: str = ""


class ReferenceBody(BaseModel):
    samples: list[str]


class AutoReferenceBody(BaseModel):
    min_s: float = Field(6.0, gt=0)
    max_s: float = Field(12.0, gt=0)


PIPER_PARAMS = {"speaker", "noise_scale", "noise_w", "length_scale", "volume", "sentence_silence"}
XTTS_PARAMS = {"temperature", "top_k", "top_p", "repetition_penalty", "length_penalty"}


def _check_params(params: dict) -> dict:
    unknown = set(params) - PIPER_PARAMS - XTTS_PARAMS
    if unknown:
        raise InputError(f"unknown parameter(s) {', '.join(sorted(unknown))}",
                         hint="known: " + ", ".join(sorted(PIPER_PARAMS | XTTS_PARAMS)))
    for key, value in params.items():
        if key != "speaker" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"parameter {key} must be a number, got {value!r}")
    return params


# --- errors ----------------------------------------------------------------------------------

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
    return JSONResponse({"error": {"message": message, "type": kind, "hint": hint, "code": status}},
                        status_code=status, headers=headers)


# --- the app ----------------------------------------------------------------------------------

def create_app(cfg, preload: bool | None = None) -> FastAPI:
    service = Service(cfg)
    keys = auth.load_keys(cfg)
    required = bool(cfg.get("auth.required"))
    counter = RequestCounter()
    max_upload = int(cfg.get("server.max_upload_mb") * 1024 * 1024)

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
        counter.observe(getattr(route, "path", "other"), request.method, response.status_code,
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

    def current_user(request: Request) -> str:
        user = auth.user_for_key(keys, auth.key_from_headers(request.headers), required)
        if user is None:
            raise HTTPProblem(401, "missing or invalid API key",
                              hint="send 'Authorization: Bearer KEY' with a key from auth.keys")
        return user

    def respond(result: Result) -> Response:
        if result.stream is not None:
            return StreamingResponse(result.stream, media_type=result.media_type, headers=result.headers)
        return Response(result.body, media_type=result.media_type, headers=result.headers)

    # -- OpenAI-compatible --------------------------------------------------------------------
    def model_choice(model: str) -> dict:
        mapping = cfg.get("server.models") or {}
        target = mapping.get(model, model)
        if target in TIERS:
            return {"tier": target}
        if target in service.router.providers:
            return {"engine": target}
        raise InputError(f"unknown model '{model}'", hint="use one of " + ", ".join([*mapping, *TIERS, "piper", "xtts"]))

    @app.post("/v1/audio/speech", tags=["openai"])
    async def openai_speech(body: SpeechBody, user: str = Depends(current_user)):
        voice = body.voice.get("id", "") if isinstance(body.voice, dict) else body.voice
        fmt = body.response_format or cfg.get("server.default_format")
        req = TTSRequest(text=body.input, voice=voice, user=user, speed=body.speed, **model_choice(body.model))
        return respond(await service.speak(req, fmt, stream=True, sse=body.stream_format == "sse"))

    @app.get("/v1/audio/voices", tags=["openai"])
    async def openai_voices(user: str = Depends(current_user)):
        return {"voices": service.router.voices(user)}

    @app.get("/v1/models", tags=["openai"])
    async def openai_models(user: str = Depends(current_user)):
        models = [*(cfg.get("server.models") or {}), *TIERS, *service.router.providers]
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "demod-voice"}
                                           for m in dict.fromkeys(models)]}

    # -- native --------------------------------------------------------------------------------
    @app.post("/api/tts", tags=["native"])
    async def api_tts(body: TTSBody, user: str = Depends(current_user)):
        if body.rvc is not None and not body.rvc.get("voice"):
            raise InputError("rvc.voice is required when rvc is given", hint='e.g. "rvc": {"voice": "NAME", "pitch": 0}')
        if body.rvc is not None:
            available, reason = service.router.rvc_available()
            if not available:
                if not body.fallback:
                    raise NotAvailableError("RVC is not installed", hint="install the 'rvc' extra or set fallback")
                service.router.audit.record(engine="rvc", reason=reason, detail="conversion skipped",
                                            voice=body.voice, user=user)
                body.rvc = None
        req = TTSRequest(text=body.text, voice=body.voice, user=user, engine=body.engine, tier=body.tier,
                         fallback=body.fallback, speed=body.speed, language=body.language,
                         params=_check_params(body.params), rvc=body.rvc)
        return respond(await service.speak(req, body.format, stream=body.stream, use_cache=body.cache,
                                           timestamps=body.timestamps, sse=body.timestamps and body.stream))

    async def read_upload(file: UploadFile) -> bytes:
        data = await file.read(max_upload + 1)
        if len(data) > max_upload:
            raise HTTPProblem(413, f"upload {file.filename!r} is larger than {max_upload} bytes",
                              hint="server.max_upload_mb")
        if not data:
            raise InputError(f"upload {file.filename!r} is empty")
        return data

    @app.post("/api/convert", tags=["native"])
    async def api_convert(file: UploadFile = File(...), voice: str = Form(...), pitch: float = Form(0.0),
                          format: str = Form("wav"), user: str = Depends(current_user)):
        available, reason = service.router.rvc_available()
        if not available:
            raise NotAvailableError("RVC is not installed", hint="install the 'rvc' extra: pip install 'demod-voice[rvc]'")
        data = await read_upload(file)
        from demod_voice.audio import MEDIA_TYPES, format_for

        fmt = format_for(None, format)
        out, headers = await service.convert(data, {"voice": voice, "pitch": pitch}, fmt)
        return Response(out, media_type=MEDIA_TYPES[fmt], headers=headers)

    @app.get("/api/engines", tags=["native"])
    async def api_engines(user: str = Depends(current_user)):
        return {"engines": service.router.engines(), "tiers": cfg.get("router.tiers"),
                "fallbacks": list(service.router.audit.recent)[-50:]}

    def store(user: str):
        return service.router.store(user)

    @app.get("/api/voices", tags=["voices"])
    async def list_voices(user: str = Depends(current_user)):
        return {"user": user, "voices": service.router.voices(user)}

    @app.post("/api/voices", tags=["voices"], status_code=201)
    async def create_voice(body: VoiceBody, user: str = Depends(current_user)):
        s = store(user)
        if s.exists(body.name):
            raise HTTPProblem(409, f"voice '{body.name}' already exists", hint="choose another name or DELETE it first")
        return s.create(body.name, engine=body.engine, language=body.language, piper_voice=body.piper_voice,
                        description=body.description).to_dict()

    @app.get("/api/voices/{voice_id}", tags=["voices"])
    async def get_voice(voice_id: str, user: str = Depends(current_user)):
        s = store(user)
        profile = s.get(voice_id)
        return {**profile.to_dict(), "samples": [smp.to_dict() for smp in s.samples(voice_id)]}

    @app.delete("/api/voices/{voice_id}", tags=["voices"])
    async def delete_voice(voice_id: str, user: str = Depends(current_user)):
        store(user).remove(voice_id)
        return {"deleted": voice_id}

    @app.post("/api/voices/{voice_id}/samples", tags=["voices"], status_code=201)
    async def add_sample(voice_id: str, file: UploadFile = File(...), transcript: str = Form(""),
                         user: str = Depends(current_user)):
        s = store(user)
        s.get(voice_id)
        data = await read_upload(file)
        import asyncio

        sample = await asyncio.to_thread(s.add_sample, voice_id, data, transcript, file.filename or "")
        return sample.to_dict()

    @app.get("/api/voices/{voice_id}/samples", tags=["voices"])
    async def list_samples(voice_id: str, user: str = Depends(current_user)):
        s = store(user)
        profile = s.get(voice_id)
        return {"samples": [{**smp.to_dict(), "reference": smp.id in profile.reference} for smp in s.samples(voice_id)]}

    @app.put("/api/voices/{voice_id}/reference", tags=["voices"])
    async def set_reference(voice_id: str, body: ReferenceBody, user: str = Depends(current_user)):
        return store(user).set_reference(voice_id, body.samples).to_dict()

    @app.post("/api/voices/{voice_id}/reference/auto", tags=["voices"])
    async def auto_reference(voice_id: str, body: AutoReferenceBody | None = None, user: str = Depends(current_user)):
        body = body or AutoReferenceBody()
        if body.min_s > body.max_s:
            raise InputError("min_s must not exceed max_s")
        return store(user).auto_reference(voice_id, body.min_s, body.max_s).to_dict()

    # -- operations ------------------------------------------------------------------------------
    @app.get("/health", tags=["ops"])
    async def health():
        return {**service.health(), "version": __version__}

    @app.get("/metrics", tags=["ops"])
    async def metrics():
        return Response(render(service, counter), media_type="text/plain; version=0.0.4; charset=utf-8")

    page = resources.files("demod_voice.server").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse(page)

    return app


__all__ = ["create_app", "OPENAI_VOICES"]
