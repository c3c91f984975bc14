"""Training jobs of the calling user: ``/api/training/readiness`` and ``/api/training/jobs`` (docs/server.md).

A job runs in its own process (``training.jobs``), one at a time per server, and outlives the request and its
client. A ``dataset`` folder on the server's disk may be named only in single-user mode (no API keys); with keys
a user trains on their own profiles, and another user's jobs and voices are 404 for them.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from demod_voice.errors import InputError, ModelNotFoundError
from demod_voice.server.routes import current_user, service
from demod_voice.server.service import HTTPProblem, Service

router = APIRouter(tags=["training"])


class TrainingJobBody(BaseModel):
    """``POST /api/training/jobs``."""

    model_config = ConfigDict(extra="forbid")
    engine: Literal["piper"] = "piper"
    profile: str | None = None
    dataset: str | None = None
    voice: str
    max_steps: int | None = Field(None, ge=1)
    max_epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1, le=1024)
    arch: Literal["medium", "small"] = "medium"
    force: bool = False


def _single_user(request: Request) -> bool:
    return not request.app.state.keys.entries


def _queue(request: Request):
    from demod_voice.training.jobs import Queue

    state = request.app.state
    if getattr(state, "training_queue", None) is None:
        state.training_queue = Queue()
    return state.training_queue


def _check_dataset(request: Request, dataset: str | None) -> None:
    if dataset is not None and not _single_user(request):
        raise HTTPProblem(403, "a dataset folder can be named only when the server runs without API keys",
                          hint="train on one of your profiles ('profile')", param="dataset")


def _job(svc: Service, job_id: str, user: str):
    from demod_voice.training import jobs

    job = jobs.get(svc.cfg, job_id, user)
    if job is None:
        raise ModelNotFoundError(f"no training job '{job_id}'", hint="GET /api/training/jobs lists yours")
    return job


@router.get("/api/training/readiness")
async def readiness(request: Request, engine: str = Query("piper"), profile: str | None = Query(None),
                    dataset: str | None = Query(None), user: str = Depends(current_user),
                    svc: Service = Depends(service)):
    from demod_voice.training import readiness as ready

    _check_dataset(request, dataset)
    return await asyncio.to_thread(ready.check, svc.cfg, engine, profile=profile, dataset=dataset, user=user)


@router.post("/api/training/jobs", status_code=202)
async def create_job(body: TrainingJobBody, request: Request, user: str = Depends(current_user),
                     svc: Service = Depends(service)):
    from pathlib import Path

    from demod_voice.training import jobs, readiness

    jobs.require_trainer()  # 501 when the train extra is missing
    _check_dataset(request, body.dataset)
    if (body.profile is None) == (body.dataset is None):
        raise InputError("give 'profile' or 'dataset'", param="profile")
    cfg = svc.cfg
    report = await asyncio.to_thread(readiness.check, cfg, "piper", profile=body.profile, dataset=body.dataset,
                                     user=user)
    if not report["ready"] and not body.force:
        raise InputError(f"not ready to train: {report['good_seconds']:g} s of good audio, "
                         f"{report['needed_seconds']:g} s needed",
                         hint="record more (GET /api/training/readiness), or send force: true", code="not_ready")
    explicit = [f for f in cfg.files if Path(f) != _user_file()]
    spec = jobs.Spec(user=user, voice=body.voice, profile=body.profile,
                     dataset=str(Path(body.dataset).expanduser().resolve()) if body.dataset else None,
                     arch=body.arch, batch_size=body.batch_size or cfg.get("training.batch_size"),
                     max_steps=body.max_steps, max_epochs=body.max_epochs,
                     accelerator=cfg.get("training.accelerator"), checkpoint_every=cfg.get("training.checkpoint_every"),
                     force=body.force, config=explicit[-1] if explicit else None)
    job = jobs.create(cfg, spec)
    _queue(request).submit(job)
    return {"id": job.id, "status": job.status().get("status", "queued")}


def _user_file():
    from demod_voice import paths

    return paths.user_config_file()


@router.get("/api/training/jobs")
async def list_jobs(user: str = Depends(current_user), svc: Service = Depends(service)):
    from demod_voice.training import jobs

    root = jobs.jobs_root(svc.cfg)
    found = [jobs.get(svc.cfg, p.name, user) for p in sorted(root.iterdir())] if root.is_dir() else []
    return {"jobs": [job.view() for job in found if job is not None]}


@router.get("/api/training/jobs/{job_id}")
async def get_job(job_id: str, user: str = Depends(current_user), svc: Service = Depends(service)):
    return _job(svc, job_id, user).view()


@router.delete("/api/training/jobs/{job_id}")
async def cancel_job(job_id: str, user: str = Depends(current_user), svc: Service = Depends(service)):
    from demod_voice.training import jobs

    job = _job(svc, job_id, user)
    jobs.cancel(job)
    return job.view()
