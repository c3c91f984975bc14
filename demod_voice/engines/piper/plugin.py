"""Piper: request + config -> validated ``PiperOptions`` -> the cached engine of the chosen backend.

Text is split into sentences by ``demod_voice.text.split_sentences`` (the splitter XTTS uses too)
before it reaches Piper, and sentences longer than ``MAX_SPOKEN_CHARS`` once read aloud are split again
at commas or word boundaries. Piper's network works on a whole sentence at once, with memory growing with
the length of its audio, so this bound keeps memory flat whatever the length of the text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demod_voice import config as config_mod
from demod_voice.audio import Audio
from demod_voice.errors import InputError
from demod_voice.synthesis.contract import Handle

#: Longest piece of text handed to Piper at once, in ``text.spoken_length`` characters (digits count as
#: the words they become). Piper's decoder holds the whole piece's audio in its upsampling layers, so a
#: run's memory follows the length of its speech (measured with the Joe voice, peak RSS of a process
#: speaking one sentence: 155 characters of prose 414 MB, 240 -> 524 MB, 327 -> 615 MB; 248 characters of
#: number-heavy text, 44 s of speech, 1 460 MB). 300 keeps a piece under ~600 MB and leaves ordinary
#: sentences whole, as raw Piper speaks them; only run-on text (no sentence end for 300 characters, or
#: numbers that read long) is split, at a comma or a word boundary. It was 150, which split ordinary long
#: sentences too (each of bench/server.py's 163-character sentences became two runs).
MAX_SPOKEN_CHARS = 300

_RESOLVED: dict[tuple[str, tuple[str, ...]], Path] = {}
_RESOLVED_LOCK = threading.Lock()


@dataclass(frozen=True)
class PiperPlan:
    """Everything a Piper synthesis needs, validated: which file, which backend, which options."""

    model_path: Path
    backend: str
    options: object  # engines.piper.PiperOptions


def resolve_model(name: str, cfg) -> Path:
    """Voice name or path -> ``.onnx``, remembered per config (a batch of 10 000 lines scans once per voice)."""
    from demod_voice import catalog

    # what the search depends on (the folders searched), never id(cfg): Python reuses ids after collection
    key = (name, tuple(str(f) for f, _ in catalog.search_folders(cfg)))
    with _RESOLVED_LOCK:
        path = _RESOLVED.get(key)
    if path is None:
        path = catalog.resolve_piper_model(name, cfg).resolve()
        with _RESOLVED_LOCK:
            _RESOLVED[key] = path
    return path


def options(request, cfg) -> PiperPlan:
    """Validate the request against the schema and the voice's own config; loads no engine."""
    from demod_voice.engines.piper.engine import PiperOptions, PiperVoiceConfig, check_voice_files

    if request.references:
        raise InputError("Piper takes a voice, not reference audio", hint="drop the reference, or use XTTS")
    model_path = resolve_model(request.voice or cfg.get("piper.default_voice"), cfg)
    voice_config = PiperVoiceConfig.read(check_voice_files(model_path))
    values = config_mod.section_options("piper", config_mod.PIPER_SYNTHESIS_KEYS, request.options, cfg)
    backend = config_mod.check_option("piper.backend", request.backend) if request.backend else cfg.get("piper.backend")
    # speed is a playback rate: Piper speaks at its length scale and the engine time-stretches (tempo.py),
    # since the model's durations do not follow length_scale linearly (0.5 gave 1.64x on the Joe voice)
    tempo = 1.0
    if request.speed is not None:
        tempo = float(config_mod.check_option("xtts.speed", request.speed, "request"))  # the one speed range
    speaker = voice_config.speaker_id(request.speaker, model_path.stem)
    return PiperPlan(model_path, backend, PiperOptions(speaker_id=speaker, **{
        "length_scale": values["length_scale"], "noise_scale": values["noise_scale"], "noise_w": values["noise_w"],
        "volume": values["volume"], "sentence_silence": values["sentence_silence"],
        "normalize_audio": bool(cfg.get("piper.normalize_audio")), "tempo": tempo}))


def load_engine(model_path: Path, cfg, device: str | None, backend: str):
    """The process's one engine for this voice, with the session settings every front end shares."""
    from demod_voice.engines.piper import engine as piper

    return piper.load(model_path, device, backend=backend, threads=cfg.get("piper.onnx_threads"),
                      spinning=cfg.get("piper.onnx_spinning"), release_ids=cfg.get("piper.arena_release_ids"))


class PiperHandle(Handle):
    """The engine contract (``synthesis.contract.Engine``) over one loaded Piper voice."""

    def condition(self, references) -> None:
        """Piper speaks its voice file's own speaker: nothing to condition on (``options()`` refuses audio)."""
        return None

    def synthesize(self, text: str, conditioning, options: PiperPlan, *, words: bool = False,
                   continued: bool = False) -> Iterator[Audio]:
        """One chunk per sentence (Piper may split a piece further) over ``split_pieces(text)``."""
        produced = False
        for piece in split_pieces(text):  # a later part of one answer (continued): silence before its first sentence too
            for chunk in self.model.synthesize(piece, options.options, words=words, continued=produced or continued):
                produced = True
                yield chunk
        if not produced:
            raise InputError("the text produced no speech", hint="give words, not only punctuation")


def load(plan: PiperPlan, cfg, device: str | None) -> PiperHandle:
    """The contract's ``load``: the plan's voice on its backend, from the model manager."""
    return PiperHandle(load_engine(plan.model_path, cfg, device or cfg.get("device"), plan.backend))


def split_pieces(text: str) -> list[str]:
    """The pieces Piper speaks one run each: sentences, split again past ``MAX_SPOKEN_CHARS`` read aloud."""
    from demod_voice import text as text_mod

    return text_mod.split_sentences(text, max_chars=MAX_SPOKEN_CHARS, measure=text_mod.spoken_length)


def synthesize(request, cfg, device: str | None = None, plan: PiperPlan | None = None) -> Iterator[Audio]:
    """One chunk per sentence (Piper may split a piece further), float32 at the voice's rate."""
    from demod_voice import text as text_mod

    plan = plan or options(request, cfg)
    text = text_mod.require_text(request.text)
    engine = load(plan, cfg, device)
    yield from engine.synthesize(text, engine.condition(request.references), plan, words=request.words,
                                 continued=request.continued)


def identity(request, cfg) -> dict:
    """What the result depends on beyond the request: the voice files (cache keys, batch resume)."""
    from demod_voice.engines.piper.engine import config_path_for
    from demod_voice.paths import file_identity

    model_path = resolve_model(request.voice or cfg.get("piper.default_voice"), cfg)
    return {"model": file_identity(model_path), "config": file_identity(config_path_for(model_path) or model_path)}


def cache_identity(plan: PiperPlan) -> dict:
    """The plan as the one audio-cache key sees it (``synthesis.keys``): the voice file and its config by
    contents, the backend and every option."""
    from demod_voice.engines.piper.engine import config_path_for
    from demod_voice.paths import file_identity
    from demod_voice.synthesis.keys import canonical

    return {**canonical(plan), "config": file_identity(config_path_for(plan.model_path) or plan.model_path)}


# --- registry entry: what the rest of the program asks of this engine -----------------------------

NAME = "piper"
KIND = "tts"
SECTION = "piper"
OPTION_KEYS = config_mod.PIPER_SYNTHESIS_KEYS
MODELS: tuple[str, ...] = ()  # voices come from 'voices download' (the Piper voice catalog)
COMMANDS = ("demod_voice.engines.piper.cli", "demod_voice.engines.piper.cli_preprocess")
OWN_WORDS = True  # word timings come from Piper's own alignments, not Whisper


def available(cfg=None) -> tuple[bool, str]:
    """The 'piper' extra's packages (piper-tts, onnxruntime) found, not imported. Its weights are the voices
    themselves, checked per request (a missing voice is the request's error, not the engine's)."""
    from demod_voice.needs import engine_ready

    return engine_ready("piper", None)


class Provider:
    """The router's view: resolves catalog voices and turns an HTTP/Wyoming request into a Piper candidate."""

    def __init__(self, cfg, name: str = NAME, catalog_ttl: float = 10.0):
        self.cfg = cfg
        self.name = name
        self._ttl = catalog_ttl
        self._entries: tuple[float, list] = (0.0, [])
        self._installed: bool | None = None

    def entries(self) -> list:
        """Installed Piper voices, re-scanned at most every ``catalog_ttl`` seconds (scanning costs ms)."""
        import time

        from demod_voice import catalog

        stamp, entries = self._entries
        if time.monotonic() - stamp > self._ttl:
            entries = catalog.piper_voices(self.cfg)
            self._entries = (time.monotonic(), entries)
        return entries

    def resolve(self, name: str) -> Path:
        from demod_voice import catalog

        if not catalog.looks_like_path(name):
            for entry in self.entries():
                if entry.name == name:
                    return Path(entry.path)
        return catalog.resolve_piper_model(name, self.cfg)

    def default_voice(self) -> str:
        return self.cfg.get("piper.default_voice")

    def device(self) -> str:
        from demod_voice import devices

        return devices.queue_for(self.cfg.get("device"), engine_uses_gpu=devices.onnx_wants_cuda(self.cfg.get("device")))

    def model_for(self, voice) -> Path:
        from demod_voice.synthesis.requests import MODEL_MISSING, Fallback

        if voice.path is not None and voice.engine == self.name:
            return voice.path
        name = (voice.profile.piper_voice if voice.profile else "") or self.cfg.get("piper.default_voice")
        try:
            return self.resolve(name)
        except InputError as exc:
            raise Fallback(MODEL_MISSING, exc.message) from None

    def prepare(self, req, voice):
        from demod_voice.engines.piper.engine import PiperVoiceConfig, check_voice_files
        from demod_voice.errors import EngineError
        from demod_voice.paths import file_identity
        from demod_voice.synthesis import chain
        from demod_voice.synthesis.requests import MODEL_MISSING, NOT_INSTALLED, Candidate, Fallback

        if self._installed is None:
            self._installed = available()[0]
        if not self._installed:
            raise Fallback(NOT_INSTALLED, "piper-tts is not installed")
        model = self.model_for(voice)
        if not model.is_file():
            raise Fallback(MODEL_MISSING, f"Piper voice file {model} is missing")
        try:  # a broken voice file is the engine's failure, not the request's
            PiperVoiceConfig.read(check_voice_files(model))
        except InputError as exc:
            raise Fallback(MODEL_MISSING, exc.message) from None
        request = self.request(req, model)
        plan = options(request, self.cfg)  # a bad option is the request's fault: 400, no breaker

        def start() -> Iterator[Audio]:

            try:  # load first: a voice file that does not load is the engine's failure, not the request's
                load_engine(plan.model_path, self.cfg, self.cfg.get("device"), plan.backend)
            except InputError as exc:
                raise EngineError(f"cannot load Piper voice {model.name}: {exc.message}") from exc
            return chain.finite(synthesize(request, self.cfg, self.cfg.get("device"), plan=plan), self.name)

        return Candidate(self.name, file_identity(model), self.device(), start, request=request, plan=plan)

    @staticmethod
    def request(req, model: Path):
        """The HTTP request as an engine-layer ``Request`` for the Piper adapter."""
        from demod_voice.synthesis import Request

        p = req.params
        return Request(text=req.text, voice=str(model), speaker=p.get("speaker"), speed=req.speed,
                       options={k: p[k] for k in OPTION_KEYS if p.get(k) is not None}, words=req.words,
                       continued=getattr(req, "continued", False))

    def status(self) -> dict:
        return {"installed": available()[0]}

    def preload(self, voice: str) -> None:
        """Load a voice now (``serve --preload``), so the first request does not wait for it."""

        load_engine(self.resolve(voice), self.cfg, self.cfg.get("device"), self.cfg.get("piper.backend"))


# --- batch jobs: ``text`` spoken by a Piper ``voice`` (a name from 'voices list' or a .onnx path) ----------

from demod_voice.synthesis.jobs import TtsRunner, chain_identity, chain_request, schema_options  # noqa: E402

JOB_OPTIONS = schema_options("piper", OPTION_KEYS, speed="xtts.speed")
INFER_FROM = ("voice", "model", "text")  # text alone: Piper with piper.default_voice (docs/batch.md)
INFER_RANK = 2


def job_request(job):
    from demod_voice.synthesis import Request

    job_options = dict(job.options)
    speed = job_options.pop("speed", None)
    return Request(text=job.text, voice=job.model, speaker=job.speaker or None, speed=speed, options=job_options,
                   rvc=chain_request(job), words=getattr(job, "captions", None) is not None)


def validate_job(job, cfg) -> dict:
    """The voice resolves, its config is readable, the speaker exists, the options fit: the adapter's checks."""
    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    if job.reference:
        raise InputError("Piper jobs take a voice, not reference audio",
                         hint="drop 'reference', or set engine to xtts")
    plan = options(job_request(job), cfg)
    job.model = str(plan.model_path)
    return {**identity(job_request(job), cfg), **chain_identity(job, cfg)}


def group_key(job) -> tuple:
    return ("piper", job.model)


class Runner(TtsRunner):
    """Runs jobs through the Piper adapter (whose engine cache keeps each voice loaded)."""

    engine = NAME
    remember_failures = False
    request = staticmethod(job_request)


# --- the voice catalog's view (demod_voice.catalog, Wyoming's describe) ----------------------------------------


def voice_entry(onnx: Path, source: str):
    """The catalog row of an installed voice file (None without a readable config beside it)."""
    import logging

    from demod_voice.catalog import VoiceEntry
    from demod_voice.engines.piper.engine import PiperVoiceConfig, config_path_for
    from demod_voice.errors import InputError

    config = config_path_for(onnx)
    if config is None:
        logging.getLogger("demod_voice.catalog").info("skipping %s: no voice config beside it", onnx)
        return None
    try:
        data = PiperVoiceConfig.read(config)
    except InputError as exc:
        logging.getLogger("demod_voice.catalog").info("skipping %s: no readable voice config (%s)", onnx, exc.message)
        return None
    return VoiceEntry(name=onnx.name[: -len(".onnx")], engine="piper", language=data.language, quality=data.quality,
                      sample_rate=data.sample_rate or None, speakers=data.num_speakers, source=source, path=str(onnx))


def speaker_names(path: str) -> list[str] | None:
    """The speakers of a multi-speaker voice file, by name (or index); None for a single-speaker voice."""
    from demod_voice.engines.piper.engine import PiperVoiceConfig, config_path_for
    from demod_voice.errors import InputError

    config = config_path_for(Path(path))
    if config is None:
        return None
    try:
        voice = PiperVoiceConfig.read(config)
    except InputError:
        return None
    if voice.num_speakers <= 1:
        return None
    return list(voice.speaker_id_map) or [str(i) for i in range(voice.num_speakers)]
