"""The engine contract voice conversion relies on.

Text -> speech has no engine-level protocol: each engine's own options differ (Piper takes a
``PiperOptions``, XTTS needs a language and conditioning latents), and the one contract every caller
uses is the adapter's (``demod_voice.synthesis``: ``options(request, cfg)`` then
``synthesize(request, cfg, device)``, one float32 ``Audio`` chunk per sentence).

A ``Converter`` turns audio into audio (voice conversion); the TTS -> RVC chain
(``synthesis/chain.py``) needs nothing more from it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from demod_voice.audio import Audio


@runtime_checkable
class Converter(Protocol):
    """Audio -> audio."""

    name: str

    def convert(self, audio: Audio, **options: Any) -> Audio:
        ...
