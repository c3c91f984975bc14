"""Caption files: SRT and WebVTT that parse back to the words, JSON, the time line across chunks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from demod_voice import captions
from demod_voice.audio import Audio
from demod_voice.captions import Timeline, Word
from demod_voice.errors import InputError, UsageError

WORDS = [Word("Hello", 0.1, 0.4), Word("there.", 0.45, 0.9), Word("This", 1.5, 1.7), Word("is", 1.72, 1.8),
         Word("a", 1.82, 1.85), Word("longer", 1.9, 2.2), Word("line", 2.25, 2.5), Word("that", 2.55, 2.7),
         Word("keeps", 2.75, 3.0), Word("going", 3.05, 3.3), Word("well", 3.35, 3.5), Word("past", 3.55, 3.8),
         Word("twelve", 3.85, 4.1), Word("words,", 4.15, 4.4), Word("surely.", 4.45, 4.9), Word("Bye", 3725.0, 3725.5)]


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_srt_and_vtt_parse_back_to_the_words(tmp_path, fmt):
    path = captions.write(tmp_path / f"out.{fmt}", WORDS)
    content = path.read_text(encoding="utf-8")
    assert content.startswith("WEBVTT\n\n" if fmt == "vtt" else "1\n00:00:00,100 --> ")
    cues = captions.parse_cues(content)
    assert " ".join(c.text for c in cues) == " ".join(w.word for w in WORDS)
    assert cues[0].text == "Hello there." and cues[0].start == 0.1 and cues[0].end == 0.9  # a sentence ends a cue
    assert all(len(c.text.split()) <= 12 and c.end - c.start <= 5.0 for c in cues)
    assert cues[-1].start == 3725.0  # hours are written and read (01:02:05)
    assert "01:02:05" in content
    starts = [c.start for c in cues]
    assert starts == sorted(starts)


def test_json_and_suffix_rules(tmp_path):
    data = json.loads(captions.write(tmp_path / "w.json", WORDS).read_text())
    assert data["words"][0] == {"word": "Hello", "start": 0.1, "end": 0.4}
    with pytest.raises(UsageError, match="caption format"):
        captions.caption_format("x.txt")
    with pytest.raises(InputError, match="not a cue timing"):
        captions.parse_cues("1\nnonsense\nhello\n")


def test_timeline_puts_chunks_on_one_axis():
    timeline = Timeline()
    first = timeline.add(1.5, [Word("a", 0.1, 0.5)])
    second = timeline.add(2.0, [Word("b", 0.2, 0.6)])
    timeline.add(0.5, None)  # a chunk without words still moves the clock
    third = timeline.add(1.0, [Word("c", 0.0, 0.3)])
    assert first == [Word("a", 0.1, 0.5)] and second == [Word("b", 1.7, 2.1)] and third == [Word("c", 4.0, 4.3)]
    assert timeline.offset == 5.0 and len(timeline.words) == 3


def test_carry_rescales_to_the_converted_duration():
    source = Audio(np.zeros(22050), 22050, words=[Word("x", 0.5, 1.0)])
    converted = captions.carry(source, Audio(np.zeros(40000), 40000))  # 1.0 s at another rate
    assert converted.words == [Word("x", 0.5, 1.0)]
    stretched = captions.carry(source, Audio(np.zeros(44100), 22050))
    assert stretched.words == [Word("x", 1.0, 2.0)]
