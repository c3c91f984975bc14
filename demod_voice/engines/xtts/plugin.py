"""XTTS: request + config -> validated sampling options, conditioning latents -> the cached engine.

Latents live in one place: ``<cache_dir>/xtts-latents`` (when ``xtts.latents_cache`` is on), keyed by
the content of the reference files and the model, whichever front end asked; within a process they
are also kept in memory, so a batch of a thousand lines in one voice conditions once.

A saved voice is a voice profile (``demod_voice.voices``): its saved conditioning when it was made
with the model in use, otherwise its reference samples through the same cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demod_voice import config as config_mod
from demod_voice.audio import Audio
from demod_voice.errors import InputError, UsageError
from demod_voice.synthesis.contract import Handle, build_options, option_keys


@dataclass(frozen=True)
class XttsOptions:
    """The sampling settings of one request (``xtts.*`` schema keys), built once by ``options()``."""

    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    length_penalty: float
    speed: float


_LATENTS: dict[str, object] = {}
_LATENTS_LOCK = threading.Lock()
_LATENTS_KEEP = 64


@dataclass
class XttsPlan:
    """Everything an XTTS synthesis needs, validated before the model loads."""

    model_dir: Path
    language: str | None
    sampling: XttsOptions
    seed: int | None
    stream: bool
    stream_chunk_size: int
    precision: str
    conditioning: object = None  # engines.xtts.ConditioningPlan (reference audio) or None
    saved_voice: Path | None = None  # a profile's saved conditioning (latents file) for this model, or None


def latents_dir(cfg) -> Path | None:
    """The one latents cache folder (its parent; the engine adds ``xtts-latents``), or None when off."""
    return Path(cfg.cache_dir) if cfg.get("xtts.latents_cache") else None


def options(request, cfg, *, need_text: bool = True, profile=None) -> XttsPlan:
    """Check everything that can be checked without torch: model folder, language, references, options.

    ``request.voice`` names a saved voice of the CLI user; the server passes the user's ``profile``.
    """
    from demod_voice.engines import xtts

    if request.voice and request.references:
        raise UsageError("give either reference audio or a saved voice, not both")
    if profile is None and request.voice:
        from demod_voice.voices import saved_voice

        profile = saved_voice(cfg, request.voice)
    speed = {"speed": config_mod.check_option("xtts.speed", request.speed)} if request.speed is not None else {}
    sampling = build_options(XttsOptions, "xtts", request.options, cfg, **speed)
    seed = config_mod.check_option("xtts.seed", request.seed) if request.seed is not None else cfg.get("xtts.seed")
    model_dir = xtts.resolve_model_dir(cfg, request.model)
    language = None
    if need_text:
        languages = xtts.model_languages(xtts.read_model_config(model_dir))
        wanted = request.language or (profile.language if profile is not None else None) or cfg.get("xtts.language")
        language = xtts.check_language(wanted, languages)
    if request.words:  # word timings come from Whisper: its model must be set before anything runs
        from demod_voice.alignment import whisper_model_name

        whisper_model_name(cfg)
    plan = XttsPlan(model_dir, language, sampling, seed, request.stream, cfg.get("xtts.stream_chunk_size"),
                    cfg.get("xtts.precision"))
    if request.references:
        plan.conditioning = xtts.plan_conditioning(request.references, model_dir, latents_dir(cfg))
    elif profile is not None:
        _plan_profile(plan, profile, cfg)
    else:
        raise InputError("XTTS needs reference audio or a saved voice",
                         hint="give reference audio (a file or folder) or the name of a saved voice")
    return plan


def _plan_profile(plan: XttsPlan, profile, cfg) -> None:
    """A saved voice: its saved conditioning when made with this model (or when it has nothing else),
    else its reference samples."""
    from demod_voice.engines import xtts

    saved = profile.saved_latents
    refs = profile.reference_paths()
    if saved.is_file() and (not refs or xtts.latents_model_id(saved) == xtts.model_identity(plan.model_dir)):
        plan.saved_voice = saved  # another model's: the engine refuses a different width, warns otherwise
        return
    if not refs:
        raise InputError(f"voice '{profile.name}' has no reference samples chosen",
                         hint=f"add recordings: demod-voice voices samples add {profile.name} FILE, then "
                              f"demod-voice voices reference auto {profile.name}")
    missing = [p.name for p in refs if not p.is_file()]
    if missing:
        raise InputError(f"reference sample(s) {', '.join(missing)} of voice '{profile.name}' are gone",
                         hint=f"choose others: demod-voice voices reference auto {profile.name}")
    plan.conditioning = xtts.plan_conditioning(refs, plan.model_dir, latents_dir(cfg))


def engine_for(plan: XttsPlan, cfg, device: str | None = None):
    from demod_voice.engines import xtts

    return xtts.load(plan.model_dir, device or cfg.get("device"), plan.precision, cfg=cfg)


def latents(plan: XttsPlan, engine):
    """The conditioning latents: a saved voice's, or from memory / the disk cache / computed."""
    if plan.saved_voice is not None:
        from demod_voice.engines import xtts

        saved = xtts.XttsLatents.load(plan.saved_voice, f"saved voice {plan.saved_voice.parent.parent.name}")
        saved.key = ""
        return saved
    key = f"{engine.model_id}:{plan.conditioning.key}"
    with _LATENTS_LOCK:
        found = _LATENTS.get(key)
    if found is None:
        found = engine.conditioning(plan.conditioning)
        with _LATENTS_LOCK:
            if len(_LATENTS) >= _LATENTS_KEEP:
                _LATENTS.pop(next(iter(_LATENTS)))
            _LATENTS[key] = found
    return found


class XttsHandle(Handle):
    """The engine contract (``synthesis.contract.Engine``) over one loaded XTTS model."""

    def condition(self, references: XttsPlan):
        """The latents of the plan's references (its conditioning plan, or a saved voice's latents file)."""
        return latents(references, self.model)

    def synthesize(self, text: str, conditioning, options: XttsPlan, *,
                   split_sentences: bool = True) -> Iterator[Audio]:
        """One chunk per sentence, or per streamed piece when the plan streams."""
        o = options.sampling
        return self.model.synthesize(text, language=options.language, latents=conditioning, stream=options.stream,
                                     split_sentences=split_sentences, seed=options.seed,
                                     stream_chunk_size=options.stream_chunk_size, temperature=o.temperature,
                                     top_k=o.top_k, top_p=o.top_p, repetition_penalty=o.repetition_penalty,
                                     length_penalty=o.length_penalty, speed=o.speed)


def load(plan: XttsPlan, cfg, device: str | None = None) -> XttsHandle:
    """The contract's ``load``: the plan's checkpoint at its precision, from the model manager."""
    return XttsHandle(engine_for(plan, cfg, device))


def synthesize(request, cfg, device: str | None = None, plan: XttsPlan | None = None) -> Iterator[Audio]:
    """One chunk per sentence (or per streamed piece with ``request.stream``), float32 at 24 kHz."""
    plan = plan or options(request, cfg)
    engine = load(plan, cfg, device)
    produced = False
    chunks = engine.synthesize(request.text, engine.condition(plan), plan, split_sentences=request.split_sentences)
    if request.words:  # XTTS has no alignments of its own: Whisper aligns the text to the audio
        from demod_voice import alignment

        whisper = alignment.whisper_model_name(cfg)
        chunks = alignment.with_words(chunks, request.text, lambda: alignment.WhisperAligner(whisper, plan.language))
    for chunk in chunks:
        produced = True
        yield chunk
    if not produced:
        raise InputError("the text produced no speech", hint="give words, not only punctuation")


def identity(request, cfg) -> dict:
    """What the result depends on beyond the request: the reference files and the model."""
    from demod_voice.engines import xtts
    from demod_voice.paths import file_identity

    refs = [file_identity(p) for p in xtts.expand_references(request.references)] if request.references else []
    out = {"reference": refs, "voice": request.voice or "", "model": request.model or cfg.get("xtts.model_dir") or ""}
    if request.voice:  # a saved voice changes when its reference or saved conditioning does
        from demod_voice.voices import saved_voice

        profile = saved_voice(cfg, request.voice)
        saved = profile.saved_latents
        out["saved_voice"] = [profile.reference_hash, file_identity(saved) if saved.is_file() else ""]
    return out


def cache_identity(plan: XttsPlan) -> dict:
    """The plan as the one audio-cache key sees it (``synthesis.keys``): the checkpoint's files by contents,
    the reference conditioning by its own key (not the decoded audio the plan may hold)."""
    import dataclasses

    from demod_voice.paths import file_identity
    from demod_voice.synthesis.keys import canonical

    out = canonical(dataclasses.replace(plan, conditioning=None))
    out["model_dir"] = "|".join(file_identity(plan.model_dir / f) for f in ("model.pth", "config.json"))
    out["conditioning"] = plan.conditioning.key if plan.conditioning is not None else None
    return out


# --- registry entry: what the rest of the program asks of this engine -----------------------------

NAME = "xtts"
KIND = "tts"
SECTION = "xtts"
OPTION_KEYS = option_keys(XttsOptions)
MODELS = ("xtts",)
COMMANDS = ("demod_voice.engines.xtts.cli",)

_FOUND: dict[str, bool] = {}


def _has_module(name: str) -> bool:
    """``find_spec`` once per process (installing an engine needs a restart anyway)."""
    import importlib.util

    if name not in _FOUND:
        _FOUND[name] = importlib.util.find_spec(name) is not None
    return _FOUND[name]


def available(cfg=None) -> tuple[bool, str]:
    """Its packages importable (not imported) and, given a config, the XTTS-v2 weights in place."""
    from demod_voice.needs import engine_ready

    return engine_ready("xtts", cfg, weights=_weights)


def _weights(cfg) -> None:
    from demod_voice.engines.xtts.checkpoint import resolve_model_dir

    resolve_model_dir(cfg)


class Provider:
    """The router's view: a profile's chosen references -> an XTTS candidate."""

    PARAMS = ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty")

    def __init__(self, cfg, name: str = NAME):
        self.cfg = cfg
        self.name = name

    def module(self):
        import importlib

        from demod_voice.synthesis.requests import NOT_INSTALLED, Fallback

        try:
            return importlib.import_module("demod_voice.engines.xtts")
        except ImportError as exc:
            raise Fallback(NOT_INSTALLED, f"the XTTS engine cannot be imported ({exc})") from None

    def prepare(self, req, voice):
        from demod_voice import devices
        from demod_voice.errors import ModelNotFoundError
        from demod_voice.paths import file_identity
        from demod_voice.synthesis import Request, chain
        from demod_voice.synthesis.requests import MODEL_MISSING, NOT_INSTALLED, REFERENCE_MISSING, Candidate, Fallback

        profile = voice.profile
        if profile is None:
            raise Fallback(REFERENCE_MISSING, f"'{voice.name}' is a Piper voice with no reference audio")
        refs = profile.reference_paths()
        saved = profile.saved_latents.is_file()  # conditioning saved with the voice (--save-voice, migration)
        if not refs and not saved:
            raise Fallback(REFERENCE_MISSING, f"voice '{profile.name}' has no reference samples chosen")
        missing = [p.name for p in refs if not p.is_file()]
        if missing and not saved:
            raise Fallback(REFERENCE_MISSING, f"reference sample(s) {', '.join(missing)} of '{profile.name}' are gone")
        if not _has_module("TTS"):
            raise Fallback(NOT_INSTALLED, "coqui-tts is not installed")
        self.module()
        p = req.params
        request = Request(text=req.text, voice=profile.name, language=req.language or profile.language,
                          speed=req.speed, seed=p.get("seed"), stream=req.stream,
                          options={k: p[k] for k in OPTION_KEYS if p.get(k) is not None}, words=req.words)
        try:
            plan = options(request, self.cfg, profile=profile)  # the same steps as the CLI's --voice
        except ModelNotFoundError as exc:
            raise Fallback(MODEL_MISSING, exc.message) from None
        version = "|".join(file_identity(plan.model_dir / f) for f in ("model.pth", "config.json"))

        def start() -> Iterator[Audio]:
            return chain.finite(synthesize(request, self.cfg, self.cfg.get("device"), plan=plan), self.name)

        return Candidate(self.name, version, devices.queue_for(self.cfg.get("device"), engine_uses_gpu=True), start,
                         request=request, plan=plan)

    def status(self) -> dict:
        from demod_voice.errors import ModelNotFoundError
        from demod_voice.needs import engine_status
        from demod_voice.synthesis.requests import Fallback

        status = engine_status("xtts", self.cfg, available)
        if status["installed"]:
            try:
                status["model_dir"] = str(self.module().resolve_model_dir(self.cfg))
                status["model"] = "present"
            except (Fallback, ModelNotFoundError) as exc:
                status["model"] = f"missing: {getattr(exc, 'message', exc)}"
        return status


# --- batch jobs: ``text`` spoken in the voice of ``reference`` audio or a saved ``voice`` (XTTS-v2) --------
# Conditioning latents are computed once per reference set (kept in memory and in the one latents cache),
# so a thousand lines in one voice condition once. A missing model fails the jobs that need it, with the
# engine's message; the rest of the run goes on.

from demod_voice.synthesis.jobs import TtsRunner, chain_identity, chain_request, schema_options  # noqa: E402

JOB_OPTIONS = schema_options("xtts", OPTION_KEYS, seed="xtts.seed")
INFER_FROM = ("reference",)
INFER_RANK = 1


def job_request(job):
    from demod_voice.synthesis import Request

    job_options = dict(job.options)
    seed = job_options.pop("seed", None)
    return Request(text=job.text, references=list(job.reference), voice=getattr(job, "voice", ""),
                   language=job.language or None,
                   model=job.model or None, seed=seed, options=job_options, rvc=chain_request(job),
                   words=getattr(job, "captions", None) is not None)


def validate_job(job, cfg) -> dict:
    """Text and readable reference audio are there; the model itself is checked when the job runs."""
    from demod_voice import audio

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
    return {**identity(job_request(job), cfg), **chain_identity(job, cfg)}


def group_key(job) -> tuple:
    voice = getattr(job, "voice", "")
    return ("xtts", job.model, tuple(str(r) for r in job.reference)) + ((voice,) if voice else ())


class Runner(TtsRunner):
    """Runs jobs through the XTTS adapter; a model that fails to load fails its jobs without reloading."""

    engine = NAME
    install_hint = "install the 'xtts' extra"
    request = staticmethod(job_request)


def profile_ready(profile, cfg) -> bool:
    """Whether a saved voice of this engine can be spoken now: packages found, weights and reference present."""
    if not available(cfg)[0]:  # every package of the 'xtts' extra, then the weights
        return False
    refs = profile.reference_paths()
    return bool(refs) and all(p.is_file() for p in refs)
