"""Speech-to-text with faster-whisper (CTranslate2): one model load per process.

The HTTP transcription routes, the Wyoming ASR program and the dataset
transcriber all call ``for_config(cfg)`` (or ``load(path)``) and share the
loaded model. The model is named by the config key ``stt.model``: a model
registry name such as ``whisper-base.en`` (installed with ``demod-voice models
pull whisper-base.en`` into ``<data_dir>/models/<name>/``) or a path to a
CTranslate2 Whisper folder. Nothing is ever fetched implicitly: faster-whisper
only gets local folders, so an offline machine gets a clear error naming the
files to place and where.

Results are plain dataclasses (segments with optional words), so the front
ends format them (json, text, srt, vtt, verbose_json, a Wyoming transcript)
without knowing faster-whisper.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from demod_voice.audio import Audio
from demod_voice.errors import EngineError, InputError, ModelNotFoundError, missing_extra

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Whisper's input rate; audio is resampled to it."""
TASKS = ("transcribe", "translate")
#: Files a CTranslate2 Whisper folder must hold (vocabulary.json in older conversions).
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    """Seconds from the start of the audio."""
    end: float
    text: str
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float
    tokens: tuple[int, ...] = ()
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration: float
    """Seconds of audio transcribed."""
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    task: str = "transcribe"

    def to_dict(self) -> dict:
        return asdict(self)


# --- finding the model -------------------------------------------------------------

def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file() for name in ("model.bin", "config.json"))


def resolve(name: str | None, cfg) -> Path:
    """``stt.model`` (a registry name or a folder) -> the local CTranslate2 folder, or a clear error."""
    from demod_voice import models

    if not name:
        raise InputError("no Whisper model is configured (config key 'stt.model')",
                         hint="set stt.model to a registry name such as whisper-base.en or a model folder")
    path = Path(name).expanduser()
    if path.exists() or "/" in name:
        if not _is_model_folder(path):
            raise ModelNotFoundError(f"Whisper model folder {path} is not a CTranslate2 Whisper model",
                                     hint="it must hold " + ", ".join(REQUIRED_FILES) + " (faster-whisper format)")
        return path
    entries = models.registry(cfg)
    entry = entries.get(name)
    if entry is None or entry.kind != "whisper":
        known = sorted(n for n, e in entries.items() if e.kind == "whisper")
        raise InputError(f"unknown Whisper model '{name}'",
                         hint="use a model folder or one of " + ", ".join(known))
    folder = models.local_dir(entry, cfg)
    if not _is_model_folder(folder):
        files = ", ".join(f.path for f in entry.files if f.required)
        raise ModelNotFoundError(
            f"Whisper model {name} is not installed (no model in {folder})",
            hint=f"run 'demod-voice models pull {name}' where the model hub is reachable, or place {files} "
                 f"from {entry.repo} at revision {entry.revision} in {folder}")
    return folder


def languages_of(path: Path | str) -> list[str]:
    """Languages a model understands, without loading it (English-only folders are named ``*.en``)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return ["en"] if Path(path).name.endswith(".en") or _english_only(Path(path)) else list(_LANGUAGE_CODES)


def check_language(language: str | None, languages: list[str], name: str) -> str | None:
    """``en-US``/``en_US`` -> ``en``; an InputError for a code not in ``languages`` (those of model ``name``).

    Callable before the model loads (with ``languages_of``), so a wrong language is answered at once.
    """
    if not language:
        return None
    code = language.replace("_", "-").split("-")[0].lower()
    if code not in languages:
        hint = "this model is English-only" if languages == ["en"] else "use an ISO 639-1 code such as en, de, fr"
        raise InputError(f"language '{language}' is not supported by Whisper model {name}", hint=hint)
    return code


def _english_only(path: Path) -> bool:
    """English-only Whisper vocabularies have 51864 tokens, multilingual ones 51865 or more."""
    try:
        with open(path / "vocabulary.txt", "rb") as fh:
            return sum(1 for _ in fh) < 51865
    except OSError:
        return False


# --- the engine ----------------------------------------------------------------------

class WhisperEngine:
    """A loaded Whisper model. Calls are serialised: one decode at a time per model."""

    def __init__(self, path: Path, device: str, compute_type: str):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise missing_extra("faster-whisper", "stt") from None
        self.path = path
        self.name = path.name
        self.device = device
        try:
            self._model = WhisperModel(str(path), device="cuda" if device.startswith("cuda") else "cpu",
                                       compute_type=compute_type, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:  # CTranslate2 reports bad folders as RuntimeError
            raise EngineError(f"cannot load Whisper model {path}: {type(exc).__name__}: {exc}",
                              hint="check the folder holds a faster-whisper (CTranslate2) model") from None
        self.multilingual = bool(self._model.model.is_multilingual)
        self._lock = threading.Lock()
        _LOGGER.info("loaded Whisper model %s on %s (%s)", path, device, compute_type)

    @property
    def model(self):
        """The faster-whisper ``WhisperModel`` (word alignment for captions uses it directly)."""
        return self._model

    @property
    def languages(self) -> list[str]:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return list(_LANGUAGE_CODES) if self.multilingual else ["en"]

    def check_language(self, language: str | None) -> str | None:
        """Normalise ``en-US``/``en_US`` to ``en``; refuse codes Whisper does not know."""
        return check_language(language, self.languages, self.name)

    def transcribe(self, audio: Audio | np.ndarray, *, language: str | None = None, task: str = "transcribe",
                   prompt: str | None = None, temperature: float | None = None, words: bool = False,
                   beam_size: int = 5) -> Transcript:
        """Transcribe (or translate to English) ``audio``; an ndarray must be 16 kHz mono float32."""
        if task not in TASKS:
            raise InputError(f"unknown task '{task}'", hint="transcribe or translate")
        language = self.check_language(language)
        samples = _samples_16k(audio)
        duration = len(samples) / SAMPLE_RATE
        options = {"language": language, "task": task, "beam_size": beam_size, "word_timestamps": words,
                   "initial_prompt": prompt or None, "condition_on_previous_text": False}
        if temperature is not None:
            options["temperature"] = float(temperature)
        with self._lock:
            try:
                raw_segments, info = self._model.transcribe(samples, **options)
                segments = tuple(_segment(s) for s in raw_segments)
            except (RuntimeError, ValueError) as exc:
                raise EngineError(f"Whisper transcription failed: {type(exc).__name__}: {exc}") from exc
        text = " ".join(s.text for s in segments if s.text).strip()
        return Transcript(text=text, language=info.language, duration=round(duration, 3), segments=segments,
                          task=task)


def _samples_16k(audio: Audio | np.ndarray) -> np.ndarray:
    from demod_voice import audio as audio_mod

    if isinstance(audio, Audio):
        if audio.sample_rate != SAMPLE_RATE:
            audio = audio_mod.resample(audio, SAMPLE_RATE)
        samples = audio.samples
    else:
        samples = audio
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        samples = samples.mean(axis=1).astype(np.float32)
    return samples


def _segment(seg) -> Segment:
    return Segment(id=int(seg.id), start=round(float(seg.start), 3), end=round(float(seg.end), 3),
                   text=seg.text.strip(), avg_logprob=float(seg.avg_logprob),
                   compression_ratio=float(seg.compression_ratio), no_speech_prob=float(seg.no_speech_prob),
                   temperature=float(seg.temperature or 0.0), tokens=tuple(int(t) for t in seg.tokens),
                   words=tuple(Word(round(float(w.start), 3), round(float(w.end), 3), w.word, float(w.probability))
                               for w in (seg.words or ())))


# --- loading: through the process's one model manager ---------------------------------------


def load(path: Path | str, device: str = "cpu", compute_type: str = "default") -> WhisperEngine:
    """The engine for a model folder, loaded once per process (device + compute type)."""
    folder = Path(path).expanduser()
    if not _is_model_folder(folder):
        raise ModelNotFoundError(f"Whisper model folder {folder} is not a CTranslate2 Whisper model",
                                 hint="it must hold " + ", ".join(REQUIRED_FILES))
    from demod_voice.paths import file_identity
    from demod_voice.synthesis.manager import MODELS

    files = tuple(file_identity(folder / name) for name in REQUIRED_FILES)
    key = (str(folder.resolve()), files, device, compute_type)
    return MODELS.get("whisper", key, lambda: WhisperEngine(folder, device, compute_type), device=device,
                      label=folder.name, size=sum(_size(folder / name) for name in REQUIRED_FILES))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def device_for(cfg) -> str:
    """``stt.device`` (or the global ``device``) -> "cpu" or "cuda"; CTranslate2 tells whether CUDA exists."""
    want = cfg.get("stt.device") or cfg.get("device")
    if want == "cpu":
        return "cpu"
    try:
        import ctranslate2
    except ImportError:
        return "cpu"
    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def for_config(cfg, model: str | None = None) -> WhisperEngine:
    """The configured (or named) Whisper model, loaded once per process."""
    path = resolve(model or cfg.get("stt.model"), cfg)
    return load(path, device_for(cfg), cfg.get("stt.compute_type"))
