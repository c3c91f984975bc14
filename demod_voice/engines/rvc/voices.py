"""Registered RVC voices: ``<data_dir>/rvc-voices/<NAME>/`` with ``model.pth``, optional ``model.index``
and ``voice.json`` (what ``rvc add`` recorded). Light: no torch import unless a model is validated."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

from demod_voice.errors import InputError, ModelNotFoundError
from demod_voice.paths import safe_join, validate_name

MODEL_FILE = "model.pth"
INDEX_FILE = "model.index"
META_FILE = "voice.json"


def root(cfg) -> Path:
    return cfg.data_dir / "rvc-voices"


def looks_like_path(model: str) -> bool:
    return "/" in model or model.endswith((".pth", ".pt")) or model.startswith(".")


def registered(cfg) -> list[Path]:
    base = root(cfg)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / MODEL_FILE).is_file())


def resolve(model: str, cfg) -> tuple[Path, Path | None]:
    """A ``.pth`` path or a registered name -> (model file, its registered index or None)."""
    if not model or not model.strip():
        raise InputError("no RVC model given", hint="pass a .pth file or a name added with 'demod-voice rvc add'")
    candidate = Path(model).expanduser()
    if looks_like_path(model) or candidate.exists():
        if candidate.is_dir():
            if (candidate / MODEL_FILE).is_file():
                index = candidate / INDEX_FILE
                return candidate / MODEL_FILE, index if index.is_file() else None
            raise InputError(f"RVC model path is a folder: {candidate}", hint="pass the .pth file")
        if not candidate.is_file():
            raise InputError(f"RVC model not found: {candidate}", hint="check the path")
        return candidate, None
    validate_name(model, "RVC voice name")
    folder = safe_join(root(cfg), model, what="RVC voice name")
    if (folder / MODEL_FILE).is_file():
        index = folder / INDEX_FILE
        return folder / MODEL_FILE, index if index.is_file() else None
    names = [p.name for p in registered(cfg)]
    close = difflib.get_close_matches(model, names, n=3)
    hint = ("did you mean " + ", ".join(close) + "?") if close else (
        "registered RVC voices: " + ", ".join(names[:8]) if names else
        "register one with 'demod-voice rvc add NAME MODEL.pth [INDEX]', or pass a .pth path")
    raise ModelNotFoundError(f"unknown RVC voice '{model}'", hint=hint)


def add(cfg, name: str, model: Path, index: Path | None = None, force: bool = False) -> Path:
    """Validate ``model`` (and ``index``) and copy them under the voice root; returns the voice folder."""
    from demod_voice.engines.rvc.checkpoint import read_voice

    validate_name(name, "RVC voice name")
    model = Path(model).expanduser()
    voice = read_voice(model)  # refuses unsafe or malformed files before anything is copied
    if index is not None:
        from demod_voice.engines.rvc.index import FeatureIndex

        feature_index = FeatureIndex(index)
        if feature_index.dim != voice.feature_dim:
            raise InputError(f"index {index} holds {feature_index.dim}-d features but {model.name} is a "
                             f"{voice.version} voice ({voice.feature_dim}-d)", hint="pass the index trained with this voice")
    folder = safe_join(root(cfg), name, what="RVC voice name")
    if folder.exists() and not force:
        raise InputError(f"RVC voice '{name}' already exists ({folder})", hint="use --force to replace it, or pick another name")
    staging = folder.parent / f".{name}.adding"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        shutil.copyfile(model, staging / MODEL_FILE)
        if index is not None:
            shutil.copyfile(index, staging / INDEX_FILE)
        meta = {"name": name, "version": voice.version, "f0": voice.f0, "sample_rate": voice.sample_rate,
                "source_model": str(model.resolve()), "source_index": str(Path(index).resolve()) if index else None,
                "info": voice.info}
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def catalog_entries(cfg):
    """``voices list`` lister: one ``VoiceEntry`` per registered voice (reads voice.json only)."""
    from demod_voice.catalog import VoiceEntry

    entries = []
    for folder in registered(cfg):
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        entries.append(VoiceEntry(
            name=folder.name, engine="rvc", quality=str(meta.get("version", "")),
            sample_rate=meta.get("sample_rate"), source="rvc add", path=str(folder / MODEL_FILE),
            extra={"f0": meta.get("f0"), "index": (folder / INDEX_FILE).is_file()},
        ))
    return entries
