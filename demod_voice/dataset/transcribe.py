"""Fill missing transcripts with Whisper (``--transcribe``).

The model is named by the config key ``dataset.whisper_model``: a local
CTranslate2 model folder or a Whisper registry name (``whisper-base.en``,
installed with ``demod-voice models pull``); the command resolves a name to
its folder. It runs through the shared engine ``demod_voice.engines.whisper.engine``
(loaded once per process, in the main process, and only when some row
actually lacks a transcript).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from demod_voice import audio as audio_mod
from demod_voice import paths
from demod_voice.errors import InputError

_LOGGER = logging.getLogger(__name__)
CACHE_FILE = "transcripts.json"


class Transcriber:
    def __init__(self, model: str | None, language: str):
        if not model:
            raise InputError("--transcribe needs a Whisper model, and config key 'dataset.whisper_model' is not set",
                             hint="set it to a faster-whisper model folder or a registry name, e.g. "
                                  "DEMOD_VOICE_DATASET__WHISPER_MODEL=whisper-base.en")
        from demod_voice.engines.whisper import engine as whisper

        self._engine = whisper.load(model, "cpu", "int8")
        self.language = self._engine.check_language(language)

    def __call__(self, path: str | Path) -> str:
        samples = audio_mod.read(path, 16000, what="recording").samples
        return self._engine.transcribe(samples, language=self.language, beam_size=5).text


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
