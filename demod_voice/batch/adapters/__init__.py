"""Job -> engine adapters, one small module per engine kind.

Each adapter module defines:

* ``OPTIONS``: per-job option name -> ``Option`` (type and range), checked at validation time;
* ``validate(job, cfg) -> dict``: cheap checks on the driver (files exist, voice resolves); returns
  what identifies the job's inputs on disk, which goes into the job hash used for resume;
* ``group_key(job) -> tuple``: jobs with the same key share a loaded model (and XTTS conditioning);
* ``Runner(cfg, device)`` with ``run(job) -> Audio``: lives in a worker and keeps its engines loaded.

Adapter modules import their engine only inside ``Runner``, so validation never loads torch.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from demod_voice.errors import InputError

#: Engine kind -> adapter module.
ADAPTERS: dict[str, str] = {
    "piper": "demod_voice.batch.adapters.piper",
    "xtts": "demod_voice.batch.adapters.xtts",
    "rvc": "demod_voice.batch.adapters.rvc",
}


@dataclass(frozen=True)
class Option:
    """One per-job option: its type, range or choices, and what it does."""

    type: type
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None

    def parse(self, name: str, value: Any) -> Any:
        """Convert a CSV string or JSON value, with a message naming the option."""
        try:
            if self.type is bool:
                raise TypeError
            if self.type is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                parsed: Any = int(value)
            elif self.type is float:
                if isinstance(value, bool):
                    raise ValueError
                parsed = float(value)
            else:
                parsed = str(value).strip()
        except (TypeError, ValueError):
            raise InputError(f"option '{name}' expects {'an integer' if self.type is int else 'a number'}, "
                             f"got {value!r}", hint=self.doc) from None
        if self.choices and parsed not in self.choices:
            raise InputError(f"option '{name}' must be one of {', '.join(self.choices)}, got {value!r}")
        if self.min is not None and parsed < self.min:
            raise InputError(f"option '{name}' must be >= {self.min}, got {value!r}", hint=self.doc)
        if self.max is not None and parsed > self.max:
            raise InputError(f"option '{name}' must be <= {self.max}, got {value!r}", hint=self.doc)
        return parsed


def get(engine: str) -> ModuleType:
    """The adapter module for an engine kind."""
    try:
        return importlib.import_module(ADAPTERS[engine])
    except KeyError:
        raise InputError(f"unknown engine '{engine}'", hint="use one of " + ", ".join(ADAPTERS)) from None


def all_option_names() -> set[str]:
    names: set[str] = set()
    for engine in ADAPTERS:
        names.update(get(engine).OPTIONS)
    return names


def file_identity(path: Path) -> list:
    """What changes when a file is replaced: absolute path, size, modification time."""
    st = os.stat(path)
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
