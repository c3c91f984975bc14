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

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

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

    def load(self, plan, cfg, device: str | None = None) -> Engine:
        ...


@runtime_checkable
class Converter(EnginePlugin, Protocol):
    """``KIND == "convert"``: speech -> speech, chained after TTS sentence by sentence (``synthesis/chain.py``)."""

    def options(self, request, cfg) -> Any:
        ...

    def convert(self, audio: Audio, request, cfg, device: str | None = None, values: Any = None) -> Audio:
        ...

    def load(self, request, cfg, device: str | None = None) -> ConvertEngine:
        ...


@runtime_checkable
class Engine(Protocol):
    """A loaded engine: what a TTS plugin's ``load(plan, cfg, device)`` returns, and all its ``synthesize``
    drives (Kokoro-FastAPI's ``ModelBackend``, piper1's ``PiperVoice``: an object the caller holds).

    * ``condition(references)``: the voice's references (as the plan resolved them) -> what the engine speaks
      with: XTTS latents, a StyleTTS2 style, nothing for Piper. Cached by the engine where it is costly.
    * ``synthesize(text, conditioning, options)``: one float32 chunk per sentence. ``options`` is the plan
      the plugin's ``options()`` built once (the engine's frozen options dataclass inside it); engines may
      take a few keyword-only request flags beside it (``words``, ``continued``, ``split_sentences``).
    * ``unload()``: drop the model from the model manager (``synthesis.manager.MODELS``); the next request
      loads it again. Engines that load nothing here (GPT-SoVITS, remotes: a server elsewhere holds the
      model) hand out a client bound to the server's URL and settings instead; ``unload()`` closes it.
    """

    def condition(self, references: Any) -> Any:
        ...

    def synthesize(self, text: str, conditioning: Any, options: Any) -> Iterator[Audio]:
        ...

    def unload(self) -> None:
        ...


@runtime_checkable
class ConvertEngine(Protocol):
    """A loaded converter (``KIND == "convert"``, RVC): what its plugin's ``load(request, cfg, device)`` returns.
    The same lifecycle as ``Engine``, but speech in and speech out, one piece at a time (the chain converts
    each sentence as TTS yields it), so it has ``convert`` where a TTS engine has ``synthesize``.

    * ``condition(references)``: nothing for RVC (the voice is the model, its index loads with it);
    * ``convert(audio, conditioning, options)``: the piece in the loaded voice;
    * ``unload()``: as for ``Engine``.
    """

    def condition(self, references: Any) -> Any:
        ...

    def convert(self, audio: Audio, conditioning: Any, options: Any) -> Audio:
        ...

    def unload(self) -> None:
        ...


class Handle:
    """The shared part of the engines' handles: the loaded model, and ``unload()`` through the manager."""

    def __init__(self, model: Any):
        self.model = model

    def unload(self) -> None:
        from demod_voice.synthesis.manager import MODELS

        MODELS.unload_model(self.model)


class Client:
    """The shared part of the handles over a server elsewhere (GPT-SoVITS, remotes): nothing is loaded in this
    process, so the handle is a client bound to the server's URL and settings, and ``unload()`` closes it. A
    closed client refuses to speak (a call already under way still ends by its own deadline); ``load`` again
    gives a fresh one."""

    what = "the engine"

    def __init__(self) -> None:
        self.closed = False

    def unload(self) -> None:
        self.closed = True

    def check_open(self) -> None:
        if self.closed:
            from demod_voice.errors import EngineError

            raise EngineError(f"{self.what}: this client was unloaded", hint="load the engine again")


class Model(Protocol):
    """A loaded model in ``synthesis.manager.MODELS`` (all members optional)."""

    device: str
    nbytes: int

    def unload(self) -> None:
        ...


# --- options: one frozen dataclass per engine, built once from the schema ------------------------------------

OptionsT = TypeVar("OptionsT")


def option_keys(cls) -> tuple[str, ...]:
    """An engine's option names: the fields of its options dataclass (each a key of its config section)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def build_options(cls: type[OptionsT], section: str, given: Mapping[str, Any], cfg, origin: str = "request",
                  **fixed: Any) -> OptionsT:
    """``cls`` (a frozen dataclass) from the request's overrides, each checked against the schema key
    ``section.<field>``, the rest from the config; ``fixed`` replaces fields the plugin works out itself
    (Piper's length scale from a speed). Built once per request by the plugin's ``options()``; the engine
    reads attributes, so no string-keyed dict of options crosses from the plugin into the engine."""
    from demod_voice.config import section_options

    values = section_options(section, option_keys(cls), given, cfg, origin)
    return cls(**{**values, **fixed})
