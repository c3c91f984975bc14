"""OpenAI-compatible routes: ``/v1/audio/speech``, ``/v1/audio/voices``, ``/v1/models``, ``/v1/models/{id}``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from demod_voice.errors import ModelNotFoundError
from demod_voice.server.routes import client_watch, current_user, respond, service
from demod_voice.server.schemas import SpeechBody
from demod_voice.server.service import Service, TTSRequest

router = APIRouter(tags=["openai"])

#: OpenAI's ``pcm`` is raw 16-bit little-endian mono at 24 kHz; clients hard-code the rate.
OPENAI_PCM_RATE = 24000


@router.post("/v1/audio/speech")
async def speech(body: SpeechBody, request: Request, user: str = Depends(current_user),
                 svc: Service = Depends(service)):
    voice = body.voice if isinstance(body.voice, str) else body.voice.id
    fmt = body.response_format or svc.cfg.get("server.default_format")
    req = TTSRequest(text=body.input, voice=voice, user=user, speed=body.speed, **svc.model_choice(body.model),
                     allow_other_voice=body.allow_other_voice)
    async with client_watch(request) as client_gone:
        result = await svc.speak(req, fmt, stream=True, client_gone=client_gone, sse=body.stream_format == "sse",
                                 sample_rate=OPENAI_PCM_RATE if fmt == "pcm" else None)
    if body.instructions:  # accepted, but no engine can follow spoken-style instructions yet: say so
        result.headers["X-Ignored"] = "instructions"
    return respond(result)


@router.get("/v1/audio/voices")
async def voices(user: str = Depends(current_user), svc: Service = Depends(service)):
    return {"voices": svc.voices(user)}


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "demod-voice"}


@router.get("/v1/models")
async def models(user: str = Depends(current_user), svc: Service = Depends(service)):
    return {"object": "list", "data": [_model(m) for m in svc.models()]}


@router.get("/v1/models/{model_id}")
async def model(model_id: str, user: str = Depends(current_user), svc: Service = Depends(service)):
    if model_id not in svc.models():
        raise ModelNotFoundError(f"unknown model '{model_id}'", hint="list models with GET /v1/models",
                                 param="model", code="model_not_found")
    return _model(model_id)
