"""RVC: a conversion request + config -> validated options -> the cached engine for the voice."""

from __future__ import annotations

import dataclasses

from demod_voice.audio import Audio
from demod_voice.synthesis.contract import Handle, build_options, option_keys


@dataclasses.dataclass(frozen=True)
class RvcOptions:
    """The settings of one conversion (``rvc.*`` schema keys), built once by ``options()``."""

    pitch: float
    f0_method: str
    index_rate: float
    filter_radius: int
    rms_mix_rate: float
    protect: float
    resample_sr: int | None


def options(rvc_request, cfg) -> RvcOptions:
    """Every conversion option, from the request or else the config, checked against the schema."""
    values = build_options(RvcOptions, "rvc", rvc_request.options, cfg)
    if values.resample_sr == 0:  # "0 = the voice's own rate" on the command line
        values = dataclasses.replace(values, resample_sr=None)
    return values


def convert_with(engine, audio: Audio, values: RvcOptions) -> Audio:
    """One conversion by a loaded engine with these options (the CLI's and the chain's one call)."""
    return engine.convert(audio, pitch=values.pitch, f0_method=values.f0_method, index_rate=values.index_rate,
                          filter_radius=values.filter_radius, rms_mix_rate=values.rms_mix_rate,
                          protect=values.protect, resample_sr=values.resample_sr)


def engine_for(rvc_request, cfg, device: str | None = None):
    from demod_voice.engines import rvc

    return rvc.load(rvc_request.voice, cfg, device or cfg.get("device"), index=rvc_request.index)


class RvcHandle(Handle):
    """The converter contract (``synthesis.contract.ConvertEngine``) over one loaded RVC voice."""

    def condition(self, references) -> None:
        """The voice is the model (its index loads with it): nothing to condition on."""
        return None

    def convert(self, audio: Audio, conditioning, options: RvcOptions) -> Audio:
        return convert_with(self.model, audio, options)


def load(rvc_request, cfg, device: str | None = None) -> RvcHandle:
    """The contract's ``load``: the request's voice (and index), from the model manager. A converter's request
    names its model, so it is what ``load`` takes (its options, ``RvcOptions``, hold only settings)."""
    return RvcHandle(engine_for(rvc_request, cfg, device))


def convert(audio: Audio, rvc_request, cfg, device: str | None = None, values: RvcOptions | None = None) -> Audio:
    """Convert one piece of speech into the request's RVC voice."""
    values = values if values is not None else options(rvc_request, cfg)
    engine = load(rvc_request, cfg, device)
    return engine.convert(audio, engine.condition(None), values)


def identity(rvc_request, cfg) -> object:
    """What the result depends on beyond the request: the voice file when it is a path."""
    import os

    from demod_voice.paths import file_identity

    return file_identity(rvc_request.voice) if os.path.isfile(rvc_request.voice) else rvc_request.voice


# --- registry entry: what the rest of the program asks of this engine -----------------------------

NAME = "rvc"
KIND = "convert"
SECTION = "rvc"
OPTION_KEYS = option_keys(RvcOptions)
MODELS = ("rvc-aux",)
COMMANDS = ("demod_voice.engines.rvc.cli", "demod_voice.engines.rvc.cli_voices")


def available(cfg=None) -> tuple[bool, str]:
    """Its packages importable (not imported) and, given a config, the HuBERT weights in place."""
    from demod_voice.needs import engine_ready

    return engine_ready("rvc", cfg, weights=_weights)


def _weights(cfg) -> None:
    from demod_voice.engines.rvc import hubert_path

    hubert_path(cfg)


class Provider:
    """The router's view: an HTTP ``rvc`` object -> a validated ``RvcRequest``; conversion of one chunk."""

    def __init__(self, cfg, name: str = NAME):
        self.cfg = cfg
        self.name = name

    def request(self, given: dict):
        """An HTTP ``rvc`` object as a validated ``RvcRequest`` (voice names only: no paths from clients)."""
        from demod_voice.errors import InputError
        from demod_voice.paths import validate_name
        from demod_voice.synthesis import RvcRequest

        given = dict(given)
        model = given.pop("voice", None) or given.pop("model", None)
        if not model:
            raise InputError("no RVC voice given", hint="pass rvc.voice (an RVC model name or path)")
        validate_name(str(model), "RVC voice name")
        unknown = set(given) - set(OPTION_KEYS)
        if unknown:
            raise InputError(f"unknown rvc option(s) {', '.join(sorted(unknown))}",
                             hint="known: voice, " + ", ".join(OPTION_KEYS))
        request = RvcRequest(voice=str(model), options={k: v for k, v in given.items() if v is not None})
        options(request, self.cfg)  # range errors now, before any engine runs
        return request

    def convert(self, audio: Audio, request) -> Audio:
        from demod_voice.errors import NotAvailableError, install_hint

        try:
            return convert(audio, request, self.cfg, self.cfg.get("device"))
        except ImportError as exc:
            raise NotAvailableError(f"the RVC engine is not installed ({exc})",
                                    hint=install_hint("rvc")) from None

    def status(self) -> dict:
        from demod_voice.needs import engine_status

        return engine_status("rvc", self.cfg, available)


# --- batch jobs: ``input`` audio converted to the voice of an RVC ``model`` ---------------------------------

from demod_voice.synthesis.jobs import schema_options  # noqa: E402

JOB_OPTIONS = schema_options("rvc", OPTION_KEYS)
INFER_FROM = ("input",)
INFER_RANK = 0


def job_request(job):
    from demod_voice.synthesis import RvcRequest

    return RvcRequest(voice=job.model, options=dict(job.options))


def validate_job(job, cfg) -> dict:
    """Input audio is there and readable, a model is named, the options fit; the model loads when the job runs."""
    from demod_voice import audio
    from demod_voice.errors import InputError
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
    options(job_request(job), cfg)
    return {"input": file_identity(job.input), "model": identity(job_request(job), cfg)}


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
        from demod_voice.errors import EngineError, InputError, NotAvailableError

        if job.model in self._failures:
            raise self._failures[job.model]
        req = job_request(job)
        try:
            engine = load(req, self.cfg, self.device)
        except (InputError, NotAvailableError, EngineError) as exc:
            self._failures[job.model] = exc
            raise
        except ImportError as exc:
            raise NotAvailableError(f"the RVC engine cannot be imported ({exc})", hint="install the 'rvc' extra") from None
        speech = audio.read(job.input, what="input audio")
        result = engine.convert(speech, engine.condition(None), options(req, self.cfg))
        if job.captions is None:
            return result
        from demod_voice import captions  # words of the input speech; conversion keeps the time axis
        from demod_voice.alignment import words_of_speech

        speech.words = words_of_speech(speech, job.text, self.cfg, job.language or None)
        return captions.carry(speech, result)


def registered_voices(cfg) -> list:
    """The voices registered with ``rvc add`` (Wyoming lists each after its TTS voices)."""
    from demod_voice.engines.rvc import voices

    return voices.registered(cfg)


def resolve_voice(name: str, cfg):
    """A registered voice name or ``.pth`` path -> the voice (raises ``ModelNotFoundError``)."""
    from demod_voice.engines.rvc import voices

    return voices.resolve(name, cfg)
