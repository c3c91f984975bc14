"""StyleTTS2: request + config -> validated controls, reference style -> the cached in-process engine.

The style of a reference (its mel through the acoustic and prosodic style encoders) is kept in memory per model
and reference content, so a batch of lines in one voice encodes the reference once. ``alpha``, ``beta``,
``diffusion_steps``, ``embedding_scale``, ``speed`` and ``seed`` come from the one schema (``styletts2.*``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demod_voice import config as config_mod
from demod_voice.audio import Audio
from demod_voice.errors import InputError
from demod_voice.synthesis.contract import Handle, build_options, option_keys
from demod_voice.synthesis.jobs import TtsRunner, chain_identity, chain_request, schema_options


@dataclass(frozen=True)
class StyleTTS2Options:
    """The synthesis controls of one request (``styletts2.*`` schema keys), built once by ``options()``."""

    alpha: float
    beta: float
    diffusion_steps: int
    embedding_scale: float
    speed: float


NAME = "styletts2"
KIND = "tts"
SECTION = "styletts2"
OPTION_KEYS = option_keys(StyleTTS2Options)
MODELS = ("styletts2",)
COMMANDS = ("demod_voice.engines.styletts2.cli",)
#: ``health --deep`` runs it (``selftest``) with at most this many seconds.
SELFTEST_TIMEOUT = 600.0

_STYLES: dict[tuple, object] = {}
_STYLES_LOCK = threading.Lock()
_STYLES_KEEP = 64
_FOUND: dict[str, bool] = {}


@dataclass
class StyleTTS2Plan:
    model_dir: Path
    voice: str
    values: StyleTTS2Options
    seed: int | None
    references: list[Path]


def espeak_voice(language: str | None, cfg) -> str:
    """The espeak-ng voice: the config's for English (``en``), an ``en-*`` variant as given; others refused."""
    configured = cfg.get("styletts2.language")
    if not language or language.lower() in ("en", configured.lower()):
        return configured
    if language.lower().startswith("en-") and language.replace("-", "").isalnum() and len(language) <= 16:
        return language.lower()
    raise InputError(f"StyleTTS2 speaks English; language '{language}' is not supported",
                     hint="use en (styletts2.language picks the accent), or XTTS for other languages")


def expand_references(references) -> list[Path]:
    """Reference files (a folder: its audio files, sorted), checked to exist."""
    from demod_voice import audio as audio_mod

    found: list[Path] = []
    for ref in references:
        path = Path(ref).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"reference audio not found: {path}", hint="give an audio file or a folder of them")
    if not found:
        raise InputError("no reference audio found", hint="give a WAV, FLAC, OGG or MP3 file, or a folder of them")
    for path in found:
        try:
            audio_mod.info(path)
        except RuntimeError as exc:  # soundfile's LibsndfileError
            raise InputError(f"cannot read reference audio {path}: {exc}", hint="use WAV, FLAC, OGG or MP3") from None
    return found


def options(request, cfg) -> StyleTTS2Plan:
    """Check the controls, the model folder, the language and the reference; nothing heavy is imported."""
    from demod_voice.engines.styletts2 import checkpoint, default_model_dir

    speed = {"speed": config_mod.check_option("styletts2.speed", request.speed)} if request.speed is not None else {}
    values = build_options(StyleTTS2Options, SECTION, request.options, cfg, **speed)
    seed = config_mod.check_option("styletts2.seed", request.seed) if request.seed is not None \
        else cfg.get("styletts2.seed")
    folder = Path(request.model or cfg.get("styletts2.model_dir") or default_model_dir(cfg)).expanduser()
    model_dir = checkpoint.find(folder).folder
    voice = espeak_voice(request.language, cfg)
    references = list(request.references)
    if request.voice and not references:
        from demod_voice.voices import store_for

        profile = store_for(cfg).get(request.voice)
        references = profile.reference_paths()
        if not references:
            raise InputError(f"voice '{request.voice}' has no reference samples chosen",
                             hint=f"'demod-voice voices reference {request.voice} auto' or pick samples")
    elif request.voice:
        raise InputError("give either reference audio or a saved voice, not both")
    if not references:
        raise InputError("StyleTTS2 needs reference audio or a saved voice",
                         hint="give reference audio (a file or folder) or the name of a saved voice")
    if request.words:
        from demod_voice.alignment import whisper_model_name

        whisper_model_name(cfg)
    return StyleTTS2Plan(model_dir, voice, values, seed, expand_references(references))


def engine_for(plan: StyleTTS2Plan, cfg, device: str | None = None):
    from demod_voice import devices
    from demod_voice.engines import styletts2

    return styletts2.load(plan.model_dir, devices.torch_device(device or cfg.get("device")))


def style(plan: StyleTTS2Plan, engine):
    """The reference's style: from memory, or encoded (keyed by model and reference content)."""
    from demod_voice.paths import file_identity

    key = (engine.model_id, tuple(file_identity(p) for p in plan.references))
    with _STYLES_LOCK:
        found = _STYLES.get(key)
    if found is None:
        found = engine.style(plan.references)
        with _STYLES_LOCK:
            if len(_STYLES) >= _STYLES_KEEP:
                _STYLES.pop(next(iter(_STYLES)))
            _STYLES[key] = found
    return found


class StyleTTS2Handle(Handle):
    """The engine contract (``synthesis.contract.Engine``) over one loaded StyleTTS2 checkpoint."""

    def condition(self, references: StyleTTS2Plan):
        """The style of the plan's reference files (kept in memory by model and contents)."""
        return style(references, self.model)

    def synthesize(self, text: str, conditioning, options: StyleTTS2Plan) -> Iterator[Audio]:
        o = options.values
        return self.model.synthesize(text, conditioning, seed=options.seed, voice=options.voice, alpha=o.alpha,
                                     beta=o.beta, diffusion_steps=o.diffusion_steps,
                                     embedding_scale=o.embedding_scale, speed=o.speed)


def load(plan: StyleTTS2Plan, cfg, device: str | None = None) -> StyleTTS2Handle:
    """The contract's ``load``: the plan's checkpoint, from the model manager."""
    return StyleTTS2Handle(engine_for(plan, cfg, device))


def synthesize(request, cfg, device: str | None = None, plan: StyleTTS2Plan | None = None) -> Iterator[Audio]:
    """One float32 chunk per sentence at 24 kHz."""
    from demod_voice import text as text_mod

    plan = plan or options(request, cfg)
    words = text_mod.require_text(request.text)
    engine = load(plan, cfg, device)
    chunks = engine.synthesize(words, engine.condition(plan), plan)
    if request.words:
        from demod_voice import alignment

        whisper = alignment.whisper_model_name(cfg)
        chunks = alignment.with_words(chunks, request.text, lambda: alignment.WhisperAligner(whisper, "en"))
    produced = False
    for chunk in chunks:
        produced = True
        yield chunk
    if not produced:
        raise InputError("the text produced no speech", hint="give words, not only punctuation")


def identity(request, cfg) -> dict:
    """What the result depends on beyond the request: the reference files and the checkpoint."""
    from demod_voice.engines.styletts2 import checkpoint, default_model_dir
    from demod_voice.paths import file_identity

    refs = [file_identity(p) for p in expand_references(request.references)] if request.references else []
    folder = Path(request.model or cfg.get("styletts2.model_dir") or default_model_dir(cfg)).expanduser()
    try:
        weights = file_identity(checkpoint.find(folder).weights)
    except InputError:
        weights = str(folder)
    return {"reference": refs, "voice": request.voice or "", "model": weights}


def cache_identity(plan: StyleTTS2Plan) -> dict:
    """The plan as the one audio-cache key sees it (``synthesis.keys``): the checkpoint by contents."""
    from demod_voice.paths import file_identity
    from demod_voice.synthesis.keys import canonical

    out = canonical(plan)
    out["model_dir"] = [file_identity(p) for p in sorted(plan.model_dir.glob("*.pth"))]
    return out


# --- registry entry: availability, the router's provider -----------------------------------------------------


def _has_module(name: str) -> bool:
    import importlib.util

    if name not in _FOUND:
        _FOUND[name] = importlib.util.find_spec(name) is not None
    return _FOUND[name]


def available(cfg=None) -> tuple[bool, str]:
    """torch, transformers and piper-tts (its espeak-ng) importable (not imported); given a config, its weights."""
    missing = [m for m in ("torch", "transformers", "piper") if not _has_module(m)]
    if missing:
        return False, f"{', '.join(missing)} not installed (the 'rvc' or 'xtts' extra, and 'piper')"
    if cfg is not None:
        from demod_voice.engines.styletts2 import resolve_model_dir
        from demod_voice.errors import DemodError

        try:
            resolve_model_dir(cfg)
        except DemodError as exc:
            return False, f"weights missing: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    return True, ""


def health(cfg) -> tuple[bool, str, dict]:
    """For ``health``: installed and weights in place (nothing loaded; not required: chains fall back)."""
    from demod_voice.engines.styletts2 import resolve_model_dir
    from demod_voice.errors import DemodError

    ok, why = available(None)
    if not ok:
        return False, why, {"installed": False}
    try:
        folder = resolve_model_dir(cfg)
    except DemodError as exc:
        return False, exc.message, {"installed": True, "model": "missing"}
    return True, f"checkpoint in {folder}", {"installed": True, "model": str(folder)}


class Provider:
    """The router's view: a profile's chosen references -> a StyleTTS2 candidate."""

    def __init__(self, cfg, name: str = NAME):
        self.cfg = cfg
        self.name = name

    def prepare(self, req, voice):
        from demod_voice import devices
        from demod_voice.errors import ModelNotFoundError
        from demod_voice.paths import file_identity
        from demod_voice.synthesis import Request, chain
        from demod_voice.synthesis.requests import (
            ENGINE_ERROR,
            MODEL_MISSING,
            NOT_INSTALLED,
            REFERENCE_MISSING,
            Candidate,
            Fallback,
        )

        profile = voice.profile
        if profile is None:
            raise Fallback(REFERENCE_MISSING, f"'{voice.name}' is a catalog voice with no reference audio")
        refs = profile.reference_paths()
        if not refs:
            raise Fallback(REFERENCE_MISSING, f"voice '{profile.name}' has no reference samples chosen")
        missing = [p.name for p in refs if not p.is_file()]
        if missing:
            raise Fallback(REFERENCE_MISSING, f"reference sample(s) {', '.join(missing)} of '{profile.name}' are gone")
        ok, why = available(None)  # packages only: missing weights are "model missing", from options() below
        if not ok:
            raise Fallback(NOT_INSTALLED, why)
        p = req.params
        request = Request(text=req.text, references=refs, language=req.language or profile.language,
                          speed=req.speed, seed=p.get("seed"), words=req.words,
                          options={k: p[k] for k in OPTION_KEYS if p.get(k) is not None})
        try:
            plan = options(request, self.cfg)
        except ModelNotFoundError as exc:
            raise Fallback(MODEL_MISSING, exc.message) from None
        except InputError as exc:
            raise Fallback(ENGINE_ERROR, exc.message) from None
        version = file_identity(next(plan.model_dir.glob("*.pth")))

        def start() -> Iterator[Audio]:
            return chain.finite(synthesize(request, self.cfg, self.cfg.get("device"), plan=plan), self.name)

        return Candidate(self.name, version, devices.queue_for(self.cfg.get("device"), engine_uses_gpu=True), start,
                         request=request, plan=plan)

    def status(self) -> dict:
        from demod_voice.engines.styletts2 import resolve_model_dir
        from demod_voice.errors import DemodError

        ok, why = available(None)
        status: dict = {"installed": ok, "available": available(self.cfg)[0] if ok else False}
        if not ok:
            status["problem"] = why
            return status
        try:
            status["model_dir"] = str(resolve_model_dir(self.cfg))
            status["model"] = "present"
        except DemodError as exc:
            status["model"] = f"missing: {exc.message}"
        return status


# --- health --deep: speak one word, with the installed model or a tiny random-weight one -----------------------


def selftest_args(cfg, work: Path, reference: Path) -> tuple[list[str], str]:
    """The ``styletts2-infer`` command ``health --deep`` runs (in a child process)."""
    from demod_voice.engines.styletts2 import resolve_model_dir
    from demod_voice.errors import ModelNotFoundError

    try:
        model_dir, what = resolve_model_dir(cfg), "installed model"
    except ModelNotFoundError:
        from demod_voice.engines.styletts2.tiny import build_tiny_styletts2
        from demod_voice.tiny_models import cached_build as _cached_build

        model_dir = _cached_build(Path(cfg.cache_dir) / "selftest", "styletts2-tiny", build_tiny_styletts2)
        what = "tiny random-weight checkpoint"
    return ["styletts2-infer", str(reference), "Hello.", "--model-dir", str(model_dir), "--seed", "0",
            "--output", str(work / "styletts2.wav")], f"{what} {model_dir}"


# --- batch jobs: ``text`` in the voice of ``reference`` audio, engine column ``styletts2`` ----------------------

JOB_OPTIONS = schema_options(SECTION, OPTION_KEYS, seed="styletts2.seed")
INFER_FROM: tuple[str, ...] = ()  # reference audio alone means XTTS; StyleTTS2 jobs name their engine
INFER_RANK = 40


def job_request(job):
    from demod_voice.synthesis import Request

    job_options = dict(job.options)
    seed = job_options.pop("seed", None)
    return Request(text=job.text, references=list(job.reference), language=job.language or None,
                   model=job.model or None, seed=seed, options=job_options, rvc=chain_request(job),
                   words=getattr(job, "captions", None) is not None)


def validate_job(job, cfg) -> dict:
    """Text and readable reference audio; the model is checked when the job runs."""
    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    if not job.reference:
        raise InputError("a StyleTTS2 job needs reference audio", hint="fill the 'reference' column (several: a|b|c)")
    expand_references(job.reference)
    espeak_voice(job.language or None, cfg)
    return {**identity(job_request(job), cfg), **chain_identity(job, cfg)}


def group_key(job) -> tuple:
    return (NAME, job.model, tuple(str(r) for r in job.reference))


class Runner(TtsRunner):
    engine = NAME
    install_hint = "install the 'rvc' (or 'xtts') and 'piper' extras"
    request = staticmethod(job_request)
