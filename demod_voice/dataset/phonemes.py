"""Text -> espeak-ng phonemes -> Piper phoneme ids.

Uses the espeak-ng that piper-tts bundles (``piper.phonemize_espeak``), so the
phonemes are exactly the ones Piper produces at inference time. The id map is
Piper's default one or the ``phoneme_id_map`` of a voice config (needed when
fine-tuning from an existing voice: ids must match its embedding table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from demod_voice.errors import InputError, missing_extra

#: Piper's special symbols: padding between phonemes, begin and end of a sentence.
PAD, BOS, EOS = "_", "^", "$"


def default_id_map() -> dict[str, list[int]]:
    try:
        from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP
    except ImportError:
        raise missing_extra("piper-tts", "dataset") from None
    return {k: list(v) for k, v in DEFAULT_PHONEME_ID_MAP.items()}


def read_id_map(voice_config: str | Path) -> dict[str, list[int]]:
    """The ``phoneme_id_map`` of a Piper voice config (``.onnx.json`` or ``config.json``)."""
    path = Path(voice_config)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = data["phoneme_id_map"]
        id_map = {str(k): [int(i) for i in (v if isinstance(v, list) else [v])] for k, v in raw.items()}
    except FileNotFoundError:
        raise InputError(f"voice config not found: {path}", hint="give the .onnx.json of the voice") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"voice config {path} has no usable phoneme_id_map: {exc}",
                         hint="give the .onnx.json that came with a Piper voice") from None
    for symbol in (PAD, BOS, EOS):
        if symbol not in id_map:
            raise InputError(f"voice config {path}: phoneme_id_map lacks the special symbol {symbol!r}")
    return id_map


@dataclass
class Phonemized:
    """One utterance's phonemes (one list per sentence) and ids."""

    sentences: list[list[str]]
    ids: list[int]
    missing: list[str] = field(default_factory=list)
    """Phonemes absent from the id map (skipped, as Piper does)."""

    @property
    def text(self) -> str:
        """The phonemes as one string, sentences separated by a space."""
        return " ".join("".join(s) for s in self.sentences)


class Phonemizer:
    """espeak-ng for one voice (language) plus an id map; one per process."""

    def __init__(self, language: str, id_map: dict[str, list[int]] | None = None):
        try:
            from piper.phonemize_espeak import EspeakPhonemizer
        except ImportError:
            raise missing_extra("piper-tts", "dataset") from None
        self.language = language
        self.id_map = id_map or default_id_map()
        self._espeak = EspeakPhonemizer()
        try:
            self._espeak.phonemize(language, "a")
        except RuntimeError as exc:
            raise InputError(f"espeak-ng has no voice '{language}': {exc}",
                             hint="use an espeak-ng voice name such as en-us, en-gb, de, fr, es") from None

    def __call__(self, text: str) -> Phonemized:
        sentences = self._espeak.phonemize(self.language, text)
        ids: list[int] = []
        missing: list[str] = []
        for sentence in sentences:
            ids.extend(self.id_map[BOS])
            ids.extend(self.id_map[PAD])
            for phoneme in sentence:
                if phoneme not in self.id_map:
                    missing.append(phoneme)
                    continue
                ids.extend(self.id_map[phoneme])
                ids.extend(self.id_map[PAD])
            ids.extend(self.id_map[EOS])
        return Phonemized(sentences, ids, sorted(set(missing)))


def ids_to_phonemes(ids: list[int], id_map: dict[str, list[int]]) -> list[str]:
    """Invert ``Phonemizer`` (dropping pads and sentence markers); for checks and tools."""
    reverse = {v[0]: k for k, v in id_map.items() if len(v) == 1}
    skip = {id_map[PAD][0], id_map[BOS][0], id_map[EOS][0]}
    return [reverse[i] for i in ids if i not in skip]
