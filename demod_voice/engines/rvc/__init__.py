"""RVC voice conversion, in process, on torch + transformers + faiss (no RVC package).

``load(model, cfg, device)`` returns the process-wide ``RvcEngine`` for a voice
(a registered name or a ``.pth`` path); ``engine.convert(audio, ...)`` turns
any speech into that voice. It is a ``Converter`` (engines/base.py), so TTS
output can be chained straight into it.

Modules, one job each: ``checkpoint`` (safe loading, voice-file format),
``synthesizer`` (the v1/v2 networks), ``hubert`` (content features),
``rmvpe`` + ``f0`` (pitch), ``index`` (retrieval), ``pipeline`` (the
conversion itself), ``voices`` (registered voices). Heavy imports happen only
when an engine is loaded.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from demod_voice.audio import Audio
from demod_voice.errors import EngineError, InputError, ModelNotFoundError, UsageError, install_hint

_LOGGER = logging.getLogger(__name__)

AUX_FOLDER = ("models", "rvc-aux")
HUBERT_FILE = "hubert_base.pt"
RMVPE_FILE = "rmvpe.pt"



def aux_dir(cfg) -> Path:
    return cfg.data_dir.joinpath(*AUX_FOLDER)


def _aux_path(cfg, key: str, filename: str, flag: str) -> Path:
    configured = cfg.get(key)
    if configured:
        path = Path(configured).expanduser()
        if not path.exists():
            raise ModelNotFoundError(f"{filename.split('.')[0]} weights not found: {path} (from {cfg.source(key)})",
                                     hint=f"fix {flag} / config {key}, or run 'demod-voice models pull rvc-aux'")
        return path
    path = aux_dir(cfg) / filename
    if not path.exists():
        raise ModelNotFoundError(
            f"{filename} is missing: expected {path}",
            hint=f"run 'demod-voice models pull rvc-aux' (fetches {HUBERT_FILE} and {RMVPE_FILE} into "
                 f"{aux_dir(cfg)}), or pass {flag} PATH")
    return path


def hubert_path(cfg) -> Path:
    return _aux_path(cfg, "rvc.hubert", HUBERT_FILE, "--hubert")


def rmvpe_path(cfg) -> Path:
    return _aux_path(cfg, "rvc.rmvpe", RMVPE_FILE, "--rmvpe")


def _aux(kind: str, path: Path, device: str):
    """HuBERT and RMVPE are shared by every voice in the process."""
    from demod_voice.paths import file_identity
    from demod_voice.synthesis.manager import MODELS

    def load():
        if kind == "hubert":
            from demod_voice.engines.rvc import hubert

            return hubert.load(path, device)
        from demod_voice.engines.rvc import rmvpe

        return rmvpe.load(path, device)

    folder = Path(path)
    files = sorted(folder.iterdir()) if folder.is_dir() else [folder]
    key = (kind, str(folder.resolve()), tuple(file_identity(f) for f in files if f.is_file()), device)
    return MODELS.get("rvc", key, load, device=device, label=f"{kind} {folder.name}", size=_torch_bytes)


def _torch_bytes(model) -> int:
    """Parameters and buffers of a torch module (0 for anything else)."""
    try:
        return sum(x.numel() * x.element_size() for x in [*model.parameters(), *model.buffers()])
    except (AttributeError, TypeError):
        return 0


class RvcEngine:
    """One loaded RVC voice (synthesizer + HuBERT + optional index). Conversions are serialised."""

    name = "rvc"

    def __init__(self, model_path: Path, index_path: Path | None, hubert: Path, rmvpe: Path | None,
                 device: str = "cpu", defaults: dict | None = None):
        from demod_voice.engines.rvc import checkpoint, pipeline, synthesizer
        from demod_voice.engines.rvc.index import FeatureIndex

        self.model_path = Path(model_path)
        from demod_voice.devices import torch_device

        self.device = torch_device(device)
        self.voice = checkpoint.read_voice(self.model_path)
        self.index_path = Path(index_path) if index_path else None
        index = FeatureIndex(self.index_path) if self.index_path else None
        if index is not None and index.dim != self.voice.feature_dim:
            raise InputError(f"index {self.index_path} holds {index.dim}-d features but {self.model_path.name} is a "
                             f"{self.voice.version} voice ({self.voice.feature_dim}-d)",
                             hint="pass the .index trained with this voice")
        self._rmvpe_path = rmvpe
        half = self.device.startswith("cuda")
        self.synth = synthesizer.build(self.voice, self.device, half=half)
        self.hubert = _aux("hubert", hubert, self.device)
        self.defaults = dict(defaults or {})
        segmenting = pipeline.Segmenting.rvc(half, self.defaults.get("context_s"))
        self.pipeline = pipeline.Pipeline(self.synth, self.hubert, self.voice.version, index, self.device, segmenting)
        self._lock = threading.Lock()
        _LOGGER.info("loaded RVC voice %s (%s, %s, %d Hz) on %s", self.model_path.name, self.voice.version,
                     "f0" if self.voice.f0 else "no f0", self.voice.sample_rate, self.device)

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    @property
    def has_index(self) -> bool:
        return self.pipeline.index is not None

    def _options(self, pitch, f0_method, index_rate, filter_radius, rms_mix_rate, protect, resample_sr):
        from demod_voice.engines.rvc import f0 as f0_mod
        from demod_voice.engines.rvc.pipeline import ConvertOptions

        d = self.defaults

        def pick(value, key, fallback):
            return value if value is not None else d.get(key, fallback)

        options = ConvertOptions(
            pitch=float(pitch or 0.0),
            f0_method=pick(f0_method, "f0_method", "rmvpe"),
            index_rate=float(pick(index_rate, "index_rate", 0.75)),
            filter_radius=int(pick(filter_radius, "filter_radius", 3)),
            rms_mix_rate=float(pick(rms_mix_rate, "rms_mix_rate", 0.25)),
            protect=float(pick(protect, "protect", 0.33)),
            resample_sr=int(resample_sr) if resample_sr else None,
        )
        from demod_voice.config import check_option

        for key in ("pitch", "index_rate", "rms_mix_rate", "protect", "filter_radius", "resample_sr"):
            if getattr(options, key) is not None:
                check_option(f"rvc.{key}", getattr(options, key), "conversion")
        if options.f0_method not in f0_mod.available_methods():
            hint = "choose one of " + ", ".join(f0_mod.available_methods())
            if options.f0_method == "pm":
                hint = "pm needs the GPL package praat-parselmouth: " + install_hint("rvc-gpl")
            raise UsageError(f"f0 method '{options.f0_method}' is not available", hint=hint)
        return options

    def _rmvpe_for(self, options):
        if not self.voice.f0 or options.f0_method != "rmvpe":
            return None
        if self._rmvpe_path is None:
            raise ModelNotFoundError("f0 method rmvpe needs rmvpe.pt", hint="run 'demod-voice models pull rvc-aux' or pass --rmvpe")
        return _aux("rmvpe", self._rmvpe_path, self.device)

    def convert(self, audio: Audio, *, pitch: float = 0, f0_method: str | None = None,
                index_rate: float | None = None, filter_radius: int | None = None,
                rms_mix_rate: float | None = None, protect: float | None = None,
                resample_sr: int | None = None, **_: object) -> Audio:
        """Convert speech into this voice; ``None`` options take the config/RVC defaults."""
        options = self._options(pitch, f0_method, index_rate, filter_radius, rms_mix_rate, protect, resample_sr)
        if audio.duration < 0.02:
            raise InputError(f"the input audio is too short to convert ({audio.duration * 1000:.0f} ms)",
                             hint="give at least a few tenths of a second of speech")
        rmvpe = self._rmvpe_for(options)
        with self._lock:
            try:
                return self.pipeline.convert(audio, options, rmvpe)
            except (InputError, EngineError, UsageError):
                raise
            except RuntimeError as exc:
                raise EngineError(f"RVC conversion failed: {type(exc).__name__}: {str(exc).strip()[:300]}") from exc

    def pitch_track(self, audio: Audio, *, pitch: float = 0, f0_method: str | None = None, **kw):
        """The f0 (Hz per 10 ms) the synthesizer would receive for ``audio``; None for no-f0 voices."""
        options = self._options(pitch, f0_method, kw.get("index_rate"), kw.get("filter_radius"), None, None, None)
        return self.pipeline.pitch_track(audio, options, self._rmvpe_for(options))


def load(model: str | Path, cfg, device: str = "cpu", *, index: str | Path | None = None) -> RvcEngine:
    """The process-wide engine for a voice (registered name or ``.pth``), loading it on first use.

    ``index`` overrides the voice's registered index. HuBERT/RMVPE paths come
    from ``cfg`` (``rvc.hubert``/``rvc.rmvpe``) or ``<data_dir>/models/rvc-aux``.
    RMVPE is only required when a conversion uses it.
    """
    from demod_voice.engines.rvc import voices

    model_path, registered_index = voices.resolve(str(model), cfg)
    index_path = Path(index).expanduser() if index else registered_index
    hubert = hubert_path(cfg)
    try:
        rmvpe = rmvpe_path(cfg)
    except ModelNotFoundError:
        if cfg.get("rvc.rmvpe"):
            raise
        rmvpe = None
    defaults = {k: cfg.get(f"rvc.{k}") for k in ("f0_method", "index_rate", "filter_radius", "rms_mix_rate", "protect",
                                                 "context_s")}
    from demod_voice.paths import file_identity
    from demod_voice.synthesis.manager import MODELS

    key = (file_identity(model_path), file_identity(index_path) if index_path else None, str(hubert.resolve()),
           file_identity(rmvpe) if rmvpe else None, device, tuple(sorted(defaults.items())))
    return MODELS.get("rvc", key, lambda: RvcEngine(model_path, index_path, hubert, rmvpe, device, defaults),
                      device=device, label=model_path.name, size=lambda e: _file_size(e.model_path))


def _file_size(path) -> int:
    try:
        return Path(path).stat().st_size
    except (OSError, TypeError):
        return 0
