"""RVC jobs: ``input`` audio converted to the voice of an RVC ``model``."""

from __future__ import annotations

import importlib.util
import os

from demod_voice.audio import Audio
from demod_voice.batch.adapters import Option, file_identity
from demod_voice.errors import EngineError, InputError, NotAvailableError

F0_METHODS = ("rmvpe", "crepe", "crepe-tiny", "harvest", "dio", "pm")

OPTIONS = {
    "pitch": Option(int, "pitch shift in semitones", min=-48, max=48),
    "f0_method": Option(str, "pitch extraction method", choices=F0_METHODS),
    "index_rate": Option(float, "how much the feature index shapes the timbre (0-1)", min=0.0, max=1.0),
}


def validate(job, cfg) -> dict:
    """Input audio is there and readable and a model is named; the model loads when the job runs."""
    from demod_voice import audio

    if job.input is None:
        raise InputError("an RVC job needs input audio", hint="fill the 'input' column")
    if not job.model:
        raise InputError("an RVC job needs a model", hint="fill the 'model' column with an RVC .pth or voice name")
    if job.reference:
        raise InputError("RVC jobs convert 'input' audio; drop 'reference'")
    if not job.input.is_file():
        raise InputError(f"input audio not found: {job.input}", hint="paths are relative to the job file's folder")
    try:
        audio.info(job.input)
    except RuntimeError as exc:
        raise InputError(f"cannot read input audio {job.input}: {exc}", hint="use WAV, FLAC, OGG or MP3") from None
    model = file_identity(job.model) if job.model and os.path.isfile(job.model) else job.model
    return {"input": file_identity(job.input), "model": model}


def group_key(job) -> tuple:
    return ("rvc", job.model)


def _engine_module():
    if importlib.util.find_spec("demod_voice.engines.rvc") is None:
        raise NotAvailableError("the RVC engine is not part of this build of demod-voice",
                                hint="use Piper jobs, or install a version with RVC support")
    from demod_voice.engines import rvc

    return rvc


class Runner:
    """Holds every RVC model it has loaded; a model that fails to load fails its jobs without reloading."""

    def __init__(self, cfg, device: str):
        self.cfg = cfg
        self.device = device
        self._engines: dict[str, object] = {}
        self._failures: dict[str, Exception] = {}

    def _engine(self, model: str):
        if model in self._failures:
            raise self._failures[model]
        if model not in self._engines:
            try:
                self._engines[model] = _engine_module().load(model, self.cfg, self.device)
            except (InputError, NotAvailableError, EngineError) as exc:
                self._failures[model] = exc
                raise
        return self._engines[model]

    def run(self, job) -> Audio:
        from demod_voice import audio

        engine = self._engine(job.model)
        source = audio.read(job.input, what="input audio")
        if job.captions is not None:  # words of the input speech; conversion keeps the time axis
            from demod_voice import alignment, captions

            aligner = alignment.WhisperAligner(alignment.whisper_model_name(self.cfg), job.language or None)
            source.words = (aligner.align(source, job.text) if job.text
                            else alignment.whisper_words(aligner.model, source, aligner.language))
            return captions.carry(source, self._convert(engine, source, job))
        return self._convert(engine, source, job)

    def _convert(self, engine, source: Audio, job) -> Audio:
        return engine.convert(source, pitch=job.options.get("pitch", 0),
                              f0_method=job.options.get("f0_method", self.cfg.get("rvc.f0_method")),
                              index_rate=job.options.get("index_rate", 0.75))
