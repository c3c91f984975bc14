"""One configuration key's declaration (``Setting``), and the engines' sections declared with it.

Each engine declares its config section beside its code (``engines/<name>/settings.py``: ``SECTION`` and
``SETTINGS``, keys with their defaults and ranges), and ``demod_voice.config`` gathers them into the one
schema through ``engine_sections()``. The gathering lives here, below ``config``, because ``config`` sits below
the engine registry (``synthesis/``; ``tests/core/test_layout.py`` forbids the circle): it finds the files in
the engine folders themselves, so an engine folder brings its section with it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One configuration key: its type, default and allowed values."""

    type: str  # "str" | "int" | "float" | "bool" | "list" | "dict" | "path"
    default: Any
    doc: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    secret: bool = False
    """Redacted by ``config show`` (API key hashes)."""


def engine_sections() -> dict[str, ModuleType]:
    """Section name -> the ``settings.py`` module of each engine folder that has one.

    A file is loaded by itself, not through the engine's package (whose ``__init__`` may import its model
    code): every command reads the config, ``--help`` included, and must stay light.
    """
    out: dict[str, ModuleType] = {}
    for path in sorted((Path(__file__).resolve().parent / "engines").glob("*/settings.py")):
        name = f"demod_voice.engines.{path.parent.name}.settings"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        out[module.SECTION] = module
    return out
