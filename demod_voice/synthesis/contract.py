"""The engine contract, as types: what ``synthesis.registry`` expects of an engine's ``plugin.py`` and what
``synthesis.manager`` expects of a loaded model.

``EnginePlugin`` is what every front end relies on (the CLI, batch, the router, Wyoming, ``health``): the
registry imports ``demod_voice.engines.<name>.plugin`` by name, and nothing else of the engine.
``tests/core/test_layout.py`` checks that every registered plugin has these attributes.

A loaded model (``Model``) is whatever the engine's ``load()`` hands to ``MODELS.get``: the manager only
needs to drop it, so ``unload()`` (free what is not freed by dropping the reference, e.g. stop a thread)
and ``nbytes`` (reported size) are optional.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from demod_voice.audio import Audio


@runtime_checkable
class EnginePlugin(Protocol):
    """One engine as the rest of the program sees it (a module; see ``synthesis/registry.py``)."""

    NAME: str
    KIND: str  # "tts" | "convert"
    SECTION: str
    OPTION_KEYS: tuple
    MODELS: tuple
    COMMANDS: tuple

    def available(self, cfg=None) -> tuple[bool, str]:
        ...

    def identity(self, request, cfg) -> Any:
        ...


@runtime_checkable
class TextToSpeech(EnginePlugin, Protocol):
    """``KIND == "tts"``: validated options once, then one float32 chunk per sentence."""

    def options(self, request, cfg) -> Any:
        ...

    def synthesize(self, request, cfg, device: str | None = None, plan: Any = None) -> Iterator[Audio]:
        ...


@runtime_checkable
class Converter(EnginePlugin, Protocol):
    """``KIND == "convert"``: speech -> speech, chained after TTS sentence by sentence (``synthesis/chain.py``)."""

    def options(self, request, cfg) -> Any:
        ...

    def convert(self, audio: Audio, request, cfg, device: str | None = None, values: Any = None) -> Audio:
        ...


class Model(Protocol):
    """A loaded model in ``synthesis.manager.MODELS`` (all members optional)."""

    device: str
    nbytes: int

    def unload(self) -> None:
        ...
