"""A real speech dataset, synthesised once per test session with the Joe Piper voice.

``speech_corpus`` holds 32 short utterances (clean WAVs plus their transcripts);
``make_ljspeech`` / ``make_pairs`` lay a copy out in either input layout, with
silence around the speech (so trimming shows), mixed sample rates and formats,
and optionally the broken rows the validation must catch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SENTENCES = [
    "The sun rose over the quiet hills.", "She opened the old wooden door.", "Birds sang in the tall trees.",
    "We walked along the sandy beach.", "The train left the station on time.", "He painted the fence bright blue.",
    "A cold wind blew from the north.", "They planted roses in the garden.", "The children laughed at the clown.",
    "My brother fixed the broken chair.", "Rain fell softly on the roof.", "The market was busy this morning.",
    "Please close the window tonight.", "The river flows into the sea.", "Our neighbor owns a small boat.",
    "The library opens at nine.", "Fresh bread smells wonderful.", "The cat slept by the warm fire.",
    "I lost my keys in the park.", "The mountain peak was covered in snow.", "He drinks coffee every day.",
    "The concert starts at eight.", "She writes letters to her friends.", "Leaves turn red in the autumn.",
    "The farmer feeds his horses.", "We watched the stars at night.", "The bridge crosses a deep valley.",
    "A little dog chased the ball.", "The teacher read a short story.", "Green apples taste a bit sour.",
    "The ship sailed across the ocean.", "Thunder rolled in the distance.",
]
PAD_SECONDS = 0.4


@dataclass
class Corpus:
    root: Path
    texts: dict  # id -> text
    sample_rate: int

    def wav(self, utt_id: str) -> Path:
        return self.root / f"{utt_id}.wav"


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory, joe_voice) -> Corpus:
    from demod_voice.audio import Audio, write
    from demod_voice.engines.piper import engine as piper

    root = tmp_path_factory.mktemp("corpus")
    engine = piper.load(joe_voice, "cpu")
    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)
    rng = np.random.default_rng(0)
    texts = {}
    for i, sentence in enumerate(SENTENCES):
        speech = engine.synthesize_all(sentence, options)
        pad = np.zeros(int(PAD_SECONDS * speech.sample_rate), dtype=np.float32)
        samples = np.concatenate([pad, speech.samples, pad])
        samples = samples + rng.normal(0, 1e-4, len(samples)).astype(np.float32)  # a faint noise floor
        utt_id = f"utt_{i:03d}"
        write(Audio(samples, speech.sample_rate), root / f"{utt_id}.wav")
        texts[utt_id] = sentence
    return Corpus(root, texts, engine.sample_rate)


def _place(corpus: Corpus, utt_id: str, target_stem: Path, index: int) -> Path:
    """Copy one utterance, varying the format and rate: every 5th as FLAC at 16 kHz, every 7th at 44.1 kHz."""
    from demod_voice.audio import read, resample, write

    if index % 5 == 4:
        target = target_stem.with_suffix(".flac")
        write(resample(read(corpus.wav(utt_id)), 16000), target)
    elif index % 7 == 6:
        target = target_stem.with_suffix(".wav")
        write(resample(read(corpus.wav(utt_id)), 44100), target)
    else:
        target = target_stem.with_suffix(".wav")
        shutil.copyfile(corpus.wav(utt_id), target)
    return target


def _broken_audio(corpus: Corpus, folder: Path) -> None:
    from demod_voice.audio import Audio, read, write

    write(Audio(np.zeros(corpus.sample_rate * 2, dtype=np.float32), corpus.sample_rate), folder / "silent_01.wav")
    loud = read(corpus.wav("utt_001"))
    write(Audio(np.clip(loud.samples * 20.0, -1.0, 1.0), loud.sample_rate), folder / "clipped_01.wav")
    shutil.copyfile(corpus.wav("utt_002"), folder / "empty_01.wav")


#: The broken rows each layout gets, by id, with the issue code the report must show.
BROKEN = {"missing_01": "missing_audio", "empty_01": "empty_text", "silent_01": "silent",
          "clipped_01": "clipped", "utt_003": "duplicate_id"}


@pytest.fixture
def make_ljspeech(speech_corpus, tmp_path):
    """``make_ljspeech(broken=False, name="lj") -> Path`` of a fresh LJSpeech-layout copy."""

    def make(broken: bool = False, name: str = "lj") -> Path:
        folder = tmp_path / name
        wavs = folder / "wavs"
        wavs.mkdir(parents=True)
        lines = []
        for index, (utt_id, text) in enumerate(speech_corpus.texts.items()):
            _place(speech_corpus, utt_id, wavs / utt_id, index)
            lines.append(f"{utt_id}|{text}")
        if broken:
            _broken_audio(speech_corpus, wavs)
            lines[5:5] = ["missing_01|This file does not exist."]        # line 6
            lines[8:8] = ["wrong_columns_only"]                           # line 9
            lines += [
                "empty_01|",                                              # line 35
                "silent_01|Nobody said anything here.",                   # line 36
                "clipped_01|This one is far too loud.",                   # line 37
                "utt_003|The same id a second time.",                     # line 38
                "too|many|columns|here",                                  # line 39
            ]
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder

    return make


@pytest.fixture
def make_pairs(speech_corpus, tmp_path):
    """``make_pairs(broken=False, name="pairs") -> Path`` of name.wav + name.txt (+ .meta.json) recordings."""

    def make(broken: bool = False, name: str = "pairs") -> Path:
        import json

        folder = tmp_path / name
        folder.mkdir(parents=True)
        for index, (utt_id, text) in enumerate(speech_corpus.texts.items()):
            _place(speech_corpus, utt_id, folder / utt_id, index)
            (folder / f"{utt_id}.txt").write_text(text + "\n", encoding="utf-8")
            if index % 4 == 0:
                (folder / f"{utt_id}.meta.json").write_text(json.dumps({"speaker": "joe", "take": 1}), encoding="utf-8")
        if broken:
            _broken_audio(speech_corpus, folder)
            (folder / "missing_01.txt").write_text("This recording was lost.\n", encoding="utf-8")
            (folder / "empty_01.txt").write_text("   \n", encoding="utf-8")
            (folder / "silent_01.txt").write_text("Nobody said anything here.\n", encoding="utf-8")
            (folder / "clipped_01.txt").write_text("This one is far too loud.\n", encoding="utf-8")
            # Two recordings with one name: a duplicate id.
            shutil.copyfile(speech_corpus.wav("utt_004"), folder / "utt_003.mp3")
        return folder

    return make
