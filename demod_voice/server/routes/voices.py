"""Voice profiles of the calling user: ``/api/voices`` and their samples and reference choice."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from demod_voice.errors import InputError
from demod_voice.server.routes import current_user, read_upload, service
from demod_voice.server.schemas import AutoReferenceBody, ReferenceBody, VoiceBody
from demod_voice.server.service import HTTPProblem, Service

router = APIRouter(tags=["voices"])


@router.get("/api/voices")
async def list_voices(user: str = Depends(current_user), svc: Service = Depends(service)):
    return {"user": user, "voices": svc.voices(user)}


@router.post("/api/voices", status_code=201)
async def create_voice(body: VoiceBody, user: str = Depends(current_user), svc: Service = Depends(service)):
    store = svc.store(user)
    if store.exists(body.name):
        raise HTTPProblem(409, f"voice '{body.name}' already exists", hint="choose another name or DELETE it first")
    return store.create(body.name, engine=body.engine, language=body.language, piper_voice=body.piper_voice,
                        description=body.description).to_dict()


@router.get("/api/voices/{voice_id}")
async def get_voice(voice_id: str, user: str = Depends(current_user), svc: Service = Depends(service)):
    store = svc.store(user)
    profile = store.get(voice_id)
    return {**profile.to_dict(), "samples": [smp.to_dict() for smp in store.samples(voice_id)]}


@router.delete("/api/voices/{voice_id}")
async def delete_voice(voice_id: str, user: str = Depends(current_user), svc: Service = Depends(service)):
    svc.store(user).remove(voice_id)
    return {"deleted": voice_id}


@router.post("/api/voices/{voice_id}/samples", status_code=201)
async def add_sample(voice_id: str, request: Request, file: UploadFile = File(...), transcript: str = Form(""),
                     user: str = Depends(current_user), svc: Service = Depends(service)):
    store = svc.store(user)
    store.get(voice_id)
    data = await read_upload(request, file)
    sample = await asyncio.to_thread(store.add_sample, voice_id, data, transcript, file.filename or "")
    return sample.to_dict()


@router.get("/api/voices/{voice_id}/samples")
async def list_samples(voice_id: str, user: str = Depends(current_user), svc: Service = Depends(service)):
    store = svc.store(user)
    profile = store.get(voice_id)
    return {"samples": [{**smp.to_dict(), "reference": smp.id in profile.reference} for smp in store.samples(voice_id)]}


@router.put("/api/voices/{voice_id}/reference")
async def set_reference(voice_id: str, body: ReferenceBody, user: str = Depends(current_user),
                        svc: Service = Depends(service)):
    return svc.store(user).set_reference(voice_id, body.samples).to_dict()


@router.post("/api/voices/{voice_id}/reference/auto")
async def auto_reference(voice_id: str, body: AutoReferenceBody | None = None, user: str = Depends(current_user),
                         svc: Service = Depends(service)):
    body = body or AutoReferenceBody()
    if body.min_s > body.max_s:
        raise InputError("min_s must not exceed max_s")
    return svc.store(user).auto_reference(voice_id, body.min_s, body.max_s).to_dict()
