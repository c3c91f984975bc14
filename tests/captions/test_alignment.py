"""Word timings from Piper's phoneme alignments agree with Whisper tiny.en; the Whisper aligner itself."""

from __future__ import annotations

import numpy as np
import pytest

from demod_voice import alignment
from demod_voice.audio import Audio, concat
from demod_voice.captions import Timeline, Word
from tests.captions.conftest import TEXT


def on_one_axis(chunks) -> list[Word]:
    timeline = Timeline()
    for chunk in chunks:
        timeline.add(chunk.duration, chunk.words)
    return timeline.words


def test_piper_gives_every_written_word_in_order(timed_speech):
    words = on_one_axis(timed_speech)
    assert [w.word for w in words] == TEXT.split()
    assert len(timed_speech) == 3 and all(c.words for c in timed_speech)
    assert all(w.start <= w.end for w in words)
    assert all(a.end <= b.start + 1e-3 for a, b in zip(words, words[1:], strict=False))
    total = sum(c.duration for c in timed_speech)
    assert words[-1].end <= total
    # the 0.4 s sentence silence sits between sentences, not inside words
    dog, it = words[TEXT.split().index("dog.")], words[TEXT.split().index("It")]
    assert it.start - dog.end >= 0.4


def test_alignment_patch_leaves_the_audio_unchanged(piper_engine, joe_voice):
    from piper import PiperVoice, SynthesisConfig

    from demod_voice.engines.piper.engine import PiperOptions

    plain = PiperVoice.load(joe_voice, config_path=piper_engine.config_path)
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    a = np.concatenate([c.audio_float_array for c in plain.synthesize("Same audio, with or without.", config)])
    options = PiperOptions(noise_scale=0.0, noise_w=0.0)
    b = concat(list(piper_engine.synthesize("Same audio, with or without.", options, words=True))).samples
    assert a.shape == b.shape and np.max(np.abs(a - b)) < 1e-4


@pytest.mark.slow
def test_piper_timings_agree_with_whisper_word_timestamps(timed_speech, whisper_path):
    """Whisper tiny.en's own word timestamps on the same audio: median difference under 120 ms."""
    words = on_one_axis(timed_speech)
    audio = concat(timed_speech)
    model = alignment.whisper_model(whisper_path)
    heard = alignment.whisper_words(model, audio, "en")
    assert len(heard) >= len(words) - 3
    placed = alignment.align_text(TEXT, heard, audio.duration)  # Whisper's times on our words
    errors = [abs(a.start - b.start) for a, b in zip(words, placed, strict=True)]
    errors += [abs(a.end - b.end) for a, b in zip(words, placed, strict=True)]
    assert float(np.median(errors)) < 0.12, np.median(errors)


@pytest.mark.slow
def test_whisper_aligner_streams_words_chunk_by_chunk(timed_speech, whisper_path):
    """The XTTS/RVC path: chunks without timings get them from Whisper, one chunk late, all words in order."""
    bare = [Audio(c.samples, c.sample_rate) for c in timed_speech]
    out = list(alignment.with_words(iter(bare), TEXT, lambda: alignment.WhisperAligner(whisper_path, "en")))
    assert [len(c.samples) for c in out] == [len(c.samples) for c in bare]
    words = on_one_axis(out)
    assert [w.word for w in words] == TEXT.split()
    reference = on_one_axis(timed_speech)
    errors = [abs(a.start - b.start) for a, b in zip(words, reference, strict=True)]
    assert float(np.median(errors)) < 0.15


def test_align_text_fills_words_whisper_missed():
    heard = [Word("the", 0.0, 0.2), Word("cat", 0.3, 0.6), Word("on", 1.5, 1.6), Word("mat", 1.8, 2.0)]
    placed = alignment.align_text("The cat sat quietly on the mat.", heard, 2.5)
    assert [w.word for w in placed] == ["The", "cat", "sat", "quietly", "on", "the", "mat."]
    assert placed[0] == Word("The", 0.0, 0.2) and placed[-1] == Word("mat.", 1.8, 2.0)
    sat, quietly = placed[2], placed[3]
    assert 0.6 <= sat.start < sat.end <= quietly.start < quietly.end <= 1.5
    assert alignment.align_text("nothing heard here", [], 3.0)[-1].end == 3.0


def test_text_words_keep_punctuation_with_their_word():
    assert alignment.text_words("\u201cWell \u2014 yes!\u201d  she said ...") == ["\u201cWell \u2014", "yes!\u201d", "she",
                                                                                  "said..."]
