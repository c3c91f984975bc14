"""Request and response schemas of every route, in one place (the shapes OpenAI clients and the page send)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from demod_voice.config import PIPER_SYNTHESIS_KEYS, XTTS_SAMPLING_KEYS
from demod_voice.errors import InputError

OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


class SpeechBody(BaseModel):
    """``POST /v1/audio/speech`` (OpenAI)."""

    model: str = "tts-1"
    input: str
    voice: str | dict = "alloy"
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: float | None = Field(None, ge=0.25, le=4.0)
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] | None = None


class TTSBody(BaseModel):
    """``POST /api/tts`` (native)."""

    text: str
    voice: str = ""
    engine: str | None = Field(None, max_length=64)
    """An engine of the registry (checked by the router: unknown names are a 400 naming the known ones)."""
    tier: Literal["highest", "high", "medium", "fast"] | None = None
    fallback: bool = True
    format: Literal["wav", "flac", "ogg", "opus", "mp3", "aac", "pcm"] = "wav"
    stream: bool = False
    speed: float | None = Field(None, ge=0.25, le=4.0)
    language: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    rvc: dict[str, Any] | None = None
    cache: bool = True
    timestamps: bool = False
    """Answer JSON with the audio (base64) and word timings; with ``stream``, Server-Sent Events."""


class VoiceBody(BaseModel):
    name: str
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
    from demod_voice.adapters import registry

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


def error_body(status: int, message: str, kind: str, hint: str | None = None) -> dict:
    """Every error is ``{"error": {"message", "type", "hint", "code"}}`` (the shape OpenAI clients expect)."""
    return {"error": {"message": message, "type": kind, "hint": hint, "code": status}}
