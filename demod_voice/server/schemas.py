"""Request and response schemas of every route, in one place (the shapes OpenAI clients and the page send)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool

from demod_voice.config import PIPER_SYNTHESIS_KEYS, XTTS_SAMPLING_KEYS
from demod_voice.errors import (
    DemodError,
    EngineError,
    HTTPProblem,
    InputError,
    ModelNotFoundError,
    NotAvailableError,
    UpstreamError,
)

OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


class VoiceRef(BaseModel):
    """OpenAI's custom-voice form of ``voice``: ``{"id": "NAME"}``."""

    id: str


class SpeechBody(BaseModel):
    """``POST /v1/audio/speech`` (OpenAI)."""

    model: str = "tts-1"
    input: str = Field(json_schema_extra={"minLength": 1})  # documented; checked by the service (its own message)
    voice: str | VoiceRef = "alloy"
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: float | None = Field(None, ge=0.25, le=4.0)
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] | None = None
    allow_other_voice: StrictBool | None = None
    """Not OpenAI's: may another speaker answer when the voice's own engine cannot (default router.allow_other_voice)."""


class TTSBody(BaseModel):
    """``POST /api/tts`` (native)."""

    text: str = Field(json_schema_extra={"minLength": 1})  # documented; checked by the service (its own message)
    voice: str = ""
    engine: str | None = Field(None, max_length=64)
    """An engine of the registry (checked by the router: unknown names are a 400 naming the known ones)."""
    tier: Literal["highest", "high", "medium", "fast"] | None = None
    fallback: StrictBool = True
    allow_other_voice: StrictBool | None = None
    """May another speaker answer when the voice's own engine cannot (default router.allow_other_voice)."""
    format: Literal["wav", "flac", "ogg", "opus", "mp3", "aac", "pcm"] = "wav"
    stream: StrictBool = False
    speed: float | None = Field(None, ge=0.25, le=4.0)
    language: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    rvc: dict[str, Any] | None = None
    cache: StrictBool = True
    timestamps: StrictBool = False
    """Answer JSON with the audio (base64) and word timings; with ``stream``, Server-Sent Events."""


class VoiceBody(BaseModel):
    name: str = Field(min_length=1)
    engine: str = Field("xtts", max_length=64)
    """A built-in TTS engine of the registry (checked by the voice store)."""
    language: str = "en"
    piper_voice: str = ""
    description: str = ""


class ReferenceBody(BaseModel):
    samples: list[str]


class AutoReferenceBody(BaseModel):
    min_s: float = Field(6.0, gt=0)
    max_s: float = Field(12.0, gt=0)


#: Engine parameters a native request may set: the schema's names (ranges are checked by the adapters).
PIPER_PARAMS = {"speaker", *PIPER_SYNTHESIS_KEYS}
XTTS_PARAMS = {"seed", *(k for k in XTTS_SAMPLING_KEYS if k != "speed")}


def _engine_params() -> set[str]:
    """The option names the registry's built-in TTS engines declare (``OPTION_KEYS``)."""
    from demod_voice.synthesis import registry

    return {key for name in registry.names(kind="tts") for key in registry.module(name).OPTION_KEYS}


def check_params(params: dict) -> dict:
    """Known engine parameter names with finite numbers; the adapters check the ranges."""
    known = PIPER_PARAMS | XTTS_PARAMS | _engine_params()
    unknown = set(params) - known
    if unknown:
        raise InputError(f"unknown parameter(s) {', '.join(sorted(unknown))}", hint="known: " + ", ".join(sorted(known)))
    for key, value in params.items():
        if key != "speaker" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                 or not math.isfinite(value)):
            raise InputError(f"parameter {key} must be a finite number, got {value!r}")
    return params


#: OpenAI's error ``type`` for the statuses that have their own; any other 4xx is ``invalid_request_error``
#: and any 5xx ``server_error``.
ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
               429: "rate_limit_error"}


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status."""
    return ERROR_TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")


def status_for(exc: DemodError) -> int:
    """The HTTP status of a service error."""
    if isinstance(exc, HTTPProblem):
        return exc.status
    if isinstance(exc, ModelNotFoundError):
        return 404
    if isinstance(exc, NotAvailableError):
        return 501
    if isinstance(exc, UpstreamError):
        return 502  # the other server answered badly
    if isinstance(exc, EngineError):
        return 503
    return 400 if exc.exit_code == 2 else 500


def error_body(status: int, message: str, code: str | None = None, hint: str | None = None,
               param: str | None = None) -> dict:
    """Every error answer, from a route, FastAPI, Starlette or the middleware: OpenAI's shape.

    ``{"error": {"message", "type", "param", "code", "hint"}}``: ``type`` follows the status
    (``error_type``), ``param`` names the request field at fault or is null, ``code`` is a short string
    or null; ``hint`` (what to do) is ours, and OpenAI clients ignore it.
    """
    return {"error": {"message": message, "type": error_type(status), "param": param,
                      "code": None if code is None else str(code), "hint": hint}}
