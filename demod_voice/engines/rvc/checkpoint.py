"""Safe checkpoint loading and RVC voice-file inspection.

Every file goes through ``torch.load(..., weights_only=True)``. The only
non-tensor classes a real RVC/HuBERT file may hold (fairseq's ``Dictionary``
and ``argparse.Namespace`` inside ``hubert_base.pt``) are allowed under their
original names but rebuilt as inert local classes, so no code from the file
ever runs. Anything else that needs arbitrary unpickling is refused with
``UnsafeCheckpointError``.
"""

from __future__ import annotations

import logging
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from demod_voice.errors import InputError, UnsafeCheckpointError

_LOGGER = logging.getLogger(__name__)


class _InertObject:
    """Stands in for a pickled class: takes its attributes as plain data, runs nothing."""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<inert {type(self).__name__} {sorted(vars(self))}>"


class FairseqDictionary(_InertObject):
    """Data-only stand-in for ``fairseq.data.dictionary.Dictionary``."""


class FairseqNamespace(_InertObject):
    """Data-only stand-in for ``argparse.Namespace`` (fairseq's old ``args``)."""


#: (inert class, the dotted name it is pickled under)
_SAFE_STAND_INS = [
    (FairseqDictionary, "fairseq.data.dictionary.Dictionary"),
    (FairseqNamespace, "argparse.Namespace"),
]


#: What a refused checkpoint should be instead.
SAFE_FORMATS_HINT = ("safe formats are a weights-only PyTorch .pth/.pt (tensors, numbers, strings, lists and dicts, "
                     "as RVC WebUI and Applio export voices) and .safetensors (HuBERT folders); get the file from a "
                     "source you trust in one of those")


def unsafe_message(what: str, path: Path, detail: str) -> str:
    """Why a pickle was refused: it names what the file would run, never how to switch the check off."""
    match = re.search(r"GLOBAL ([A-Za-z_][\w.]*)", detail)
    calls = f" (it calls {match.group(1)})" if match else ""
    return (f"refusing to load {what} {path}: the file holds code that would run on load{calls}; loading it "
            f"would need arbitrary unpickling")


def safe_load(path: str | Path, what: str = "checkpoint", safe_formats: str = SAFE_FORMATS_HINT):
    """``torch.load`` with ``weights_only=True`` and clear errors for unsafe or broken files.

    ``safe_formats`` is the hint a refused file gets: what the engine's file should be instead."""
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found: {path}", hint="check the path")
    if path.is_dir():
        raise InputError(f"{what} is a folder, not a file: {path}")
    try:
        # torch's own warnings (and its advice on turning the check off) are not for our users.
        with warnings.catch_warnings(), torch.serialization.safe_globals(_SAFE_STAND_INS):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        _LOGGER.debug("torch.load refused %s: %s", path, text)
        if "weights only" in text.lower() or "weights_only" in text or "global" in text.lower() \
                or "reduce" in text.lower() or "allowlist" in text.lower():
            raise UnsafeCheckpointError(unsafe_message(what, path, text), hint=safe_formats) from None
        detail = text.strip().splitlines()[0][:240] if text.strip() else type(exc).__name__
        raise InputError(f"cannot read {what} {path}: {detail}",
                         hint="the file may be truncated or not a PyTorch checkpoint") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError, TypeError) as exc:
        raise InputError(f"cannot read {what} {path}: {type(exc).__name__}: {str(exc).strip()[:240]}",
                         hint="the file may be truncated or not a PyTorch checkpoint") from None


@dataclass(frozen=True)
class RvcVoiceFile:
    """What an RVC voice ``.pth`` (as saved by RVC WebUI / Applio) holds."""

    path: Path
    weights: dict
    """Synthesizer state dict (no ``enc_q.*``)."""
    config: list
    """The 18 constructor hyper-parameters, ending with the sample rate."""
    version: str
    """``v1`` (256-d features) or ``v2`` (768-d features)."""
    f0: bool
    """Whether the model is pitch-conditioned (NSF decoder)."""
    sample_rate: int
    info: str

    @property
    def feature_dim(self) -> int:
        return 256 if self.version == "v1" else 768


def _rate_from(value) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.endswith("k") and text[:-1].isdigit():
            return int(text[:-1]) * 1000
        if text.isdigit():
            return int(text)
    return None


def read_voice(path: str | Path) -> RvcVoiceFile:
    """Load and check an RVC voice ``.pth``; format errors name the file."""
    path = Path(path)
    data = safe_load(path, "RVC model")
    hint = "an RVC voice .pth holds 'weight', 'config', 'sr', 'f0' and 'version' (the small file RVC WebUI exports)"
    if not isinstance(data, dict) or "weight" not in data or "config" not in data:
        keys = ", ".join(map(str, list(data)[:6])) if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path} is not an RVC voice model (found {keys})", hint=hint)
    weights = data["weight"]
    config = list(data["config"])
    if not isinstance(weights, dict) or len(config) != 18:
        raise InputError(f"{path} has a malformed RVC model (config of {len(config)} values, expected 18)", hint=hint)
    version = str(data.get("version") or "v1")
    if version not in ("v1", "v2"):
        raise InputError(f"{path}: unsupported RVC model version {version!r}", hint="v1 and v2 models are supported")
    phone = weights.get("enc_p.emb_phone.weight")
    if phone is None:
        raise InputError(f"{path} lacks enc_p.emb_phone.weight", hint=hint)
    expected_dim = 256 if version == "v1" else 768
    if int(phone.shape[1]) != expected_dim:
        # Some exporters leave 'version' out; the feature width tells the truth.
        version = "v1" if int(phone.shape[1]) == 256 else "v2" if int(phone.shape[1]) == 768 else version
        if int(phone.shape[1]) not in (256, 768):
            raise InputError(f"{path}: content feature width {int(phone.shape[1])} is neither 256 (v1) nor 768 (v2)")
    f0 = bool(int(data.get("f0", 1)))
    if f0 != ("enc_p.emb_pitch.weight" in weights):
        f0 = "enc_p.emb_pitch.weight" in weights
    sample_rate = _rate_from(config[-1]) or _rate_from(data.get("sr"))
    if sample_rate is None:
        raise InputError(f"{path}: cannot tell the model's sample rate (sr={data.get('sr')!r})", hint=hint)
    if "emb_g.weight" in weights:  # like RVC: the speaker table size comes from the weights
        config[-3] = int(weights["emb_g.weight"].shape[0])
    return RvcVoiceFile(path=path, weights=weights, config=config, version=version, f0=f0,
                        sample_rate=int(sample_rate), info=str(data.get("info", "")))
