"""XTTS-v2 zero-shot voice cloning on coqui-tts.

A checkpoint folder (``config.json``, ``model.pth``, ``vocab.json``;
``speakers_xtts.pth`` optional) is loaded once per process through coqui's
own loader (``Xtts(config)`` + ``load_checkpoint``) and cached by
(path, device, precision). Everything that can be checked without torch is
checked first, without importing it: the model folder, the language, the
reference files (read with soundfile, never ``torchaudio.load``) and the
conditioning-latents cache. So bad input fails in a fraction of a second and a
cache hit never decodes the references again.

Conditioning latents (the GPT style latents and the speaker embedding) are
what a reference voice costs to compute. They are cached on disk as
safetensors, keyed by the content of the reference files, the model identity
and the conditioning parameters, and can be saved as named voices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demod_voice import audio as audio_mod
from demod_voice import text as text_mod
from demod_voice.audio import Audio
from demod_voice.errors import EngineError, InputError, ModelNotFoundError, UsageError, missing_extra

_LOGGER = logging.getLogger(__name__)

#: Files of an XTTS checkpoint folder; the last one is optional.
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
OPTIONAL_FILES = ("speakers_xtts.pth",)
#: Conditioning audio is resampled to the rate the GPT conditioning encoder expects.
REFERENCE_RATE = 22050
MIN_REFERENCE_SECONDS = 2.0
LONG_REFERENCE_SECONDS = 30.0
#: A long reference is cut to its best window of this many seconds (at least MIN_WINDOW).
BEST_WINDOW_SECONDS = 12.0
MIN_WINDOW_SECONDS = 6.0
#: Bumped whenever reference preprocessing changes, so old cached latents are not reused.
PREPROCESS_VERSION = "1"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")
SAMPLING_KEYS = ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty", "speed")
#: Defaults of XttsConfig for the conditioning parameters (used when config.json omits them).
_CONDITIONING_DEFAULTS = {"gpt_cond_len": 12, "gpt_cond_chunk_len": 4, "max_ref_len": 10, "sound_norm_refs": False}

_CACHE: dict[tuple[str, str, str], XttsEngine] = {}
_CACHE_LOCK = threading.Lock()
#: One lock per device: GPU (or CPU) work of concurrent requests never interleaves.
_DEVICE_LOCKS: dict[str, threading.Lock] = {}


# --- model folder, without torch ---------------------------------------------------

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


# --- references, without torch -----------------------------------------------------

def expand_references(items: Iterable[str | os.PathLike]) -> list[Path]:
    """REFERENCE arguments -> audio files; a folder contributes its audio files, sorted."""
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not inside:
                raise InputError(f"reference folder {path} holds no audio files",
                                 hint="put WAV/FLAC/OGG/MP3 recordings of the voice in it")
            files.extend(inside)
        elif not path.exists():
            raise InputError(f"reference audio not found: {path}", hint="check the path")
        else:
            files.append(path)
    if not files:
        raise UsageError("no reference audio given", hint="pass REFERENCE (a file or a folder), --reference, or --voice NAME")
    return files


def best_window(audio: Audio, seconds: float = BEST_WINDOW_SECONDS) -> tuple[Audio, float]:
    """The ``seconds``-long stretch with the most speech and the least clipping.

    Each candidate window (hop 0.5 s) scores the share of 20 ms frames within
    35 dB of the loudest frame (speech, not pauses), minus a heavy penalty for
    clipped samples, plus a small bonus for level. Returns (window, start).
    """
    sr = audio.sample_rate
    length = int(seconds * sr)
    if len(audio.samples) <= length:
        return audio, 0.0
    frame = int(0.02 * sr)
    levels = audio_mod.frame_rms_db(audio, 0.02)
    voiced = levels > levels.max() - 35.0
    clipped = np.abs(audio.samples[: len(levels) * frame].reshape(len(levels), frame)) >= 0.999
    clip_frames = clipped.mean(axis=1)
    per_window = length // frame
    hop = max(1, int(0.5 * sr) // frame)
    best, best_score = 0, -np.inf
    for start in range(0, len(levels) - per_window + 1, hop):
        seg = slice(start, start + per_window)
        level = float(np.clip((levels[seg].mean() + 60.0) / 60.0, 0.0, 1.0))
        score = voiced[seg].mean() - 20.0 * clip_frames[seg].mean() + 0.1 * level
        if score > best_score:
            best, best_score = start, score
    begin = best * frame
    return Audio(audio.samples[begin: begin + length], sr), begin / sr


def load_reference(path: Path) -> Audio:
    """Read one reference: mono, 22.05 kHz, silence-trimmed, 2-30 s (longer: its best 6-12 s)."""
    audio = audio_mod.read(path, what="reference audio")
    if not len(audio.samples):
        raise InputError(f"reference audio {path} is empty", hint="record at least 2 seconds of clear speech")
    audio = audio_mod.resample(audio, REFERENCE_RATE)
    if audio_mod.is_silent(audio):
        raise InputError(f"reference audio {path} is silent", hint="record at least 2 seconds of clear speech")
    trimmed = audio_mod.trim_silence(audio)
    if trimmed.duration < MIN_REFERENCE_SECONDS:
        raise InputError(
            f"reference audio {path} has only {trimmed.duration:.1f} s of sound (after trimming silence); "
            f"at least {MIN_REFERENCE_SECONDS:.0f} s are needed",
            hint="use a longer recording (6-12 s of clear speech works best)")
    if trimmed.duration > LONG_REFERENCE_SECONDS:
        window, start = best_window(trimmed, BEST_WINDOW_SECONDS)
        window = audio_mod.trim_silence(window)
        if window.duration < MIN_WINDOW_SECONDS:  # a window full of pauses: fall back to the plain start
            window = Audio(trimmed.samples[: int(BEST_WINDOW_SECONDS * REFERENCE_RATE)], REFERENCE_RATE)
            start = 0.0
        _LOGGER.warning("reference %s is %.0f s long; using its best %.1f s (from %.1f s) for cloning",
                        path.name, trimmed.duration, window.duration, start)
        trimmed = window
    if audio_mod.clipping_ratio(trimmed) > 0.01:
        _LOGGER.warning("reference %s is clipped (%.1f%% of samples at full scale); the clone may sound distorted",
                        path.name, 100 * audio_mod.clipping_ratio(trimmed))
    return trimmed


# --- latents and their caches ------------------------------------------------------

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
        with audio_mod.atomic_path(path) as tmp:
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


# --- saved voices (no torch needed to list them) ------------------------------------

def voices_root(data_dir: Path) -> Path:
    return Path(data_dir) / "xtts-voices"


def save_voice(name: str, latents: XttsLatents, data_dir: Path, references: list[Path] | None = None) -> Path:
    """Store latents as ``<data_dir>/xtts-voices/<name>/`` (latents.safetensors + voice.json)."""
    from demod_voice.paths import safe_join

    root = voices_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    folder = safe_join(root, name, what="voice name")
    if folder.exists():
        _LOGGER.warning("replacing the saved XTTS voice '%s'", name)
    folder.mkdir(parents=True, exist_ok=True)
    latents.save(folder / "latents.safetensors", {"voice": name})
    meta = {"name": name, "engine": "xtts", "model_id": latents.model_id, "sample_rate": 24000,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "references": [str(p) for p in (references or [])]}
    audio_mod.atomic_write_bytes(folder / "voice.json", json.dumps(meta, indent=2).encode())
    return folder


def load_voice(name: str, data_dir: Path) -> XttsLatents:
    """The latents of a saved voice, with a clear error naming the saved ones."""
    from demod_voice.paths import safe_join

    folder = safe_join(voices_root(data_dir), name, what="voice name")
    path = folder / "latents.safetensors"
    if not path.is_file():
        known = [v.name for v in _saved_voice_entries(data_dir)]
        raise InputError(f"no saved XTTS voice named '{name}'",
                         hint=("saved voices: " + ", ".join(known)) if known else
                         "save one first: demod-voice xtts-zero-shot REFERENCE --save-voice NAME")
    latents = XttsLatents.load(path, f"voice {name}")
    latents.key = ""
    return latents


def _saved_voice_entries(data_dir: Path) -> list:
    from demod_voice.catalog import VoiceEntry

    root = voices_root(data_dir)
    out = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        meta_path = folder / "voice.json"
        if not (folder / "latents.safetensors").is_file() or not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _LOGGER.info("skipping saved voice %s: %s", folder.name, exc)
            continue
        out.append(VoiceEntry(name=folder.name, engine="xtts", language="multilingual", quality="cloned",
                              sample_rate=int(meta.get("sample_rate") or 24000), speakers=1,
                              source="saved XTTS voice", path=str(folder),
                              extra={"model_id": meta.get("model_id", ""), "created": meta.get("created", "")}))
    return out


def saved_voices(cfg) -> list:
    """Lister for ``voices list`` (catalog.LISTERS)."""
    return _saved_voice_entries(cfg.data_dir)


# --- the engine (torch from here on) --------------------------------------------------

def load(model_dir: str | os.PathLike, device: str = "cpu", precision: str = "fp32", cfg=None) -> XttsEngine:
    """The process-wide engine for a checkpoint folder, loading it on first use.

    ``cfg`` (a Config) applies ``xtts.max_batch`` and ``xtts.batch_window_ms`` to the model's decoding batch.
    """
    model_dir = Path(model_dir).resolve()
    key = (str(model_dir), device, precision)
    with _CACHE_LOCK:
        engine = _CACHE.get(key)
        if engine is None:
            engine = _CACHE[key] = XttsEngine(model_dir, device, precision)
    if cfg is not None:
        engine.configure_batching(cfg.get("xtts.max_batch"), cfg.get("xtts.batch_window_ms"))
    return engine


def _pick_device(device: str) -> str:
    import torch

    if device in ("gpu", "auto", "cuda"):
        if torch.cuda.is_available():
            return "cuda"
        if device != "auto":
            _LOGGER.warning("no CUDA GPU is available; XTTS runs on the CPU (several times slower than real time)")
        else:
            _LOGGER.info("no CUDA GPU found; XTTS runs on the CPU")
    return "cpu"


class XttsEngine:
    """One loaded XTTS-v2 model. Keeps no per-request state; work is serialised per device."""

    name = "xtts"

    def __init__(self, model_dir: Path, device: str = "cpu", precision: str = "fp32"):
        try:
            import torch
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except ImportError as exc:
            raise missing_extra(exc.name or "coqui-tts", "xtts") from None
        missing = missing_files(model_dir)
        if missing:
            raise ModelNotFoundError(f"XTTS model folder {model_dir} is missing {', '.join(missing)}",
                                     hint="run 'demod-voice models pull xtts-v2 --accept-license'")
        self.model_dir = Path(model_dir)
        self.config_dict = read_model_config(model_dir)
        self.device = _pick_device(device)
        if precision not in ("fp32", "fp16", "bf16"):
            raise UsageError(f"unknown precision '{precision}'", hint="use fp32, fp16 or bf16")
        if precision != "fp32" and self.device != "cuda":
            _LOGGER.warning("%s needs a CUDA GPU; XTTS runs in fp32 on the CPU", precision)
            precision = "fp32"
        self.precision = precision
        self._autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self.stats = {"latents_computed": 0, "latents_cached": 0}
        started = time.perf_counter()
        self._quiet_transformers()
        weights = self.model_dir / "model.pth"
        before = weights.stat()
        try:
            config = XttsConfig()
            config.load_json(str(self.model_dir / "config.json"))
            model = Xtts(config)
            model.load_checkpoint(config, checkpoint_dir=str(self.model_dir), eval=True)
        except PermissionError as exc:
            raise InputError(f"cannot load XTTS model from {self.model_dir}: {exc}",
                             hint="coqui-tts rewrites an original model.pth once on first load; make the folder "
                                  "writable (or load it once where it is)") from None
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            import pickle

            if isinstance(exc, pickle.UnpicklingError):
                from demod_voice.errors import UnsafeCheckpointError

                raise UnsafeCheckpointError(f"{weights} needs unsafe unpickling to load: {str(exc)[:200]}",
                                            hint="only load checkpoints in the official XTTS-v2 format") from None
            raise InputError(f"cannot load XTTS model from {self.model_dir}: {type(exc).__name__}: {str(exc)[:300]}",
                             hint="the files may be truncated or not an XTTS-v2 checkpoint; "
                                  "check them with 'demod-voice models verify xtts-v2'") from None
        after = weights.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            _LOGGER.warning("coqui-tts rewrote %s once (it drops the pickled config from original checkpoints)", weights)
            from demod_voice import models

            models.record_rewrite(self.model_dir, "model.pth")
        if self.device == "cuda":
            model = model.cuda()
        self.model = model
        self.config = config
        self.model_id = model_identity(self.model_dir)
        self.sample_rate = int(config.model_args.output_sample_rate)
        self.languages = list(config.languages)
        self.gpt_width = int(config.model_args.gpt_n_model_channels)
        lock_key = self.device
        self._lock = _DEVICE_LOCKS.setdefault(lock_key, threading.Lock())
        self._scheduler = None
        self._batching: tuple[int, float] = (0, 0.0)
        self.configure_batching()
        _LOGGER.info("loaded XTTS model %s on %s (%s) in %.1f s", self.model_dir, self.device, self.precision,
                     time.perf_counter() - started)

    @staticmethod
    def _quiet_transformers() -> None:
        """transformers complains about GPT-2 token ids XTTS never uses; keep that off the user's screen."""
        if _LOGGER.isEnabledFor(logging.DEBUG):
            return
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
        except ImportError:
            pass

    # -- conditioning --------------------------------------------------------------------
    def plan(self, references: Iterable[str | os.PathLike], cache_dir: Path | None) -> ConditioningPlan:
        return plan_conditioning(references, self.model_dir, cache_dir, self.model_id)

    def conditioning(self, references: Iterable[str | os.PathLike] | ConditioningPlan,
                      cache_dir: Path | None = None) -> XttsLatents:
        """Latents for a reference set: from the on-disk cache when possible, else computed and stored."""
        plan = references if isinstance(references, ConditioningPlan) else self.plan(references, cache_dir)
        if plan.model_id != self.model_id:  # the checkpoint changed (e.g. rewritten on first load)
            plan.model_id = self.model_id
        cached = plan.cached()
        if cached is not None:
            self.stats["latents_cached"] += 1
            _LOGGER.info("conditioning latents: cache hit (%s)", plan.cache_path.name)
            return cached
        latents = self.compute_latents(plan.decode(), plan.params)
        latents.key = plan.key
        if plan.cache_path is not None:
            latents.save(plan.cache_path, {"references": ",".join(p.name for p in plan.files)})
        _LOGGER.info("conditioning latents: computed from %d reference(s)%s", len(plan.files),
                     f", cached as {plan.cache_path.name}" if plan.cache_path else "")
        return latents

    def compute_latents(self, references: list[Audio], params: dict | None = None) -> XttsLatents:
        """Run coqui's conditioning encoders on prepared reference audio (tensors, not paths)."""
        import torch

        params = params or conditioning_params(self.config_dict)
        sr = REFERENCE_RATE
        max_len = int(params["max_ref_len"]) * sr
        tensors, speaker = [], []
        with self._lock, self._autocast():
            for ref in references:
                clip = torch.from_numpy(audio_mod.resample(ref, sr).samples[:max_len].copy())[None]
                if params.get("sound_norm_refs"):
                    clip = clip / clip.abs().max() * 0.75
                speaker.append(self.model.get_speaker_embedding(clip, sr))
                tensors.append(clip)
            try:
                gpt = self.model.get_gpt_cond_latents(torch.cat(tensors, dim=-1), sr,
                                                      length=int(params["gpt_cond_len"]),
                                                      chunk_length=int(params["gpt_cond_chunk_len"]))
            except RuntimeError as exc:
                raise EngineError(f"XTTS conditioning failed: {exc}") from exc
        self.stats["latents_computed"] += 1
        return XttsLatents(gpt.float().cpu(), torch.stack(speaker).mean(dim=0).float().cpu(), self.model_id)

    # -- synthesis ------------------------------------------------------------------------
    def check_language(self, language: str | None) -> str:
        return check_language(language, self.languages)

    def _autocast(self):
        import contextlib

        import torch

        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self._autocast_dtype)

    def _check_latents(self, latents: XttsLatents) -> None:
        width = int(latents.gpt_cond_latent.shape[-1])
        if width != self.gpt_width:
            raise InputError(f"the voice latents ({latents.source}) were made by a different XTTS model "
                             f"(width {width}, this model has {self.gpt_width})",
                             hint="re-create the voice from its reference audio with this model")
        if latents.model_id and latents.model_id != self.model_id:
            _LOGGER.warning("the voice latents (%s) were made by another model (%s); results may differ",
                            latents.source, latents.model_id)

    def sentences(self, text: str, language: str, split_sentences: bool = True) -> list[str]:
        """Split (or not) and check each piece fits the GPT's text window."""
        limit = self.model.tokenizer.char_limits.get(language.split("-")[0], 250)
        pieces = text_mod.split_sentences(text, max_chars=limit) if split_sentences else [text_mod.normalize(text)]
        max_tokens = int(self.config.model_args.gpt_max_text_tokens)
        for piece in pieces:
            count = len(self.model.tokenizer.encode(piece.lower(), lang=language))
            if count >= max_tokens:
                raise InputError(f"a piece of text is too long for XTTS ({count} tokens, limit {max_tokens - 1}): "
                                 f"'{piece[:40]}...'",
                                 hint="use --split-sentences (the default) or shorter sentences")
        return [p for p in pieces if p.strip()]

    def synthesize(self, text: str, *, language: str, latents: XttsLatents, stream: bool = False,
                   split_sentences: bool = True, seed: int | None = None, stream_chunk_size: int = 20,
                   **sampling: Any) -> Iterator[Audio]:
        """Yield one chunk per sentence, or one per ``stream_chunk_size`` GPT tokens when ``stream``.

        The GPT decodes in the model's shared batch (``self.scheduler``), with
        this request's own generator: ``seed`` gives the same audio whatever
        else runs at the same time.
        """
        unknown = set(sampling) - set(SAMPLING_KEYS)
        if unknown:
            raise UsageError(f"unknown XTTS option(s): {', '.join(sorted(unknown))}",
                             hint="known: " + ", ".join(SAMPLING_KEYS))
        options = {k: v for k, v in sampling.items() if v is not None}
        language = self.check_language(language)
        text = text_mod.require_text(text)
        self._check_latents(latents)
        pieces = self.sentences(text, language, split_sentences)
        generator = self._generator(seed)
        sampling = self._sampling(options)
        speed = float(options.get("speed", 1.0))
        for piece in pieces:
            try:
                yield from self._speak(piece, language, latents, generator, sampling, speed,
                                       int(stream_chunk_size) if stream else 0)
            except (InputError, UsageError, EngineError):
                raise
            except (RuntimeError, AssertionError, ValueError, IndexError) as exc:
                raise EngineError(f"XTTS synthesis failed on '{piece[:40]}': {type(exc).__name__}: {exc}") from exc

    # -- batched decoding (demod_voice.engines.xtts_batching) ------------------------------
    def configure_batching(self, max_batch: int | None = None, window_ms: float | None = None) -> None:
        """Set ``xtts.max_batch`` (None: 8 on GPU, 4 on CPU) and ``xtts.batch_window_ms`` for this model."""
        from demod_voice.engines import xtts_batching

        self._batching = (max_batch or xtts_batching.default_max_batch(self.device),
                          xtts_batching.DEFAULT_WINDOW_MS if window_ms is None else float(window_ms))
        if self._scheduler is not None:
            self._scheduler.configure(*self._batching)

    @property
    def scheduler(self):
        """The model's one decoding loop, shared by every request in this process."""
        from demod_voice.engines import xtts_batching

        with _CACHE_LOCK:
            if self._scheduler is None:
                max_batch, window_ms = self._batching
                quantum, fixed = xtts_batching.row_quantum(self.device, max_batch)
                decoder = xtts_batching.GptDecoder(self.model.gpt, quantum)
                self._scheduler = xtts_batching.BatchScheduler(decoder, self._lock, self._autocast, max_batch,
                                                               window_ms, fixed_rows=fixed)
            return self._scheduler

    def _generator(self, seed: int | None):
        """A request's own random stream: seeded, or seeded from the global torch RNG (so torch.manual_seed holds)."""
        import torch

        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        generator = torch.Generator(device=self.model.device)
        generator.manual_seed(int(seed))
        return generator

    @staticmethod
    def _sampling(options: dict):
        from demod_voice.engines.xtts_batching import Sampling

        keys = ("temperature", "top_k", "top_p", "repetition_penalty")
        return Sampling(**{k: type(getattr(Sampling, k))(options[k]) for k in keys if k in options})

    def _speak(self, piece: str, language: str, latents: XttsLatents, generator, sampling, speed: float,
               chunk_tokens: int) -> Iterator[Audio]:
        """Decode one sentence in the shared batch; vocode here, every ``chunk_tokens`` tokens (0: once at the end).

        Chunking, cross-fading and speed follow coqui's ``inference_stream``.
        """
        import torch

        from demod_voice.engines.xtts_batching import DecodeJob

        model = self.model
        sent = piece.strip().lower()
        tokens = torch.IntTensor(model.tokenizer.encode(sent, lang=language.split("-")[0])).unsqueeze(0)
        scheduler = self.scheduler
        with self._lock, self._autocast(), torch.inference_mode():
            prompt = scheduler.decoder.prompt(latents.gpt_cond_latent.to(model.device), tokens.to(model.device))
        job = scheduler.submit(DecodeJob(prompt, sampling, generator, scheduler.decoder.max_tokens))
        speaker = latents.speaker_embedding.to(model.device)
        length_scale = 1.0 / max(speed, 0.05)
        steps = iter(job)
        try:
            yield from self._vocode(steps, speaker, length_scale, chunk_tokens)
        finally:
            job.cancel()

    def _vocode(self, steps, speaker, length_scale: float, chunk_tokens: int) -> Iterator[Audio]:
        import torch
        import torch.nn.functional as F

        model = self.model
        all_latents: list = []
        fresh = 0
        wav_prev = overlap = None
        done = False
        while not done:
            item = next(steps, None)
            if item is None:
                done = True
            else:
                all_latents.append(item[1])
                fresh += 1
            if not all_latents or not (done or (chunk_tokens > 0 and fresh >= chunk_tokens)):
                continue
            fresh = 0
            with self._lock, self._autocast(), torch.inference_mode():
                gpt_latents = torch.stack(all_latents)[None]
                if length_scale != 1.0:
                    gpt_latents = F.interpolate(gpt_latents.transpose(1, 2), scale_factor=length_scale,
                                                mode="linear").transpose(1, 2)
                wav = model.hifigan_decoder(gpt_latents, g=speaker).squeeze()
                chunk, wav_prev, overlap = model.handle_chunks(wav, wav_prev, overlap, 1024, is_final=done)
            samples = chunk.detach().float().cpu().numpy().reshape(-1)
            if len(samples):
                yield Audio(samples, self.sample_rate)
