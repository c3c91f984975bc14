"""Which engine speaks a request, and what happens when it cannot: policy only.

A request names a voice and optionally an engine or a quality tier. The
router resolves the voice (a saved profile of the user, a voice an engine's
catalog lists such as an installed Piper voice, or an OpenAI voice name mapped
through ``server.voice_map``), builds the engine chain (explicit engine,
``router.tiers[tier]``, or the voice's own engine followed by the default
catalog engine), and tries the chain in order. An engine is skipped -- a
*fallback* -- when it is not installed, its model or the voice's reference is
missing, it does not produce its first audio within ``router.timeout_s``, it
runs out of memory, or it fails. Every fallback is an audit event
(``server.audit``). Per-engine statistics (``server.stats``) feed
``/api/engines`` and ``/metrics``; an engine that failed
``router.breaker_failures`` times in a row is skipped for
``router.breaker_cooldown_s`` (circuit breaker).

The engines themselves come from the one registry (``demod_voice.synthesis.registry``):
each registers a ``Provider`` that turns a request and a voice into a ``Candidate``.
The request types live in ``server.requests``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from demod_voice.audio import Audio
from demod_voice.errors import DemodError, EngineError, InputError, ModelNotFoundError, NotAvailableError
from demod_voice.server.audit import AuditLog
from demod_voice.server.stats import EngineStats, ema
from demod_voice.server.voice_identity import OTHER_VOICE, keep_identity, voice_unavailable
from demod_voice.synthesis import registry
from demod_voice.synthesis.manager import MODELS
from demod_voice.synthesis.requests import (  # noqa: F401 (re-exported: the names front ends import from here)
    CIRCUIT_OPEN,
    ENGINE_ERROR,
    MODEL_MISSING,
    NOT_INSTALLED,
    OPENAI_VOICES,
    OUT_OF_MEMORY,
    REFERENCE_MISSING,
    TIERS,
    TIMEOUT,
    TRIGGERS,
    Candidate,
    Fallback,
    Route,
    TTSRequest,
    Voice,
    classify,
)
from demod_voice.voices import VoiceStore

_LOGGER = logging.getLogger(__name__)


# --- the router -------------------------------------------------------------------------

class Router:
    def __init__(self, cfg, audit_path: Path | None = None):
        self.cfg = cfg
        self.providers = registry.providers(cfg)
        """TTS engines by name, from the registry (built-in and ``router.remotes``)."""
        converter = registry.converter()
        self.rvc = converter.Provider(cfg, converter.NAME)
        """The conversion engine chained after TTS (``request.rvc``)."""
        self.stats: dict[str, EngineStats] = {name: EngineStats() for name in [*self.providers, self.rvc.name]}
        """Counters per engine; their breaker fields are the HTTP (and CLI) origin's circuit."""
        self._circuits: dict[tuple[str, str], EngineStats] = {}
        """The breakers of other origins (Wyoming), keyed by (engine, origin)."""
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

    def catalogs(self) -> list:
        """Providers that list installed voices of their own (Piper), in registry order."""
        return [p for p in self.providers.values() if hasattr(p, "entries")]

    def default_engine(self) -> str:
        """The engine every chain ends with: the first one with a voice catalog (it needs no reference)."""
        return self.catalogs()[0].name

    def default_voice(self) -> str:
        return self.catalogs()[0].default_voice()

    def catalog_entries(self) -> list:
        """Installed catalog voices of every engine (``catalog.VoiceEntry``), e.g. for Wyoming's info."""
        return [entry for provider in self.catalogs() for entry in provider.entries()]

    def resolve_catalog(self, name: str) -> Path:
        """A catalog voice name or path -> its file (the default catalog engine's resolver)."""
        return self.catalogs()[0].resolve(name)

    def voice_map(self) -> dict[str, str]:
        mapping = {name: self.default_voice() for name in OPENAI_VOICES}
        mapping.update({str(k): str(v) for k, v in (self.cfg.get("server.voice_map") or {}).items()})
        return mapping

    def resolve_voice(self, name: str, user: str) -> Voice:
        from demod_voice import catalog

        name = (name or "").strip() or self.default_voice()
        mapped = self.voice_map().get(name, name)
        store = self.store(user)
        for candidate in dict.fromkeys([name, mapped]):
            if not catalog.looks_like_path(candidate) and store.exists(candidate):
                return Voice(candidate, "profile", profile=store.get(candidate))
        trained = self._trained(mapped, user)
        if trained is not None:
            return trained
        for provider in self.catalogs():
            for entry in provider.entries():
                if entry.name == mapped:
                    return Voice(entry.name, "catalog", path=Path(entry.path), engine=provider.name)
        raise ModelNotFoundError(f"unknown voice '{name}'", hint="list voices with GET /v1/audio/voices or "
                                                                 "'demod-voice voices list'",
                                 param="voice", code="voice_not_found")

    def _trained(self, name: str, user: str) -> Voice | None:
        """The user's own trained voice ``name`` (training.store): only its user finds it."""
        from demod_voice.training import store

        path = store.find(self.cfg, user, name)
        return Voice(name, "trained", path=path, engine="piper") if path is not None else None

    def voices(self, user: str) -> list[dict]:
        out = [{"id": p.name, "name": p.name, "engine": p.engine, "language": p.language, "source": "profile",
                "reference": bool(p.reference)} for p in self.store(user).list()]
        out += [{"id": v.name, "name": v.name, "engine": provider.name, "language": v.language, "source": v.source}
                for provider in self.catalogs() for v in provider.entries()]
        from demod_voice.voices import DEFAULT_USER

        if user != DEFAULT_USER:  # the local user's trained voices are in the catalog already
            from demod_voice.training import store

            out += [{"id": v.name, "name": v.name, "engine": "piper", "language": v.language, "source": "trained"}
                    for v in store.entries(self.cfg, user)]
        out += [{"id": k, "name": k, "engine": "alias", "maps_to": v, "source": "voice_map"}
                for k, v in self.voice_map().items()]
        return out

    # -- chains --
    def chain_for(self, req: TTSRequest, voice: Voice) -> list[str]:
        tiers = self.cfg.get("router.tiers") or {}
        own = [voice.profile.engine if voice.profile else voice.engine, self.default_engine()]
        if req.engine:
            if req.engine not in self.providers:
                raise InputError(f"unknown engine '{req.engine}'", hint="choose " + ", ".join(self.providers),
                                 param="engine", code="invalid_value")
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

    def plan(self, req: TTSRequest) -> Route:
        """Resolve the voice and the chain; drop engines that cannot serve it at all (audited)."""
        voice = self.resolve_voice(req.voice, req.user)
        candidates, skipped = [], []
        for name in self.chain_for(req, voice):
            circuit = self._circuit(name, req.origin)
            if circuit.open_until > time.time():
                skipped.append((name, CIRCUIT_OPEN, f"{circuit.consecutive_failures} failures in a row"))
                continue
            try:
                candidate = self.providers[name].prepare(req, voice)
                candidate.origin = req.origin
                candidates.append(candidate)
            except Fallback as exc:
                skipped.append((name, exc.reason, exc.detail))
        candidates = keep_identity(self, req, voice, candidates, skipped)
        plan = Route(req, voice, candidates, skipped)
        for name, reason, detail in skipped:
            self._fallback(plan, name, reason, detail)
        if not candidates:
            reasons = "; ".join(f"{n}: {r} ({d})" for n, r, d in skipped)
            if any(r == OTHER_VOICE for _, r, _ in skipped):
                raise voice_unavailable(voice, skipped)
            if not req.fallback and skipped and skipped[0][1] in (NOT_INSTALLED,):
                raise NotAvailableError(f"engine {skipped[0][0]} cannot serve this request: {reasons}",
                                        hint="allow fallback, or install the engine")
            raise EngineError(f"no engine can speak voice '{voice.name}': {reasons}",
                              hint="install the missing engine or model, or choose another voice")
        return plan

    def _fallback(self, plan: Route, engine: str, reason: str, detail: str, internal: str | None = None) -> None:
        with self._lock:
            self.stats[engine].fallbacks += 1
        extra = {"internal": internal[:500]} if internal else {}
        self.audit.record(engine=engine, reason=reason, detail=detail[:300], voice=plan.voice.name,
                          user=plan.request.user, **extra)

    def _circuit(self, engine: str, origin: str) -> EngineStats:
        """The breaker state of ``engine`` for requests from ``origin``."""
        if origin == "http":
            return self.stats[engine]
        with self._lock:
            return self._circuits.setdefault((engine, origin), EngineStats())

    def _failure(self, engine: str, exc: BaseException, origin: str = "http") -> None:
        circuit = self._circuit(engine, origin)
        with self._lock:
            stats = self.stats[engine]
            stats.failures += 1
            internal = _internal(exc)
            stats.last_error = (f"{type(exc).__name__}: {exc}" + (f" [{internal}]" if internal else ""))[:500]
            circuit.consecutive_failures += 1
            if circuit.consecutive_failures >= self.cfg.get("router.breaker_failures"):
                circuit.open_until = time.time() + self.cfg.get("router.breaker_cooldown_s")
                _LOGGER.warning("engine %s failed %d times in a row (%s requests); skipping it for %.0f s", engine,
                                circuit.consecutive_failures, origin, self.cfg.get("router.breaker_cooldown_s"))

    def _success(self, engine: str, first: float, total: float, origin: str = "http") -> None:
        circuit = self._circuit(engine, origin)
        with self._lock:
            stats = self.stats[engine]
            stats.successes += 1
            circuit.consecutive_failures = 0
            circuit.open_until = 0.0
            stats.latency_avg_s = ema(stats.latency_avg_s, total)
            stats.first_chunk_avg_s = ema(stats.first_chunk_avg_s, first)

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
            self._failure(cand.engine, exc, cand.origin)
            raise Fallback(MODEL_MISSING, exc.message) from exc
        except InputError:
            raise  # the request itself is bad: another engine would not help
        except (Exception, MemoryError) as exc:  # any engine failure is a fallback trigger; recorded, not hidden
            self._failure(cand.engine, exc, cand.origin)
            raise Fallback(classify(exc), str(exc)) from exc
        if first is None:
            raise InputError("the text produced no speech", hint="give words, not only punctuation")
        return self._watch(cand.engine, started, iterator, first, cand.origin)

    def timed_out(self, cand: Candidate, seconds: float) -> Fallback:
        """Record that ``cand`` gave no audio within ``seconds`` (the server abandons it at its next chunk)."""
        error = TimeoutError(f"no audio after {seconds:.0f} s")
        self._failure(cand.engine, error, cand.origin)
        return Fallback(TIMEOUT, str(error))

    def fell_back(self, plan: Route, index: int, fallback: Fallback) -> None:
        """Audit a failed candidate: a fallback when another one follows, else a log line."""
        cand = plan.candidates[index]
        internal = _internal(fallback)
        if index + 1 < len(plan.candidates):
            self._fallback(plan, cand.engine, fallback.reason, fallback.detail, internal)
        else:
            _LOGGER.warning("engine %s failed: %s", cand.engine, fallback.detail)
            if internal:  # the other server's own words: for the audit log (and admins), never the client
                self.audit.record(event="upstream", engine=cand.engine, reason=fallback.reason,
                                  detail=fallback.detail[:300], internal=internal[:500], voice=plan.voice.name,
                                  user=plan.request.user)

    def all_failed(self, plan: Route, failures: list[tuple[str, Fallback]]) -> DemodError:
        """The error for a request no candidate could serve (the engine's own when there was only one)."""
        if len(failures) == 1 and not plan.skipped and isinstance(failures[0][1].__cause__, DemodError):
            return failures[0][1].__cause__
        return EngineError("every engine failed: " + "; ".join(f"{e}: {f.reason} ({f.detail})" for e, f in failures),
                           hint="see GET /api/engines for details")

    def run(self, plan: Route) -> tuple[str, Iterator[Audio]]:
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

    def _watch(self, engine: str, started: float, iterator: Iterator[Audio], first: Audio,
               origin: str = "http") -> Iterator[Audio]:
        first_at = time.perf_counter() - started
        try:
            yield first
            yield from iterator
        except (GeneratorExit, InputError):
            raise  # stopped by the caller, or the request's own fault: not the engine's
        except BaseException as exc:
            self._failure(engine, exc, origin)
            raise
        self._success(engine, first_at, time.perf_counter() - started, origin)

    def convert(self, audio: Audio, request) -> Audio:
        """RVC conversion (an ``RvcRequest`` from ``self.rvc.request``) with statistics."""
        started = time.perf_counter()
        with self._lock:
            self.stats[self.rvc.name].requests += 1
        try:
            out = self.rvc.convert(audio, request)
        except InputError:
            raise
        except (Exception, MemoryError) as exc:
            self._failure(self.rvc.name, exc)
            raise
        self._success(self.rvc.name, time.perf_counter() - started, time.perf_counter() - started)
        return out

    def rvc_available(self) -> tuple[bool, str]:
        converter = registry.converter()
        ok, _ = converter.available(self.cfg)
        if ok:
            return True, ""
        return False, NOT_INSTALLED if not converter.available(None)[0] else MODEL_MISSING

    def engines(self) -> dict:
        """Status and statistics per engine (``GET /api/engines``): the provider's status, then the counters."""
        out = {}
        for name, provider in [*self.providers.items(), (self.rvc.name, self.rvc)]:
            status = dict(provider.status())
            extra = {k: v for k, v in status.items() if k not in ("installed", "available")}
            installed = status.get("installed", False)
            out[name] = {"installed": installed, "available": bool(status.get("available", installed)),
                         **self.stats[name].to_dict(), **extra, "loaded": MODELS.status(name)}
        return out


def _internal(exc: BaseException | None) -> str | None:
    """What another server said or where it is (``UpstreamError.internal``), from ``exc`` or its cause."""
    while exc is not None:
        if getattr(exc, "internal", None):
            return str(exc.internal)
        exc = exc.__cause__
    return None


def synthesize(router: Router, req: TTSRequest) -> tuple[str, Audio]:
    """Run a request to completion (CLI helper): (engine, joined audio)."""
    from demod_voice.audio import concat
    from demod_voice.synthesis import chain

    rvc = router.rvc.request(req.rvc) if req.rvc else None
    engine, chunks = router.run(router.plan(req))
    if rvc is not None:
        chunks = chain.finite(chain.converted(chunks, lambda chunk: router.convert(chunk, rvc)), router.rvc.name)
    return engine, concat(list(chunks))
