"""OpenAI-compatible routes: ``/v1/audio/speech``, ``/v1/audio/voices``, ``/v1/models``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from demod_voice.server.routes import client_watch, current_user, respond, service
from demod_voice.server.schemas import SpeechBody
from demod_voice.server.service import Service, TTSRequest

router = APIRouter(tags=["openai"])


@router.post("/v1/audio/speech")
async def speech(body: SpeechBody, request: Request, user: str = Depends(current_user),
                 svc: Service = Depends(service)):
    voice = body.voice if isinstance(body.voice, str) else body.voice.id
    fmt = body.response_format or svc.cfg.get("server.default_format")
    req = TTSRequest(text=body.input, voice=voice, user=user, speed=body.speed, **svc.model_choice(body.model))
    async with client_watch(request) as client_gone:
        result = await svc.speak(req, fmt, stream=True, client_gone=client_gone, sse=body.stream_format == "sse")
    return respond(result)


@router.get("/v1/audio/voices")
async def voices(user: str = Depends(current_user), svc: Service = Depends(service)):
    return {"voices": svc.voices(user)}


@router.get("/v1/models")
async def models(user: str = Depends(current_user), svc: Service = Depends(service)):
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "demod-voice"}
                                       for m in svc.models()]}
