"""One request, one result: the layer every front end (CLI, batch, HTTP, Wyoming) goes through.

A front end only *parses* its input into a ``Request``. The engine's adapter turns the request
plus the configuration into validated options (names, defaults and finite ranges come from the
one schema in ``demod_voice.config``) and runs the engine from its per-process cache, yielding
one float32 ``Audio`` chunk per sentence. A chained voice conversion (``Request.rvc``) is applied
by ``chain.run`` in exactly one way, so the same request gives the same bytes everywhere.

Adapters import their engine only when they run, so parsing and validation never load torch.

    adapter = adapters.get("piper")
    options = adapter.options(request, cfg)            # cheap, raises InputError on bad input
    for chunk in adapters.synthesize(request, cfg, device):  # TTS (+ RVC) sentence by sentence
        ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demod_voice.synthesis.registry import ADAPTERS, ENGINES, get  # noqa: F401 (the public table)


@dataclass
class RvcRequest:
    """A voice conversion: the RVC voice (registered name or ``.pth``) and its option overrides."""

    voice: str
    options: dict[str, Any] = field(default_factory=dict)
    """``rvc.*`` schema names (pitch, f0_method, index_rate, ...) -> raw values; unset ones come from config."""
    index: str | None = None
    """A faiss index other than the voice's own."""


@dataclass
class Request:
    """What to say and how, independent of where the request came from."""

    text: str = ""
    voice: str = ""
    """Piper: a voice name or ``.onnx`` path; XTTS: a saved voice name (instead of ``references``)."""
    references: list[Path] = field(default_factory=list)
    """XTTS reference audio files or folders."""
    language: str | None = None
    speaker: str | int | None = None
    """Piper multi-speaker voices: a speaker name or index."""
    speed: float | None = None
    """Speaking rate (1 = the voice's own); Piper divides its length scale by it, XTTS passes it on."""
    seed: int | None = None
    """XTTS: random seed for repeatable output (default: config ``xtts.seed``)."""
    split_sentences: bool = True
    """XTTS: synthesise sentence by sentence (off: the whole text in one piece, if it fits)."""
    stream: bool = False
    """XTTS: yield sub-sentence chunks as they are generated (lower latency, different audio)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Engine option overrides by schema name (``piper.*`` or ``xtts.*`` keys without the section)."""
    model: str | None = None
    """XTTS: checkpoint folder instead of config ``xtts.model_dir``."""
    backend: str | None = None
    """Piper: ``onnxruntime`` or ``tinygrad`` instead of config ``piper.backend``."""
    rvc: RvcRequest | None = None
    """Convert the speech with this RVC voice afterwards."""
    words: bool = False
    """Attach word timings to the chunks (``Audio.words``): Piper's alignments, Whisper for XTTS."""
    continued: bool = False
    """Piper: the text continues an answer already begun, so its first sentence gets sentence_silence too."""


def synthesize(engine: str, request: Request, cfg, device: str | None = None, plan: Any = None):
    """TTS with ``engine`` and, when the request asks for it, RVC after it: chunks per sentence.

    ``plan`` is what ``get(engine).options(request, cfg)`` returned, when the caller validated already.
    """
    from demod_voice.synthesis import chain

    return chain.run(engine, request, cfg, device, plan=plan)
