"""The one engine registry: engine name -> the module that is the engine.

An engine is one module (``demod_voice.synthesis.<name>``) that declares everything the rest of the
program needs from it; the CLI, batch, the router and Wyoming read this table and name no engine.

Every engine module defines:

* ``NAME`` and ``KIND`` (``"tts"``: text -> speech; ``"convert"``: speech -> speech, chained after TTS);
* ``SECTION`` and ``OPTION_KEYS``: its options, each a key of the one config schema (``demod_voice.config``),
  the fields of its frozen options dataclass (``contract.build_options``);
* the adapter: ``options(request, cfg) -> plan`` (cheap validation), ``synthesize(request, cfg, device, plan)``
  (``convert`` for a converter) yielding float32 ``Audio`` chunks, and ``identity(request, cfg)`` (what the
  result depends on beyond the request: batch resume); optionally ``cache_identity(plan)`` (what the one
  audio-cache key, ``synthesis.keys``, takes from the plan when the plan alone does not say it);
* the engine contract: ``load(plan, cfg, device)`` giving a handle (``contract.Engine``: ``condition``,
  ``synthesize``, ``unload``; a converter's ``load(request, cfg, device)`` gives a ``contract.ConvertEngine``),
  through which its ``synthesize`` (or ``convert``) runs;
* ``available(cfg) -> (bool, reason)``: its availability probe (imports nothing heavy);
* ``OWN_WORDS`` (optional): word timings come from the engine itself rather than Whisper;
* ``MODELS``: the ``models pull`` kinds (``models_manifest.json``) it uses, and ``COMMANDS``: its CLI command modules
  (full module paths, in its folder);
* ``Provider(cfg, name)``: what the router asks (``prepare(request, voice) -> Candidate``, ``status()``, and for
  engines with a voice catalog ``entries()`` / ``resolve(name)``);
* its batch section: ``JOB_OPTIONS``, ``INFER_FROM`` (job columns that imply the engine) and ``INFER_RANK`` (which wins), ``job_request``,
  ``validate_job``, ``group_key`` and ``Runner`` (see ``demod_voice.synthesis.jobs``).

A *family* module (``FAMILY = True``) defines ``instances(cfg) -> {name: engine}``: engines made from config
(``router.remotes.<name>``), each an object with the attributes above.

Modules are imported by name when asked for, and import their engine only when they run, so reading this
table never loads torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from demod_voice.errors import InputError

#: Engine name -> its module, in the order the CLI lists commands and batch infers engines.
ENGINES: dict[str, str] = {
    "xtts": "demod_voice.engines.xtts.plugin",
    "piper": "demod_voice.engines.piper.plugin",
    "rvc": "demod_voice.engines.rvc.plugin",
    "gpt-sovits": "demod_voice.engines.gpt_sovits.plugin",
    "styletts2": "demod_voice.engines.styletts2.plugin",
}
#: Families of engines declared in the config: family -> module.
FAMILIES: dict[str, str] = {
    "remote": "demod_voice.engines.remote.plugin",
}
ADAPTERS = ENGINES  # the earlier name of this table


def module(name: str) -> ModuleType:
    """The module of a built-in engine (no config needed)."""
    try:
        return importlib.import_module(ENGINES[name])
    except KeyError:
        raise InputError(f"unknown engine '{name}'", hint="use one of " + ", ".join(ENGINES)) from None


def instances(cfg) -> dict[str, Any]:
    """Engines the config adds: plugin modules it names (``engines.modules``), then those the families make
    (empty without a config)."""
    out: dict[str, Any] = {}
    if cfg is None:
        return out
    for name, path in (cfg.get("engines.modules") or {}).items():
        if name not in ENGINES:
            try:
                out[name] = importlib.import_module(str(path))
            except ImportError as exc:
                raise InputError(f"engine '{name}': cannot import {path} ({exc})",
                                 hint="engines.modules maps a name to an importable plugin module") from None
    for family in FAMILIES.values():
        out.update(importlib.import_module(family).instances(cfg))
    return out


def names(cfg=None, kind: str | None = None) -> list[str]:
    """Every engine name (built-in, then from the config), optionally of one ``KIND``."""
    found = [n for n in ENGINES if kind is None or module(n).KIND == kind]
    found += [n for n, e in instances(cfg).items() if (kind is None or e.KIND == kind) and n not in found]
    return found


def get(name: str, cfg=None):
    """The engine called ``name``: a built-in module, or one the config declares."""
    if name in ENGINES:
        return module(name)
    found = instances(cfg).get(name)
    if found is None:
        raise InputError(f"unknown engine '{name}'", hint="use one of " + ", ".join(names(cfg)))
    return found


def converter():
    """The speech -> speech engine chained after TTS (``request.rvc``)."""
    for name in ENGINES:
        if module(name).KIND == "convert":
            return module(name)
    raise InputError("no voice conversion engine is registered")


def commands() -> list[str]:
    """CLI command modules the engines declare, in registry order."""
    return [command for name in ENGINES for command in module(name).COMMANDS]


def providers(cfg, kind: str = "tts") -> dict[str, Any]:
    """``{name: engine.Provider(cfg, name)}`` for the router."""
    return {name: get(name, cfg).Provider(cfg, name) for name in names(cfg, kind)}


def job_option_names(cfg=None) -> set[str]:
    """Every per-job option name any engine accepts (batch columns)."""
    out: set[str] = set()
    for name in names(cfg):
        out.update(get(name, cfg).JOB_OPTIONS)
    return out


def infer(record: dict, cfg=None) -> str | None:
    """The engine a job record implies by its columns: by ``INFER_RANK``, the first whose ``INFER_FROM`` column is set."""
    for name in sorted(names(cfg), key=lambda n: get(n, cfg).INFER_RANK):
        if any(record.get(column) for column in get(name, cfg).INFER_FROM):
            return name
    return None
