"""StyleTTS2 in process: the LibriTTS checkpoint layout, our own inference code on torch + transformers.

Modules, one job each: ``checkpoint`` (the folder, the config, weights-only loading and norm folding),
``build`` (the networks at the checkpoint's sizes), ``networks`` (the layers), ``sampler`` (style diffusion),
``text`` (espeak-ng IPA -> the 178 symbols), ``mel`` (reference -> log-mel), ``engine`` (a loaded model).
``load(folder, device)`` keeps one engine per folder and device for the process. Heavy imports happen only
when a model loads.
"""

from __future__ import annotations

from pathlib import Path

from demod_voice.engines.styletts2.checkpoint import find


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
    from demod_voice.synthesis.manager import MODELS

    # at most 4 StyleTTS2 models at once (least recently used goes first), whatever engines.max_loaded says
    return MODELS.get("styletts2", key, lambda: StyleTTS2Engine(files, device), device=str(device),
                      label=files.weights.parent.name, size=stat.st_size, limit=4)
