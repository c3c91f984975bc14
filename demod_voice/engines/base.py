"""The two engine contracts every caller (CLI, batch, server) relies on.

* A ``Synthesizer`` turns text into audio, yielding one ``Audio`` chunk per
  sentence so streaming falls out of the design.
* A ``Converter`` turns audio into audio (voice conversion).

Engines are loaded once per process and reused; they keep no per-request state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from demod_voice.audio import Audio


@runtime_checkable
class Synthesizer(Protocol):
    """Text -> audio chunks."""

    name: str
    sample_rate: int

    def synthesize(self, text: str, **options: Any) -> Iterator[Audio]:
        """Yield one chunk per sentence, as soon as each is ready."""
        ...


@runtime_checkable
class Converter(Protocol):
    """Audio -> audio."""

    name: str

    def convert(self, audio: Audio, **options: Any) -> Audio:
        ...


def synthesize_all(engine: Synthesizer, text: str, silence: float = 0.0, **options: Any) -> Audio:
    """Run a synthesizer to completion and join its chunks."""
    from demod_voice.audio import concat

    chunks = list(engine.synthesize(text, **options))
    return concat(chunks, silence=silence)
