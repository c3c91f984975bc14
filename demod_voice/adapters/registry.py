"""Engine name -> adapter module, looked up by name so importing it loads no engine."""

from __future__ import annotations

import importlib
from types import ModuleType

from demod_voice.errors import InputError

ADAPTERS: dict[str, str] = {
    "piper": "demod_voice.adapters.piper",
    "xtts": "demod_voice.adapters.xtts",
    "rvc": "demod_voice.adapters.rvc",
}
#: Engines that turn text into speech (RVC converts speech).
TTS_ENGINES = ("piper", "xtts")


def get(engine: str) -> ModuleType:
    """The adapter module for an engine name."""
    try:
        return importlib.import_module(ADAPTERS[engine])
    except KeyError:
        raise InputError(f"unknown engine '{engine}'", hint="use one of " + ", ".join(ADAPTERS)) from None
