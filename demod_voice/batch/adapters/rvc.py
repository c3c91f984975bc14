"""RVC jobs: ``input`` audio converted to the voice of an RVC ``model``."""

from __future__ import annotations

from demod_voice.audio import Audio
from demod_voice.batch.adapters import schema_options
from demod_voice.config import RVC_CONVERSION_KEYS
from demod_voice.errors import EngineError, InputError, NotAvailableError

OPTIONS = schema_options("rvc", RVC_CONVERSION_KEYS)


def request(job):
    from demod_voice.adapters import RvcRequest

    return RvcRequest(voice=job.model, options=dict(job.options))


def validate(job, cfg) -> dict:
    """Input audio is there and readable, a model is named, the options fit; the model loads when the job runs."""
    from demod_voice import audio
    from demod_voice.adapters import rvc as rvc_adapter
    from demod_voice.paths import file_identity

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
    rvc_adapter.options(request(job), cfg)
    return {"input": file_identity(job.input), "model": rvc_adapter.identity(request(job), cfg)}


def group_key(job) -> tuple:
    return ("rvc", job.model)


class Runner:
    """Converts through the RVC adapter; a model that fails to load fails its jobs without reloading."""

    def __init__(self, cfg, device: str):
        self.cfg = cfg
        self.device = device
        self._failures: dict[str, Exception] = {}

    def run(self, job) -> Audio:
        from demod_voice import audio
        from demod_voice.adapters import rvc as rvc_adapter

        if job.model in self._failures:
            raise self._failures[job.model]
        req = request(job)
        try:
            engine = rvc_adapter.engine_for(req, self.cfg, self.device)
        except (InputError, NotAvailableError, EngineError) as exc:
            self._failures[job.model] = exc
            raise
        except ImportError as exc:
            raise NotAvailableError(f"the RVC engine cannot be imported ({exc})", hint="install the 'rvc' extra") from None
        speech = audio.read(job.input, what="input audio")
        result = engine.convert(speech, **rvc_adapter.options(req, self.cfg))
        if job.captions is None:
            return result
        from demod_voice import captions  # words of the input speech; conversion keeps the time axis
        from demod_voice.alignment import words_of_speech

        speech.words = words_of_speech(speech, job.text, self.cfg, job.language or None)
        return captions.carry(speech, result)
