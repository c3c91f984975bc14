"""XTTS jobs: ``text`` spoken in the voice of ``reference`` audio or a saved ``voice`` (XTTS-v2 voice cloning).

Conditioning latents are computed once per reference set (kept in memory and in the one latents
cache, ``<cache_dir>/xtts-latents``), so a thousand lines in one voice condition once. A missing
model fails the jobs that need it, with the engine's message; the rest of the run goes on.
"""

from __future__ import annotations

from demod_voice.audio import Audio
from demod_voice.batch.adapters import chain_identity, chain_request, schema_options
from demod_voice.config import XTTS_SAMPLING_KEYS
from demod_voice.errors import EngineError, InputError, NotAvailableError

OPTIONS = schema_options("xtts", XTTS_SAMPLING_KEYS, seed="xtts.seed")


def request(job):
    from demod_voice.adapters import Request

    options = dict(job.options)
    seed = options.pop("seed", None)
    return Request(text=job.text, references=list(job.reference), voice=getattr(job, "voice", ""),
                   language=job.language or None,
                   model=job.model or None, seed=seed, options=options, rvc=chain_request(job),
                   words=getattr(job, "captions", None) is not None)


def validate(job, cfg) -> dict:
    """Text and readable reference audio are there; the model itself is checked when the job runs."""
    from demod_voice import audio
    from demod_voice.adapters import xtts as xtts_adapter

    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    voice = getattr(job, "voice", "")
    if voice and job.reference:
        raise InputError("give either 'reference' or a saved 'voice', not both")
    if voice:  # a saved voice: it exists and has a reference or saved conditioning; its language is the default
        from demod_voice.voices import saved_voice

        profile = saved_voice(cfg, voice)
        if not profile.reference and not profile.saved_latents.is_file():
            raise InputError(f"voice '{voice}' has no reference samples chosen",
                             hint=f"demod-voice voices reference auto {voice}")
        job.language = job.language or profile.language
    elif not job.reference:
        raise InputError("an XTTS job needs reference audio or a saved voice",
                         hint="fill the 'reference' column (several: a|b|c) or 'voice' (see 'demod-voice voices list')")
    # ``speaker`` (the original fifth column) names a built-in speaker, which coqui ignores when reference
    # audio is given; it is kept as a label in the report.
    for ref in job.reference:
        if not ref.is_file():
            raise InputError(f"reference audio not found: {ref}", hint="paths are relative to the job file's folder")
        try:
            audio.info(ref)
        except RuntimeError as exc:  # soundfile's LibsndfileError is a RuntimeError
            raise InputError(f"cannot read reference audio {ref}: {exc}",
                             hint="use WAV, FLAC, OGG or MP3") from None
    job.language = job.language or cfg.get("xtts.language")
    return {**xtts_adapter.identity(request(job), cfg), **chain_identity(job, cfg)}


def group_key(job) -> tuple:
    voice = getattr(job, "voice", "")
    return ("xtts", job.model, tuple(str(r) for r in job.reference)) + ((voice,) if voice else ())


class Runner:
    """Runs jobs through the XTTS adapter; a model that fails to load fails its jobs without reloading."""

    def __init__(self, cfg, device: str):
        self.cfg = cfg
        self.device = device
        self._failures: dict[str, Exception] = {}

    def run(self, job) -> Audio:
        from demod_voice import adapters

        if job.model in self._failures:  # a missing model is reported for each of its jobs, loaded once
            raise self._failures[job.model]
        try:
            chunks = list(adapters.synthesize("xtts", request(job), self.cfg, self.device))
        except (NotAvailableError, EngineError) as exc:
            self._failures[job.model] = exc
            raise
        except ImportError as exc:
            raise NotAvailableError(f"the XTTS engine cannot be imported ({exc})",
                                    hint="install the 'xtts' extra") from None
        from demod_voice.captions import join

        return join(chunks)
