"""Job -> engine adapters, one small module per engine kind.

Each adapter module defines:

* ``OPTIONS``: per-job option name -> ``Option`` (a config schema key), checked at validation time;
* ``validate(job, cfg) -> dict``: cheap checks on the driver (files exist, voice resolves); returns
  what identifies the job's inputs on disk, which goes into the job hash used for resume;
* ``group_key(job) -> tuple``: jobs with the same key share a loaded model (and XTTS conditioning);
* ``Runner(cfg, device)`` with ``run(job) -> Audio``: lives in a worker; it turns the job into an
  engine-layer ``Request`` and runs it through ``demod_voice.adapters`` (the same path as the CLI and
  the server), whose engine caches keep models loaded.

Adapter modules import their engine only inside ``Runner``, so validation never loads torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
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
    """A per-job option backed by one config schema key: its type, finite range and doc live there."""

    key: str

    @property
    def doc(self) -> str:
        from demod_voice.config import SETTINGS

        return SETTINGS[self.key].doc

    def parse(self, name: str, value: Any) -> Any:
        """Convert a CSV string or JSON value, with a message naming the option and its range."""
        from demod_voice.config import check_option

        return check_option(self.key, value, "job file")


def schema_options(section: str, keys: tuple[str, ...], **extra: str) -> dict[str, Option]:
    """``{name: Option("section.name")}`` for ``keys``, plus ``extra`` names mapped to other schema keys."""
    return {**{key: Option(f"{section}.{key}") for key in keys}, **{name: Option(key) for name, key in extra.items()}}


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


def chain_request(job):
    """A TTS job's ``rvc`` column as an ``RvcRequest`` (None without one)."""
    from demod_voice.adapters import RvcRequest

    return RvcRequest(voice=job.rvc, options=dict(job.rvc_options)) if job.rvc else None


def chain_identity(job, cfg) -> dict:
    """Validate a TTS job's RVC options now; what the conversion depends on, for the job hash."""
    if not job.rvc:
        return {}
    from demod_voice.adapters import rvc as rvc_adapter

    rvc_adapter.options(chain_request(job), cfg)
    return {"rvc": rvc_adapter.identity(chain_request(job), cfg)}
