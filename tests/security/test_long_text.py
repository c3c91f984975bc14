"""Very long text (a book pasted in, 5 MB without a full stop): the CLI's memory stays bounded, batch refuses it clearly.

Before: ``piper-infer``/``xtts-zero-shot`` gathered every sentence's samples, joined them and encoded the
whole file in memory (4096 characters of Piper took 820 MB; a 5 MB text would need tens of GB). Now each
chunk is encoded into the output file as it arrives. A batch job's audio is still made whole inside its
worker (it travels back to the driver), so its text is bounded by ``batch.max_text_chars``.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest
import soundfile as sf

from demod_voice import output
from demod_voice.audio import Audio
from tests.core.test_output import RATE, speechlike_chunks
from tests.helpers import run_cli


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_cli_output_memory_stays_bounded_for_long_audio(tmp_path, fmt):
    """Ten minutes of audio (53 MB as float samples) pass through a few MB of Python/numpy memory."""
    one_second = speechlike_chunks(1, seconds=1.0)[0]

    def ten_minutes():
        for _ in range(600):
            yield Audio(one_second.samples.copy(), RATE)

    tracemalloc.start()
    try:
        delivered = output.deliver(ten_minutes(), output.Target(str(tmp_path / f"long.{fmt}"), fmt))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert delivered.duration == pytest.approx(600.0, abs=0.01)
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB"
    assert sf.info(str(tmp_path / f"long.{fmt}")).duration == pytest.approx(600.0, abs=0.2)


def test_batch_refuses_an_overlong_text_and_runs_the_rest(isolated_home, joe_voice, tmp_path):
    long_text = "word " * 12_000  # 59 999 characters (stripped) without a full stop, over the 50 000 default
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(r) for r in (
        {"engine": "piper", "voice": str(joe_voice), "text": long_text, "output": "long.wav"},
        {"engine": "piper", "voice": str(joe_voice), "text": "A short line.", "output": "short.wav"},
    )) + "\n", encoding="utf-8")
    proc = run_cli("batch", jobs, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # one job invalid: documented exit code 1
    stderr = proc.stderr.decode()
    assert "59999 characters, more than batch.max_text_chars (50000)" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "long.wav").exists()
    assert sf.info(str(tmp_path / "short.wav")).duration > 0.3


def test_batch_text_limit_is_a_config_key(isolated_home, joe_voice, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"engine": "piper", "voice": str(joe_voice), "text": "Eleven chars", "output": "a.wav"})
                    + "\n", encoding="utf-8")
    proc = run_cli("batch", jobs, cwd=tmp_path, env={"DEMOD_VOICE_BATCH__MAX_TEXT_CHARS": "10"})
    assert proc.returncode == 1 and b"more than batch.max_text_chars (10)" in proc.stderr
