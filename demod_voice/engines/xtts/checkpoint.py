"""XTTS checkpoint folders, without torch: where the model is, its config, languages and identity."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from demod_voice.errors import InputError, ModelNotFoundError, UsageError

#: Files of an XTTS checkpoint folder; the last one is optional.
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
OPTIONAL_FILES = ("speakers_xtts.pth",)
#: Defaults of XttsConfig for the conditioning parameters (used when config.json omits them).
_CONDITIONING_DEFAULTS = {"gpt_cond_len": 12, "gpt_cond_chunk_len": 4, "max_ref_len": 10, "sound_norm_refs": False}


def resolve_model_dir(cfg, override: str | os.PathLike | None = None) -> Path:
    """The XTTS checkpoint folder to use, or a ModelNotFoundError naming what to put where.

    Order: ``override`` (``--model-dir``), config ``xtts.model_dir``,
    ``<data_dir>/models/xtts-v2`` (where ``models pull xtts-v2`` puts it), then
    ``<folder>/xtts-v2`` for every folder in ``paths.models``.
    """
    explicit = override or cfg.get("xtts.model_dir")
    if explicit:
        candidates = [Path(explicit).expanduser()]
    else:
        candidates = [Path(cfg.data_dir) / "models" / "xtts-v2"]
        candidates += [Path(p).expanduser() / "xtts-v2" for p in cfg.get("paths.models") or []]
    for folder in candidates:
        if folder.is_dir() and not missing_files(folder):
            return folder
    folder = candidates[0]
    if folder.exists() and not folder.is_dir():
        raise ModelNotFoundError(f"XTTS model folder is a file, not a folder: {folder}",
                                 hint="pass the folder holding config.json, model.pth and vocab.json")
    missing = missing_files(folder) if folder.is_dir() else list(REQUIRED_FILES)
    searched = ""
    if not explicit and len(candidates) > 1:
        searched = " (also searched: " + ", ".join(str(c) for c in candidates[1:]) + ")"
    raise ModelNotFoundError(
        f"XTTS-v2 model not found: {folder} is missing {', '.join(missing)}{searched}",
        hint=f"run 'demod-voice models pull xtts-v2 --accept-license', or download {', '.join(missing)} "
             f"(and optionally speakers_xtts.pth) from https://huggingface.co/coqui/XTTS-v2 and put them in {folder}",
    )


def missing_files(folder: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (Path(folder) / name).is_file()]


def read_model_config(model_dir: Path) -> dict:
    """``config.json`` as a dict (no torch), with a clear error when it is broken."""
    path = Path(model_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelNotFoundError(f"XTTS config not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"XTTS config {path} is not valid JSON: {exc}",
                         hint="re-download it: demod-voice models pull xtts-v2 --force") from None
    if not isinstance(data, dict):
        raise InputError(f"XTTS config {path} must hold a JSON object")
    return data


def model_languages(config: dict) -> list[str]:
    return [str(code) for code in config.get("languages") or []]


def check_language(language: str | None, languages: list[str]) -> str:
    """Return the model's own code for ``language``; error listing the valid ones otherwise."""
    if not language:
        raise UsageError("no language given", hint="pass --language, one of: " + ", ".join(languages))
    code = language.strip().lower()
    aliases = {"zh": "zh-cn", "zh-hans": "zh-cn"}
    for candidate in (code, aliases.get(code, code)):
        if candidate in languages:
            return candidate
    raise InputError(f"language '{language}' is not supported by this XTTS model",
                     hint="use one of: " + ", ".join(languages))


def conditioning_params(config: dict) -> dict:
    """The config values that change what conditioning computes (part of the cache key)."""
    return {key: config.get(key, default) for key, default in _CONDITIONING_DEFAULTS.items()}


def _file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model_dir: Path) -> str:
    """A stable identity for a checkpoint folder, cheap to compute and content based.

    Hashes ``config.json`` and ``vocab.json`` completely and ``model.pth`` by
    size plus its first and last 4 MiB, so copying the folder keeps the id (and
    the latents cache) valid while a different checkpoint gets a new one.
    """
    digest = hashlib.sha256()
    model_dir = Path(model_dir)
    for name in ("config.json", "vocab.json"):
        digest.update(name.encode() + b"\0" + (model_dir / name).read_bytes())
    weights = model_dir / "model.pth"
    size = weights.stat().st_size
    digest.update(f"model.pth\0{size}\0".encode())
    with open(weights, "rb") as fh:
        digest.update(fh.read(4 << 20))
        if size > 8 << 20:
            fh.seek(-(4 << 20), os.SEEK_END)
            digest.update(fh.read())
    return "xtts-" + digest.hexdigest()[:16]


