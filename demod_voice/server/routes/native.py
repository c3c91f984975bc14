"""The native API: ``/api/tts`` (every engine option, RVC chains), ``/api/convert``, ``/api/engines``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from demod_voice.errors import InputError
from demod_voice.server.routes import client_watch, current_user, is_admin, read_upload, respond, service
from demod_voice.server.schemas import TTSBody, check_params
from demod_voice.server.service import Service, TTSRequest

router = APIRouter(tags=["native"])


@router.post("/api/tts")
async def tts(body: TTSBody, request: Request, user: str = Depends(current_user), svc: Service = Depends(service)):
    if body.rvc is not None and not body.rvc.get("voice"):
        raise InputError("rvc.voice is required when rvc is given", hint='e.g. "rvc": {"voice": "NAME", "pitch": 0}')
    rvc = body.rvc
    problem = svc.rvc_problem() if rvc is not None else None
    if problem is not None:
        if not body.fallback:
            raise problem
        svc.skip_rvc(voice=body.voice, user=user)
        rvc = None
    req = TTSRequest(text=body.text, voice=body.voice, user=user, engine=body.engine, tier=body.tier,
                     fallback=body.fallback, speed=body.speed, language=body.language,
                     params=check_params(body.params), rvc=rvc, stream=body.stream,
                     allow_other_voice=body.allow_other_voice)
    async with client_watch(request) as client_gone:
        result = await svc.speak(req, body.format, stream=body.stream, use_cache=body.cache, client_gone=client_gone,
                                 timestamps=body.timestamps, sse=body.timestamps and body.stream)
    return respond(result)


@router.post("/api/convert")
async def convert(request: Request, file: UploadFile = File(...), voice: str = Form(...), pitch: float | None = Form(None),
                  format: str = Form("wav"), user: str = Depends(current_user), svc: Service = Depends(service)):
    problem = svc.rvc_problem()
    if problem is not None:
        raise problem
    data = await read_upload(request, file)
    from demod_voice.audio import MEDIA_TYPES, format_for

    fmt = format_for(None, format)
    out, headers = await svc.convert(data, {"voice": voice, "pitch": pitch}, fmt)
    return Response(out, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/api/engines")
async def engines(request: Request, user: str = Depends(current_user), svc: Service = Depends(service)):
    return svc.engines_report(user, admin=is_admin(request, user))
