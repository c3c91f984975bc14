"""Fill missing transcripts with faster-whisper (``--transcribe``).

The model is named by the config key ``dataset.whisper_model``: a local
CTranslate2 model folder or a faster-whisper model name (which faster-whisper
fetches from its hub when online). It is loaded once per run, in the main
process, and only when some row actually lacks a transcript.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from demod_voice import audio as audio_mod
from demod_voice import paths
from demod_voice.errors import EngineError, InputError, missing_extra

_LOGGER = logging.getLogger(__name__)
CACHE_FILE = "transcripts.json"


class Transcriber:
    def __init__(self, model: str | None, language: str):
        if not model:
            raise InputError("--transcribe needs a Whisper model, and config key 'dataset.whisper_model' is not set",
                             hint="set it to a faster-whisper model folder, e.g. "
                                  "DEMOD_VOICE_DATASET__WHISPER_MODEL=/path/to/whisper-small")
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise missing_extra("faster-whisper", "dataset") from None
        self.language = language.split("-")[0].split("_")[0].lower() or None
        try:
            self._model = WhisperModel(str(Path(model).expanduser()) if Path(model).expanduser().exists() else model,
                                       device="cpu", compute_type="int8")
        except Exception as exc:  # CTranslate2 / huggingface_hub raise many untyped errors
            raise InputError(f"cannot load Whisper model '{model}' (dataset.whisper_model): {type(exc).__name__}: {exc}",
                             hint="give a local faster-whisper (CTranslate2) model folder") from None
        _LOGGER.info("loaded Whisper model %s", model)

    def __call__(self, path: str | Path) -> str:
        samples = audio_mod.read(path, 16000, what="recording").samples
        try:
            segments, _ = self._model.transcribe(samples, language=self.language, beam_size=5)
            return " ".join(s.text.strip() for s in segments).strip()
        except Exception as exc:  # noqa: BLE001 - the model's errors are untyped; name them
            raise EngineError(f"transcription of {path} failed: {type(exc).__name__}: {exc}") from exc


def load_cache(output_dir: Path) -> dict:
    """Transcripts made by earlier runs, keyed by utterance id and source fingerprint."""
    try:
        data = json.loads((output_dir / CACHE_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_cache(output_dir: Path, cache: dict) -> None:
    paths.atomic_write_bytes(output_dir / CACHE_FILE,
                                 json.dumps(cache, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))
