"""What the router passes around: a request, its resolved voice, the engine candidates, a fallback.

Plain data with no policy, shared by the router (policy), the engines' providers (which build
``Candidate``s) and the front ends (HTTP, Wyoming, CLI) that build ``TTSRequest``s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from demod_voice.audio import Audio
from demod_voice.errors import ModelNotFoundError, NotAvailableError
from demod_voice.paths import DEFAULT_USER

if TYPE_CHECKING:
    from demod_voice.voices import Profile

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
    continued: bool = False
    """The text goes on an answer already begun (a streamed Wyoming flush after the first): sentence_silence
    comes before its first sentence too, so a streamed answer equals the one-shot one."""
    allow_other_voice: bool | None = None
    """May another speaker answer when the voice's own engine cannot? None: ``router.allow_other_voice``."""
    origin: str = "http"
    """The front end the request came through. Each origin has circuit breakers of its own, so clients that
    need no key (Wyoming) cannot open a circuit for the authenticated HTTP users."""


@dataclass
class Voice:
    """A resolved voice: a saved profile, or a voice an engine's catalog lists (an installed Piper voice)."""

    name: str
    kind: str  # "profile" | "catalog"
    path: Path | None = None
    """The catalog voice's file."""
    profile: Profile | None = None
    engine: str = ""
    """The engine whose catalog lists the voice (empty for a profile)."""

    @property
    def tag(self) -> str:
        return self.profile.tag if self.profile else f"{self.engine}/{self.name}"


@dataclass
class Candidate:
    engine: str
    version: str
    device: str
    start: Callable[[], Iterator[Audio]]
    origin: str = "http"
    """The request's front end (``TTSRequest.origin``): whose circuit breaker a failure counts against."""
    speaker: str = ""
    """Set when this engine would answer in another voice than the one asked for: the voice it speaks in."""
    request: Any = None
    """The engine-layer ``Request`` this candidate speaks, and the plan its plugin validated from it: what the
    one audio-cache key is made of (``synthesis.keys``), the same as from the CLI and batch."""
    plan: Any = None


@dataclass
class Route:
    """A request, its voice and the engines to try in order (what the router decided; ``Router.plan``)."""

    request: TTSRequest
    voice: Voice
    candidates: list[Candidate]
    skipped: list[tuple[str, str, str]]

    def cache_parts(self) -> dict:
        """The key parts of a candidate whose provider gives no request and plan (``synthesis.keys.route_key``)."""
        r = self.request
        return {"chain": [(c.engine, c.version) for c in self.candidates], "voice": self.voice.tag,
                "reference": self.voice.profile.reference_hash if self.voice.profile else "",
                "speed": r.speed, "language": r.language, "params": r.params, "rvc": r.rvc, "engine_stream": r.stream,
                **({"continued": True} if r.continued else {})}
