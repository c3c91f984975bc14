"""piper-infer through the real CLI with the real Joe voice."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import cli_env, word_error_rate

SENTENCES = "The weather is lovely today. Please open the window. We will meet at the station."


def _decode(path_or_bytes):
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    data, sr = sf.read(src, dtype="float32", always_2d=True)
    return data, sr


def test_synthesis_file_properties(cli, tmp_path):
    out = tmp_path / "speech.wav"
    proc = cli("piper-infer", "en_US-joe-medium", SENTENCES, "--output", out)
    assert proc.returncode == 0, proc.stderr.decode()
    data, sr = _decode(out)
    assert sr == 22050
    assert data.shape[1] == 1
    duration = len(data) / sr
    assert 3.0 < duration < 12.0
    assert float(np.sqrt(np.mean(data ** 2))) > 0.02  # not silent
    assert "wrote" in proc.stderr.decode()


def test_model_by_path_and_quiet(cli, tmp_path, joe_voice):
    out = tmp_path / "p.wav"
    proc = cli("-q", "piper-infer", joe_voice, "Hello from a path.", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "opus", "mp3"])
def test_every_format_decodes(cli, tmp_path, fmt):
    out = tmp_path / f"speech.{fmt}"
    proc = cli("piper-infer", "en_US-joe-medium", "Every format should decode.", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    data, sr = _decode(out)
    assert len(data) / sr > 0.8
    assert np.abs(data).max() > 0.05


def test_pcm_and_explicit_format_to_stdout(cli):
    proc = cli("piper-infer", "en_US-joe-medium", "Raw samples please.", "--output", "-", "--format", "pcm")
    assert proc.returncode == 0, proc.stderr.decode()
    samples = np.frombuffer(proc.stdout, dtype="<i2")
    assert len(samples) > 22050 * 0.5 and np.abs(samples).max() > 1000
    wav = cli("piper-infer", "en_US-joe-medium", "A wave on stdout.", "-o", "-")
    data, sr = _decode(wav.stdout)
    assert sr == 22050 and len(data) > 10000


def test_text_from_stdin_and_file(cli, tmp_path):
    text_file = tmp_path / "in.txt"
    text_file.write_text("Reading text from a file works.", encoding="utf-8")
    a = cli("piper-infer", "en_US-joe-medium", "--text-file", text_file, "-o", tmp_path / "a.wav",
            "--noise-scale", "0", "--noise-w", "0")
    b = cli("piper-infer", "en_US-joe-medium", "-", "-o", tmp_path / "b.wav", "--noise-scale", "0", "--noise-w", "0",
            input="Reading text from a file works.")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    # Deterministic settings: the same text gives the same audio whichever way it came in.
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_speed_length_scale_and_silence(cli, tmp_path):
    base = ["piper-infer", "en_US-joe-medium", "One. Two. Three.", "--noise-scale", "0", "--noise-w", "0"]
    cli(*base, "-o", tmp_path / "n.wav")
    cli(*base, "--speed", "2", "-o", tmp_path / "fast.wav")
    cli(*base, "--length-scale", "1.5", "-o", tmp_path / "slow.wav")
    cli(*base, "--sentence-silence", "0.5", "-o", tmp_path / "gaps.wav")
    n, fast, slow, gaps = (sf.info(str(tmp_path / f"{x}.wav")).duration for x in ("n", "fast", "slow", "gaps"))
    assert fast == pytest.approx(n / 2, rel=0.02)  # a playback rate: exactly half as long
    assert slow > n * 1.25
    assert gaps == pytest.approx(n + 1.0, abs=0.05)  # three sentences, 0.5 s between each two (none after the last)


def test_volume(cli, tmp_path):
    base = ["piper-infer", "en_US-joe-medium", "Volume check.", "--noise-scale", "0", "--noise-w", "0"]
    cli(*base, "-o", tmp_path / "full.wav")
    cli(*base, "--volume", "0.5", "-o", tmp_path / "half.wav")
    full, _ = _decode(tmp_path / "full.wav")
    half, _ = _decode(tmp_path / "half.wav")
    assert np.abs(half).max() == pytest.approx(np.abs(full).max() / 2, rel=0.02)


def test_stream_yields_first_audio_before_the_last_sentence(isolated_home):
    """The first PCM bytes arrive while later sentences are still being synthesised."""
    text = " ".join(f"This is sentence number {i} of a long streaming test." for i in range(1, 25))
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "piper-infer", "en_US-joe-medium", text, "--stream"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    first = proc.stdout.read1(1 << 20)
    still_running = proc.poll() is None
    rest = proc.stdout.read()
    proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert len(first) > 0 and len(first) % 2 == 0
    assert still_running, "the process had finished before the first audio arrived"
    assert len(rest) > 10 * len(first)  # most of the audio came later, sentence by sentence


def test_whisper_understands_the_output(cli, tmp_path, transcribe):
    text = ("The weather was warm and sunny all afternoon. We walked along the river and talked about music. "
            "Later we ate dinner in a small restaurant near the station. It is easy to tell the depth of a well.")
    out = tmp_path / "speech.wav"
    assert cli("piper-infer", "en_US-joe-medium", text, "-o", out).returncode == 0
    heard = transcribe(out)
    assert word_error_rate(text, heard) <= 0.10, heard


def test_python_m_and_bin_launcher(repo_root, tmp_path, isolated_home):
    launcher = subprocess.run([sys.executable, str(repo_root / "bin" / "demod-voice"), "--version"],
                              capture_output=True, env=cli_env())
    assert launcher.returncode == 0 and launcher.stdout.startswith(b"demod-voice ")
