"""StyleTTS2 in process: the LibriTTS checkpoint layout, our own inference code on torch + transformers.

Modules, one job each: ``checkpoint`` (the folder, the config, weights-only loading and norm folding),
``build`` (the networks at the checkpoint's sizes), ``networks`` (the layers), ``sampler`` (style diffusion),
``text`` (espeak-ng IPA -> the 178 symbols), ``mel`` (reference -> log-mel), ``engine`` (a loaded model).
``load(folder, device)`` keeps one engine per folder and device for the process. Heavy imports happen only
when a model loads.
"""

from __future__ import annotations

import threading
from pathlib import Path

from demod_voice.engines.styletts2.checkpoint import find

_ENGINES: dict[tuple, object] = {}
_LOCK = threading.Lock()


def default_model_dir(cfg) -> Path:
    return Path(cfg.data_dir) / "models" / "styletts2-libritts"


def resolve_model_dir(cfg, override: str | Path | None = None) -> Path:
    """``override``, else ``styletts2.model_dir``, else ``<data_dir>/models/styletts2-libritts`` (checked)."""
    folder = Path(override or cfg.get("styletts2.model_dir") or default_model_dir(cfg)).expanduser()
    return find(folder).folder


def load(folder: Path, device: str = "cpu"):
    """The process-wide engine for ``folder`` on ``device`` (loaded once)."""
    from demod_voice.engines.styletts2.engine import StyleTTS2Engine

    files = find(folder)
    stat = files.weights.stat()
    key = (str(files.weights.resolve()), stat.st_size, stat.st_mtime_ns, str(device))
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = StyleTTS2Engine(files, device)
            if len(_ENGINES) >= 4:
                _ENGINES.clear()
            _ENGINES[key] = engine
    return engine
