"""Piper jobs: ``text`` spoken by a Piper ``voice`` (a name from 'voices list' or a .onnx path)."""

from __future__ import annotations

from demod_voice.audio import Audio
from demod_voice.batch.adapters import chain_identity, chain_request, schema_options
from demod_voice.config import PIPER_SYNTHESIS_KEYS
from demod_voice.errors import InputError

OPTIONS = schema_options("piper", PIPER_SYNTHESIS_KEYS, speed="xtts.speed")


def request(job):
    from demod_voice.adapters import Request

    options = dict(job.options)
    speed = options.pop("speed", None)
    return Request(text=job.text, voice=job.model, speaker=job.speaker or None, speed=speed, options=options,
                   rvc=chain_request(job), words=getattr(job, "captions", None) is not None)


def validate(job, cfg) -> dict:
    """The voice resolves, its config is readable, the speaker exists, the options fit: the adapter's checks."""
    from demod_voice.adapters import piper as piper_adapter

    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    if job.reference:
        raise InputError("Piper jobs take a voice, not reference audio",
                         hint="drop 'reference', or set engine to xtts")
    if "speed" in job.options and "length_scale" in job.options:
        raise InputError("'speed' and 'length_scale' set the same thing; give only one")
    plan = piper_adapter.options(request(job), cfg)
    job.model = str(plan.model_path)
    return {**piper_adapter.identity(request(job), cfg), **chain_identity(job, cfg)}


def group_key(job) -> tuple:
    return ("piper", job.model)


class Runner:
    """Runs jobs through the Piper adapter (whose engine cache keeps each voice loaded)."""

    def __init__(self, cfg, device: str):
        self.cfg = cfg
        self.device = device

    def run(self, job) -> Audio:
        from demod_voice import adapters
        from demod_voice.captions import join

        return join(list(adapters.synthesize("piper", request(job), self.cfg, self.device)))
