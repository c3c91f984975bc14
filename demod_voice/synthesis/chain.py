"""TTS -> RVC, defined once for every front end.

The speech is converted **sentence by sentence**, as each sentence is synthesised, in the CLI, in batch
jobs and in the server alike (streaming or not), so one request gives the same audio everywhere.

Why per sentence rather than the whole utterance: RVC works frame by frame (HuBERT features every 20 ms,
pitch every 10 ms, with reflected padding at the edges), and TTS sentences start and end in silence, so
converting them one at a time sounds the same as converting their concatenation. Per sentence the first
converted audio arrives one sentence after the request instead of after the whole text, and memory stays
bounded by the longest sentence rather than growing with the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from demod_voice.audio import Audio
from demod_voice.captions import carry


def run(engine: str, request, cfg, device: str | None = None, plan=None,
        converter: Callable[[Audio], Audio] | None = None) -> Iterator[Audio]:
    """Chunks of ``engine`` for ``request``, converted with ``request.rvc`` when given.

    Everything checkable is checked before the first sentence is synthesised. ``converter`` lets the
    server wrap the conversion with its statistics; by default it is the registry's converter (RVC).
    """
    from demod_voice.synthesis import registry
    from demod_voice.synthesis.manager import MODELS

    MODELS.configure(cfg)  # engines.max_loaded, for the CLI and batch as for the server
    rvc_adapter = registry.converter()
    tts = registry.get(engine, cfg)
    plan = plan if plan is not None else tts.options(request, cfg)
    chunks = finite(tts.synthesize(request, cfg, device, plan=plan), engine)
    if request.rvc is None:
        return chunks
    values = rvc_adapter.options(request.rvc, cfg)
    if converter is None:
        def converter(chunk: Audio) -> Audio:
            return rvc_adapter.convert(chunk, request.rvc, cfg, device, values)
    return finite(converted(chunks, converter), "rvc")


def finite(chunks: Iterator[Audio], engine: str) -> Iterator[Audio]:
    """Refuse audio with NaN or infinite samples (an engine fault): it must never be written or cached."""
    import numpy as np

    from demod_voice.errors import EngineError

    for chunk in chunks:
        if not np.isfinite(chunk.samples).all():
            raise EngineError(f"{engine} produced non-finite audio samples",
                              hint="check the engine's options and model; nothing was written")
        yield chunk


def converted(chunks: Iterator[Audio], converter: Callable[[Audio], Audio]) -> Iterator[Audio]:
    """Each chunk (sentence) through ``converter`` as it arrives: the one TTS -> RVC rule."""
    try:
        for chunk in chunks:
            yield carry(chunk, converter(chunk))  # conversion keeps the time axis: word timings hold
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
