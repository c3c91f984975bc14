"""Which engine speaks a request, and what happens when it cannot.

A request names a voice and optionally an engine or a quality tier. The
router resolves the voice (a saved profile of the user, an installed Piper
voice, or an OpenAI voice name mapped through ``server.voice_map``), builds
the engine chain (explicit engine, ``router.tiers[tier]``, or the voice's own
engine followed by Piper), and tries the chain in order. An engine is skipped
-- a *fallback* -- when it is not installed, its model or the voice's
reference is missing, it does not produce its first audio within
``router.timeout_s``, it runs out of memory, or it fails. Every fallback is
an audit event (log line, JSON-lines file, counters). Per-engine statistics
(requests, failures, moving-average latency) feed ``/api/engines`` and
``/metrics``; an engine that failed ``router.breaker_failures`` times in a
row is skipped for ``router.breaker_cooldown_s`` (circuit breaker).

Providers are small adapters: Piper is always there; XTTS and RVC are
imported on use, so they plug in as soon as their modules exist.
"""

from __future__ import annotations

import collections
import importlib
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from demod_voice.audio import Audio
from demod_voice.errors import DemodError, EngineError, InputError, ModelNotFoundError, NotAvailableError, install_hint
from demod_voice.paths import file_identity
from demod_voice.voices import DEFAULT_USER, Profile, VoiceStore, voice_tag

_LOGGER = logging.getLogger(__name__)
_AUDIT = logging.getLogger("demod_voice.audit")

NOT_INSTALLED = "engine not installed"
MODEL_MISSING = "model missing"
REFERENCE_MISSING = "reference missing"
TIMEOUT = "timeout"
OUT_OF_MEMORY = "out of memory"
ENGINE_ERROR = "engine error"
CIRCUIT_OPEN = "circuit open"
TRIGGERS = (NOT_INSTALLED, MODEL_MISSING, REFERENCE_MISSING, TIMEOUT, OUT_OF_MEMORY, ENGINE_ERROR, CIRCUIT_OPEN)

TIERS = ("highest", "high", "medium", "fast")
#: OpenAI's current voice names; each maps to ``piper.default_voice`` unless ``server.voice_map`` says otherwise.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
                 "marin", "cedar")
SYNTH_ENGINES = ("xtts", "piper")

class Fallback(Exception):
    """An engine cannot serve this request; the router tries the next one."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def classify(exc: BaseException) -> str:
    """Map an engine failure onto a fallback trigger."""
    if isinstance(exc, Fallback):
        return exc.reason
    if isinstance(exc, (ImportError, NotAvailableError)):
        return NOT_INSTALLED
    if isinstance(exc, ModelNotFoundError):
        return MODEL_MISSING
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return OUT_OF_MEMORY
    return ENGINE_ERROR


# --- requests and voices --------------------------------------------------------------

@dataclass
class TTSRequest:
    text: str
    voice: str = ""
    user: str = DEFAULT_USER
    engine: str | None = None
    """Force this engine first (``fallback`` decides whether others may follow)."""
    tier: str | None = None
    fallback: bool = True
    speed: float | None = None
    """Speaking rate; None keeps the configured one (1 = the voice's own)."""
    language: str | None = None
    params: dict = field(default_factory=dict)
    """Engine parameters: Piper speaker/noise_scale/noise_w/length_scale/volume/sentence_silence;
    XTTS temperature/top_k/top_p/repetition_penalty/length_penalty."""
    rvc: dict | None = None
    """Optional voice conversion after TTS: {"voice": NAME, "pitch": semitones, ...}."""
    words: bool = False
    """Attach word timings to the chunks (``Audio.words``)."""
    stream: bool = False
    """The engine's own streaming (XTTS ``inference_stream``), as ``xtts-zero-shot --stream``."""


@dataclass
class Voice:
    """A resolved voice: a saved profile or an installed Piper voice."""

    name: str
    kind: str  # "profile" | "piper"
    piper_path: Path | None = None
    profile: Profile | None = None

    @property
    def tag(self) -> str:
        return voice_tag(self.profile.user, self.profile.name) if self.profile else f"piper/{self.name}"


@dataclass
class Candidate:
    engine: str
    version: str
    device: str
    start: Callable[[], Iterator[Audio]]


@dataclass
class Plan:
    request: TTSRequest
    voice: Voice
    candidates: list[Candidate]
    skipped: list[tuple[str, str, str]]

    def cache_parts(self) -> dict:
        r = self.request
        return {"chain": [(c.engine, c.version) for c in self.candidates], "voice": self.voice.tag,
                "reference": self.voice.profile.reference_hash if self.voice.profile else "",
                "speed": r.speed, "language": r.language, "params": r.params, "rvc": r.rvc, "engine_stream": r.stream}


# --- statistics, breaker, audit ---------------------------------------------------------

@dataclass
class EngineStats:
    requests: int = 0
    successes: int = 0
    failures: int = 0
    fallbacks: int = 0
    """Times this engine was skipped or failed and the next one was tried."""
    latency_avg_s: float | None = None
    """Exponential moving average (alpha 0.2) of the time to complete a request."""
    first_chunk_avg_s: float | None = None
    consecutive_failures: int = 0
    open_until: float = 0.0
    last_error: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["circuit"] = "open" if self.open_until > time.time() else "closed"
        return out


def _ema(old: float | None, new: float, alpha: float = 0.2) -> float:
    return new if old is None else (1 - alpha) * old + alpha * new


class AuditLog:
    """Fallback events: a log line, a JSON-lines file, a short in-memory history and counters."""

    def __init__(self, path: Path | None, keep: int = 200):
        self.path = path
        self.recent: collections.deque = collections.deque(maxlen=keep)
        self.counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def record(self, **event: Any) -> None:
        event = {"time": round(time.time(), 3), "event": "fallback", **event}
        _AUDIT.warning("fallback from %s (%s: %s) for voice %s", event.get("engine"), event.get("reason"),
                       event.get("detail"), event.get("voice"))
        with self._lock:
            self.recent.append(event)
            self.counts[(event.get("engine", ""), event.get("reason", ""))] += 1
            if self.path is not None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(event) + "\n")
                except OSError as exc:
                    _LOGGER.warning("cannot write the audit log %s: %s", self.path, exc)


# --- providers -------------------------------------------------------------------------

class PiperProvider:
    name = "piper"

    def __init__(self, cfg, catalog_ttl: float = 10.0):
        self.cfg = cfg
        self._device: str | None = None
        self._ttl = catalog_ttl
        self._entries: tuple[float, list] = (0.0, [])
        self._installed: bool | None = None

    def entries(self) -> list:
        """Installed Piper voices, re-scanned at most every ``catalog_ttl`` seconds (scanning costs ms)."""
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

    def device(self) -> str:
        from demod_voice import devices

        return devices.queue_for(self.cfg.get("device"), engine_uses_gpu=devices.onnx_wants_cuda(self.cfg.get("device")))

    def model_for(self, voice: Voice) -> Path:
        if voice.piper_path is not None:
            return voice.piper_path
        name = (voice.profile.piper_voice if voice.profile else "") or self.cfg.get("piper.default_voice")
        try:
            return self.resolve(name)
        except InputError as exc:
            raise Fallback(MODEL_MISSING, exc.message) from None

    def prepare(self, req: TTSRequest, voice: Voice) -> Candidate:
        if self._installed is None:
            self._installed = importlib.util.find_spec("piper") is not None
        if not self._installed:
            raise Fallback(NOT_INSTALLED, "piper-tts is not installed")
        model = self.model_for(voice)
        if not model.is_file():
            raise Fallback(MODEL_MISSING, f"Piper voice file {model} is missing")
        from demod_voice.adapters import chain
        from demod_voice.adapters import piper as piper_adapter
        from demod_voice.engines.piper import PiperVoiceConfig, check_voice_files

        try:  # a broken voice file is the engine's failure, not the request's
            PiperVoiceConfig.read(check_voice_files(model))
        except InputError as exc:
            raise Fallback(MODEL_MISSING, exc.message) from None
        request = self.request(req, model)
        plan = piper_adapter.options(request, self.cfg)  # a bad option is the request's fault: 400, no breaker

        def start() -> Iterator[Audio]:
            from demod_voice.engines import piper

            try:  # load first: a voice file that does not load is the engine's failure, not the request's
                piper.load(plan.model_path, self.cfg.get("device"), backend=plan.backend,
                           threads=self.cfg.get("piper.onnx_threads"),
                           spinning=self.cfg.get("piper.onnx_spinning"))
            except InputError as exc:
                raise EngineError(f"cannot load Piper voice {model.name}: {exc.message}") from exc
            return chain.finite(piper_adapter.synthesize(request, self.cfg, self.cfg.get("device"), plan=plan), "piper")

        return Candidate(self.name, file_identity(model), self.device(), start)

    @staticmethod
    def request(req: TTSRequest, model: Path):
        """The HTTP request as an engine-layer ``Request`` for the Piper adapter."""
        from demod_voice.adapters import Request
        from demod_voice.config import PIPER_SYNTHESIS_KEYS

        p = req.params
        return Request(text=req.text, voice=str(model), speaker=p.get("speaker"), speed=req.speed,
                       options={k: p[k] for k in PIPER_SYNTHESIS_KEYS if p.get(k) is not None}, words=req.words)


_FOUND: dict[str, bool] = {}


def _has_module(name: str) -> bool:
    """``find_spec`` once per process (installing an engine needs a restart anyway)."""
    if name not in _FOUND:
        _FOUND[name] = importlib.util.find_spec(name) is not None
    return _FOUND[name]


class XttsProvider:
    """Adapter over ``demod_voice.engines.xtts`` (load / conditioning / synthesize)."""

    name = "xtts"
    PARAMS = ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty")

    def __init__(self, cfg):
        self.cfg = cfg

    def module(self):
        try:
            return importlib.import_module("demod_voice.engines.xtts")
        except ImportError as exc:
            raise Fallback(NOT_INSTALLED, f"the XTTS engine cannot be imported ({exc})") from None

    def prepare(self, req: TTSRequest, voice: Voice) -> Candidate:
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
        from demod_voice.adapters import Request, chain
        from demod_voice.adapters import xtts as xtts_adapter
        from demod_voice.config import XTTS_SAMPLING_KEYS

        p = req.params
        request = Request(text=req.text, voice=profile.name, language=req.language or profile.language,
                          speed=req.speed, seed=p.get("seed"), stream=req.stream,
                          options={k: p[k] for k in XTTS_SAMPLING_KEYS if p.get(k) is not None}, words=req.words)
        try:
            plan = xtts_adapter.options(request, self.cfg, profile=profile)  # the same steps as the CLI's --voice
        except ModelNotFoundError as exc:
            raise Fallback(MODEL_MISSING, exc.message) from None
        version = "|".join(file_identity(plan.model_dir / f) for f in ("model.pth", "config.json"))

        def start() -> Iterator[Audio]:
            return chain.finite(xtts_adapter.synthesize(request, self.cfg, self.cfg.get("device"), plan=plan), "xtts")

        from demod_voice import devices

        return Candidate(self.name, version, devices.queue_for(self.cfg.get("device"), engine_uses_gpu=True), start)


class RvcProvider:
    """Adapter over ``demod_voice.engines.rvc`` (load / convert)."""

    name = "rvc"

    def __init__(self, cfg):
        self.cfg = cfg

    def request(self, options: dict):
        """An HTTP ``rvc`` object as a validated ``RvcRequest`` (voice names only: no paths from clients)."""
        from demod_voice.adapters import RvcRequest
        from demod_voice.adapters import rvc as rvc_adapter
        from demod_voice.config import RVC_CONVERSION_KEYS
        from demod_voice.paths import validate_name

        options = dict(options)
        model = options.pop("voice", None) or options.pop("model", None)
        if not model:
            raise InputError("no RVC voice given", hint="pass rvc.voice (an RVC model name or path)")
        validate_name(str(model), "RVC voice name")
        unknown = set(options) - set(RVC_CONVERSION_KEYS)
        if unknown:
            raise InputError(f"unknown rvc option(s) {', '.join(sorted(unknown))}",
                             hint="known: voice, " + ", ".join(RVC_CONVERSION_KEYS))
        request = RvcRequest(voice=str(model), options={k: v for k, v in options.items() if v is not None})
        rvc_adapter.options(request, self.cfg)  # range errors now, before any engine runs
        return request

    def convert(self, audio: Audio, request) -> Audio:
        from demod_voice.adapters import rvc as rvc_adapter

        try:
            return rvc_adapter.convert(audio, request, self.cfg, self.cfg.get("device"))
        except ImportError as exc:
            raise NotAvailableError(f"the RVC engine is not installed ({exc})",
                                    hint=install_hint("rvc")) from None


# --- the router -------------------------------------------------------------------------

class Router:
    def __init__(self, cfg, audit_path: Path | None = None):
        self.cfg = cfg
        self.providers = {"piper": PiperProvider(cfg), "xtts": XttsProvider(cfg)}
        self.rvc = RvcProvider(cfg)
        self.stats: dict[str, EngineStats] = {name: EngineStats() for name in [*self.providers, "rvc"]}
        path = audit_path or cfg.get("router.audit_log") or (cfg.data_dir / "logs" / "audit.jsonl")
        self.audit = AuditLog(Path(path))
        self._lock = threading.Lock()
        self._stores: dict[str, VoiceStore] = {}

    # -- voices --
    def store(self, user: str) -> VoiceStore:
        """The user's voice store (kept per user: building one resolves paths)."""
        from demod_voice.voices import store_for

        store = self._stores.get(user)
        if store is None:
            store = self._stores[user] = store_for(self.cfg, user)
        return store

    def voice_map(self) -> dict[str, str]:
        mapping = {name: self.cfg.get("piper.default_voice") for name in OPENAI_VOICES}
        mapping.update({str(k): str(v) for k, v in (self.cfg.get("server.voice_map") or {}).items()})
        return mapping

    def resolve_voice(self, name: str, user: str) -> Voice:
        from demod_voice import catalog

        name = (name or "").strip() or self.cfg.get("piper.default_voice")
        mapped = self.voice_map().get(name, name)
        store = self.store(user)
        for candidate in dict.fromkeys([name, mapped]):
            if not catalog.looks_like_path(candidate) and store.exists(candidate):
                return Voice(candidate, "profile", profile=store.get(candidate))
        for entry in self.providers["piper"].entries():
            if entry.name == mapped:
                return Voice(entry.name, "piper", piper_path=Path(entry.path))
        raise ModelNotFoundError(f"unknown voice '{name}'", hint="list voices with GET /v1/audio/voices or "
                                                                 "'demod-voice voices list'",
                                 param="voice", code="voice_not_found")

    def voices(self, user: str) -> list[dict]:
        out = [{"id": p.name, "name": p.name, "engine": p.engine, "language": p.language, "source": "profile",
                "reference": bool(p.reference)} for p in self.store(user).list()]
        out += [{"id": v.name, "name": v.name, "engine": "piper", "language": v.language, "source": v.source}
                for v in self.providers["piper"].entries()]
        out += [{"id": k, "name": k, "engine": "alias", "maps_to": v, "source": "voice_map"}
                for k, v in self.voice_map().items()]
        return out

    # -- chains --
    def chain_for(self, req: TTSRequest, voice: Voice) -> list[str]:
        tiers = self.cfg.get("router.tiers") or {}
        own = [voice.profile.engine, "piper"] if voice.profile else ["piper"]
        if req.engine:
            if req.engine not in self.providers:
                raise InputError(f"unknown engine '{req.engine}'", hint="choose " + ", ".join(self.providers))
            chain = [req.engine, *own]
        elif req.tier:
            if req.tier not in tiers:
                raise InputError(f"unknown quality tier '{req.tier}'", hint="choose " + ", ".join(tiers))
            chain = list(tiers[req.tier])
        else:
            chain = own
        chain = list(dict.fromkeys(chain))
        unknown = [e for e in chain if e not in self.providers]
        if unknown:
            raise InputError(f"engine chain names unknown engine(s) {', '.join(unknown)}",
                             hint="fix router.tiers in the config")
        return chain if req.fallback else chain[:1]

    def plan(self, req: TTSRequest) -> Plan:
        """Resolve the voice and the chain; drop engines that cannot serve it at all (audited)."""
        voice = self.resolve_voice(req.voice, req.user)
        candidates, skipped = [], []
        for name in self.chain_for(req, voice):
            stats = self.stats[name]
            if stats.open_until > time.time():
                skipped.append((name, CIRCUIT_OPEN, f"{stats.consecutive_failures} failures in a row"))
                continue
            try:
                candidates.append(self.providers[name].prepare(req, voice))
            except Fallback as exc:
                skipped.append((name, exc.reason, exc.detail))
        plan = Plan(req, voice, candidates, skipped)
        for name, reason, detail in skipped:
            self._fallback(plan, name, reason, detail)
        if not candidates:
            reasons = "; ".join(f"{n}: {r} ({d})" for n, r, d in skipped)
            if not req.fallback and skipped and skipped[0][1] in (NOT_INSTALLED,):
                raise NotAvailableError(f"engine {skipped[0][0]} cannot serve this request: {reasons}",
                                        hint="allow fallback, or install the engine")
            raise EngineError(f"no engine can speak voice '{voice.name}': {reasons}",
                              hint="install the missing engine or model, or choose another voice")
        return plan

    def _fallback(self, plan: Plan, engine: str, reason: str, detail: str) -> None:
        with self._lock:
            self.stats[engine].fallbacks += 1
        self.audit.record(engine=engine, reason=reason, detail=detail[:300], voice=plan.voice.name,
                          user=plan.request.user)

    def _failure(self, engine: str, exc: BaseException) -> None:
        with self._lock:
            stats = self.stats[engine]
            stats.failures += 1
            stats.consecutive_failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if stats.consecutive_failures >= self.cfg.get("router.breaker_failures"):
                stats.open_until = time.time() + self.cfg.get("router.breaker_cooldown_s")
                _LOGGER.warning("engine %s failed %d times in a row; skipping it for %.0f s", engine,
                                stats.consecutive_failures, self.cfg.get("router.breaker_cooldown_s"))

    def _success(self, engine: str, first: float, total: float) -> None:
        with self._lock:
            stats = self.stats[engine]
            stats.successes += 1
            stats.consecutive_failures = 0
            stats.open_until = 0.0
            stats.latency_avg_s = _ema(stats.latency_avg_s, total)
            stats.first_chunk_avg_s = _ema(stats.first_chunk_avg_s, first)

    def attempt(self, cand: Candidate) -> Iterator[Audio]:
        """Start one candidate in the calling thread and return its chunks once the first is ready.

        The caller's thread is the engine's device queue (server) or the command itself, so the engine
        never runs behind anyone's back. An engine fault is recorded and raised as ``Fallback``; an
        ``InputError`` is the request's fault and passes through (it never counts against the breaker).
        """
        with self._lock:
            self.stats[cand.engine].requests += 1
        started = time.perf_counter()
        try:
            iterator = iter(cand.start())
            first = next(iterator, None)
        except ModelNotFoundError as exc:
            self._failure(cand.engine, exc)
            raise Fallback(MODEL_MISSING, exc.message) from exc
        except InputError:
            raise  # the request itself is bad: another engine would not help
        except (Exception, MemoryError) as exc:  # any engine failure is a fallback trigger; recorded, not hidden
            self._failure(cand.engine, exc)
            raise Fallback(classify(exc), str(exc)) from exc
        if first is None:
            raise InputError("the text produced no speech", hint="give words, not only punctuation")
        return self._watch(cand.engine, started, iterator, first)

    def timed_out(self, cand: Candidate, seconds: float) -> Fallback:
        """Record that ``cand`` gave no audio within ``seconds`` (the server abandons it at its next chunk)."""
        error = TimeoutError(f"no audio after {seconds:.0f} s")
        self._failure(cand.engine, error)
        return Fallback(TIMEOUT, str(error))

    def fell_back(self, plan: Plan, index: int, fallback: Fallback) -> None:
        """Audit a failed candidate: a fallback when another one follows, else a log line."""
        cand = plan.candidates[index]
        if index + 1 < len(plan.candidates):
            self._fallback(plan, cand.engine, fallback.reason, fallback.detail)
        else:
            _LOGGER.warning("engine %s failed: %s", cand.engine, fallback.detail)

    def all_failed(self, plan: Plan, failures: list[tuple[str, Fallback]]) -> DemodError:
        """The error for a request no candidate could serve (the engine's own when there was only one)."""
        if len(failures) == 1 and not plan.skipped and isinstance(failures[0][1].__cause__, DemodError):
            return failures[0][1].__cause__
        return EngineError("every engine failed: " + "; ".join(f"{e}: {f.reason} ({f.detail})" for e, f in failures),
                           hint="see GET /api/engines for details")

    def run(self, plan: Plan) -> tuple[str, Iterator[Audio]]:
        """(engine name, chunk iterator), trying candidates in order in this thread (no timeout here).

        Once audio has started flowing the engine is committed: a later failure ends the stream with an
        error (it cannot be spliced with another voice). The server runs the same steps on its device
        queues, with the first-chunk timeout (``Service``).
        """
        failures: list[tuple[str, Fallback]] = []
        for index, cand in enumerate(plan.candidates):
            try:
                return cand.engine, self.attempt(cand)
            except Fallback as exc:
                failures.append((cand.engine, exc))
                self.fell_back(plan, index, exc)
        raise self.all_failed(plan, failures)

    def _watch(self, engine: str, started: float, iterator: Iterator[Audio], first: Audio) -> Iterator[Audio]:
        first_at = time.perf_counter() - started
        try:
            yield first
            yield from iterator
        except (GeneratorExit, InputError):
            raise  # stopped by the caller, or the request's own fault: not the engine's
        except BaseException as exc:
            self._failure(engine, exc)
            raise
        self._success(engine, first_at, time.perf_counter() - started)

    def convert(self, audio: Audio, request) -> Audio:
        """RVC conversion (an ``RvcRequest`` from ``self.rvc.request``) with statistics."""
        started = time.perf_counter()
        with self._lock:
            self.stats["rvc"].requests += 1
        try:
            out = self.rvc.convert(audio, request)
        except InputError:
            raise
        except (Exception, MemoryError) as exc:
            self._failure("rvc", exc)
            raise
        self._success("rvc", time.perf_counter() - started, time.perf_counter() - started)
        return out

    def rvc_available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("demod_voice.engines.rvc") is None:
            return False, NOT_INSTALLED
        return True, ""

    def engines(self) -> dict:
        """Status and statistics per engine (``GET /api/engines``)."""
        out = {}
        for name in [*self.providers, "rvc"]:
            module = f"demod_voice.engines.{name}"
            installed = importlib.util.find_spec(module) is not None
            status = {"installed": installed, **self.stats[name].to_dict()}
            if name == "xtts" and installed:
                try:
                    status["model_dir"] = str(self.providers["xtts"].module().resolve_model_dir(self.cfg))
                    status["model"] = "present"
                except (Fallback, ModelNotFoundError) as exc:
                    status["model"] = f"missing: {getattr(exc, 'message', exc)}"
            out[name] = status
        return out


def synthesize(router: Router, req: TTSRequest) -> tuple[str, Audio]:
    """Run a request to completion (CLI helper): (engine, joined audio)."""
    from demod_voice.adapters import chain
    from demod_voice.audio import concat

    rvc = router.rvc.request(req.rvc) if req.rvc else None
    engine, chunks = router.run(router.plan(req))
    if rvc is not None:
        chunks = chain.finite(chain.converted(chunks, lambda chunk: router.convert(chunk, rvc)), "rvc")
    return engine, concat(list(chunks))
