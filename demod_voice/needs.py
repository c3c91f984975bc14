"""Which optional packages each extra brings, checked before anything else runs.

An engine command asks ``require("rvc")`` first, so a user learns that torch is missing before being told
to download 1.7 GiB of weights for an engine that could not run anyway. ``from_import_error`` turns a
``ModuleNotFoundError`` for one of these packages, wherever it comes from, into the same exit-2 message with
the install line, instead of a crash report. Only ``importlib.util.find_spec`` is used: nothing is imported.
"""

from __future__ import annotations

import importlib.util

from demod_voice.errors import NotAvailableError, install_hint

#: Extra -> (import name, distribution name) of the packages its engines import.
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "piper": (("piper", "piper-tts"), ("onnxruntime", "onnxruntime")),
    "xtts": (("torch", "torch"), ("torchaudio", "torchaudio"), ("TTS", "coqui-tts"), ("transformers", "transformers")),
    "rvc": (("torch", "torch"), ("transformers", "transformers"), ("faiss", "faiss-cpu"), ("pyworld", "pyworld"),
            ("torchcrepe", "torchcrepe")),
    "stt": (("faster_whisper", "faster-whisper"),),
    "server": (("fastapi", "fastapi"), ("uvicorn", "uvicorn")),
    "ray": (("ray", "ray"),),
    "tinygrad": (("tinygrad", "tinygrad"),),
    "train": (("torch", "torch"), ("lightning", "lightning")),
}

#: Import name -> the extras that bring it (the first is the one a hint names).
_EXTRAS_OF: dict[str, list[str]] = {}
for _extra, _packages in EXTRAS.items():
    for _module, _dist in _packages:
        _EXTRAS_OF.setdefault(_module, []).append(_extra)
_EXTRAS_OF.update({"torchcodec": ["xtts"], "coqpit": ["xtts"], "parselmouth": ["rvc-gpl"], "av": ["piper"],
                   "ctranslate2": ["stt"], "huggingface_hub": ["piper"], "onnx": ["piper"], "httpx": ["server"],
                   "wyoming": ["server"], "safetensors": ["rvc"], "soundfile": ["piper"]})


def found(module: str) -> bool:
    """Whether ``module`` would import (its spec is found; nothing is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` whose modules cannot be found."""
    return [dist for module, dist in EXTRAS[extra] if not found(module)]


def require(extra: str, what: str | None = None) -> None:
    """Raise the exit-2 install message when a package of ``extra`` is missing (before any weights are looked at)."""
    absent = missing(extra)
    if absent:
        subject = f"{what} needs" if what else f"the '{extra}' extra needs"
        raise NotAvailableError(f"{subject} {', '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} "
                                "not installed", hint=install_hint(extra))


def from_import_error(exc: BaseException) -> NotAvailableError | None:
    """The install message for a ``ModuleNotFoundError`` of an optional package (None for anything else)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    extras = _EXTRAS_OF.get(top)
    if not extras:
        return None
    hint = install_hint(extras[0])
    if len(extras) > 1:
        hint += f" (the {', '.join(repr(e) for e in extras[1:])} extra{'s' if len(extras) > 2 else ''} bring it too)"
    return NotAvailableError(f"the Python package '{top}' is not installed", hint=hint)


def engine_ready(extra: str, cfg, weights=None) -> tuple[bool, str]:
    """``(ok, why)``: the packages of ``extra`` are found and, given a config, ``weights(cfg)`` raises nothing.

    ``weights`` raises a ``DemodError`` naming the missing files and the command that fetches them.
    """
    from demod_voice.errors import DemodError

    absent = missing(extra)
    if absent:
        return False, f"{', '.join(absent)} not installed ({install_hint(extra)})"
    if cfg is not None and weights is not None:
        try:
            weights(cfg)
        except DemodError as exc:
            return False, f"weights missing: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    return True, ""


def engine_status(extra: str, cfg, available) -> dict:
    """The ``status()`` a provider reports: ``installed`` (its packages), ``available`` (packages and weights,
    from the engine's own ``available``) and the reason when it cannot run."""
    installed = not missing(extra)
    ok, why = available(cfg)
    status: dict = {"installed": installed, "available": ok}
    if not ok:
        status["problem"] = why
    return status
