"""Conditioning latents: the safetensors format, the one on-disk cache, the model id of saved ones."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demod_voice import paths
from demod_voice.audio import Audio
from demod_voice.engines.xtts.checkpoint import _file_sha256, conditioning_params, model_identity, read_model_config
from demod_voice.engines.xtts.reference import expand_references, load_reference
from demod_voice.errors import InputError

_LOGGER = logging.getLogger(__name__)

#: Bumped whenever reference preprocessing changes, so old cached latents are not reused.
PREPROCESS_VERSION = "1"


@dataclass
class XttsLatents:
    """Conditioning for one voice: GPT style latents plus the speaker embedding (CPU tensors)."""

    gpt_cond_latent: Any
    """torch.Tensor [1, T, D] (D = GPT width)."""
    speaker_embedding: Any
    """torch.Tensor [1, 512, 1]."""
    model_id: str = ""
    """Identity of the model that computed them."""
    key: str = ""
    """Cache key (empty for latents that did not come from references)."""
    source: str = "computed"
    """"computed", "cache" or "voice NAME"."""
    meta: dict = field(default_factory=dict)

    def tensors(self) -> dict:
        return {"gpt_cond_latent": self.gpt_cond_latent.detach().float().cpu().contiguous(),
                "speaker_embedding": self.speaker_embedding.detach().float().cpu().contiguous()}

    def save(self, path: Path, extra: dict | None = None) -> None:
        """Write as safetensors, atomically; metadata holds the model id and key."""
        from safetensors.torch import save_file

        meta = {"model_id": self.model_id, "key": self.key, "format": "demod-voice xtts latents 1"}
        meta.update({k: str(v) for k, v in (extra or {}).items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        with paths.atomic_path(path) as tmp:
            save_file(self.tensors(), str(tmp), metadata=meta)

    @staticmethod
    def load(path: Path, source: str) -> XttsLatents:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"cannot read latents file {path}: {exc}", hint="delete it; it will be recomputed") from None
        if set(tensors) != {"gpt_cond_latent", "speaker_embedding"}:
            raise InputError(f"latents file {path} does not hold XTTS latents", hint="delete it")
        return XttsLatents(tensors["gpt_cond_latent"], tensors["speaker_embedding"], meta.get("model_id", ""),
                           meta.get("key", ""), source, meta)


@dataclass
class ConditioningPlan:
    """What conditioning needs, worked out without torch: files, cache key, decoded audio on a miss."""

    files: list[Path]
    hashes: list[str]
    params: dict
    model_id: str
    cache_dir: Path | None
    audio: list[Audio] | None = None

    @property
    def key(self) -> str:
        blob = json.dumps({"model": self.model_id, "params": self.params, "prep": PREPROCESS_VERSION,
                           "refs": self.hashes}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    @property
    def cache_path(self) -> Path | None:
        return self.cache_dir / "xtts-latents" / f"{self.key}.safetensors" if self.cache_dir else None

    def cached(self) -> XttsLatents | None:
        path = self.cache_path
        if path is None or not path.is_file():
            return None
        try:
            latents = XttsLatents.load(path, "cache")
        except InputError as exc:
            _LOGGER.warning("ignoring a broken latents cache file (%s); recomputing", exc.message)
            return None
        latents.key = self.key
        return latents

    def decode(self) -> list[Audio]:
        if self.audio is None:
            self.audio = [load_reference(path) for path in self.files]
        return self.audio


def plan_conditioning(references: Iterable[str | os.PathLike], model_dir: Path, cache_dir: Path | None,
                      model_id: str | None = None, decode_on_miss: bool = True) -> ConditioningPlan:
    """Expand and hash the references; on a cache miss decode and validate them (no torch)."""
    files = expand_references(references)
    config = read_model_config(model_dir)
    plan = ConditioningPlan(files, [_file_sha256(p) for p in files], conditioning_params(config),
                            model_id or model_identity(model_dir), Path(cache_dir) if cache_dir else None)
    if decode_on_miss and not (plan.cache_path and plan.cache_path.is_file()):
        plan.decode()
    return plan


# --- saved conditioning (profiles keep it in latents/xtts.safetensors) ------------------

def latents_model_id(path: Path) -> str:
    """The model id recorded in a latents file, read from its safetensors header (no torch)."""
    import struct

    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 1 << 20:
                raise ValueError("header too large")
            header = json.loads(fh.read(size))
    except (OSError, ValueError, struct.error) as exc:
        raise InputError(f"cannot read latents file {path}: {exc}", hint="delete it") from None
    return str((header.get("__metadata__") or {}).get("model_id", "")) if isinstance(header, dict) else ""
