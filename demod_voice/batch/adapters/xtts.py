"""XTTS jobs: ``text`` spoken in the voice of ``reference`` audio (XTTS-v2 voice cloning).

Conditioning latents are computed once per reference set in each worker (and
cached on disk by the engine), so a thousand lines in one voice condition once.
A missing model fails the jobs that need it, with the engine's message; the
rest of the run goes on.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from demod_voice.audio import Audio
from demod_voice.batch.adapters import Option, file_identity
from demod_voice.captions import join
from demod_voice.errors import EngineError, InputError, NotAvailableError

OPTIONS = {
    "temperature": Option(float, "sampling temperature", min=0.01, max=5.0),
    "top_k": Option(int, "top-k sampling", min=1, max=1000),
    "top_p": Option(float, "nucleus sampling", min=0.01, max=1.0),
    "repetition_penalty": Option(float, "repetition penalty", min=1.0, max=100.0),
    "length_penalty": Option(float, "length penalty", min=-10.0, max=10.0),
    "speed": Option(float, "speech speed", min=0.25, max=4.0),
}
_SAMPLING = ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty", "speed")


def validate(job, cfg) -> dict:
    """Text and readable reference audio are there; the model itself is checked when the job runs."""
    from demod_voice import audio

    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    if not job.reference:
        raise InputError("an XTTS job needs reference audio", hint="fill the 'reference' column (several: a|b|c)")
    # ``speaker`` (the original fifth column) names a built-in speaker, which coqui ignores when reference
    # audio is given; it is kept as a label in the report.
    identity = []
    for ref in job.reference:
        if not ref.is_file():
            raise InputError(f"reference audio not found: {ref}", hint="paths are relative to the job file's folder")
        try:
            audio.info(ref)
        except RuntimeError as exc:  # soundfile's LibsndfileError is a RuntimeError
            raise InputError(f"cannot read reference audio {ref}: {exc}",
                             hint="use WAV, FLAC, OGG or MP3") from None
        identity.append(file_identity(ref))
    job.language = job.language or cfg.get("xtts.language")
    return {"reference": identity, "model": job.model or cfg.get("xtts.model_dir") or ""}


def group_key(job) -> tuple:
    return ("xtts", job.model, tuple(str(r) for r in job.reference))


def _engine_module():
    if importlib.util.find_spec("demod_voice.engines.xtts") is None:
        raise NotAvailableError("the XTTS engine is not part of this build of demod-voice",
                                hint="use Piper jobs, or install a version with XTTS support")
    from demod_voice.engines import xtts

    return xtts


class Runner:
    """Holds the loaded XTTS model(s) and the latents of every reference set it has seen."""

    def __init__(self, cfg, device: str):
        self.cfg = cfg
        self.device = device
        self._engines: dict[str, object] = {}
        self._latents: dict[tuple, object] = {}
        self._failures: dict[str, Exception] = {}

    def _engine(self, model: str):
        if model in self._failures:  # a missing model is reported for each of its jobs, loaded once
            raise self._failures[model]
        if model not in self._engines:
            try:
                xtts = _engine_module()
                model_dir = xtts.resolve_model_dir(self.cfg, model or None)
                self._engines[model] = xtts.load(model_dir, self.device, self.cfg.get("xtts.precision"))
            except (InputError, NotAvailableError, EngineError) as exc:
                self._failures[model] = exc
                raise
        return self._engines[model]

    def run(self, job) -> Audio:
        engine = self._engine(job.model)
        key = (job.model, tuple(str(r) for r in job.reference))
        if key not in self._latents:
            self._latents[key] = engine.conditioning([Path(r) for r in job.reference],
                                                     cache_dir=Path(self.cfg.cache_dir) / "latents")
        sampling = {name: job.options.get(name, self.cfg.get(f"xtts.{name}")) for name in _SAMPLING}
        language = job.language or self.cfg.get("xtts.language")
        chunks = engine.synthesize(job.text, language=language, latents=self._latents[key], **sampling)
        if job.captions is not None:  # XTTS has no alignments: Whisper aligns the text to the audio
            from demod_voice import alignment

            whisper = alignment.whisper_model_name(self.cfg)
            chunks = alignment.with_words(chunks, job.text, lambda: alignment.WhisperAligner(whisper, language))
        chunks = list(chunks)
        if not chunks:
            raise InputError("the text produced no speech", hint="give words, not only punctuation")
        return join(chunks)
