"""Messages that say what was wrong and what to do (#34 H), through the real CLI."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import run_cli


def _err(*args) -> str:
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    return proc.stderr.decode()


def test_forgotten_reference_is_not_no_text_given(tmp_path):
    err = _err("xtts-zero-shot", "Hello there.", "-o", tmp_path / "o.wav")
    assert "no text given" not in err and "no reference audio given" in err and "REFERENCE then TEXT" in err


def test_voice_and_text_swapped(tmp_path):
    err = _err("piper-infer", "Hello there.", "en_US-joe-medium", "-o", tmp_path / "o.wav")
    assert "voices download Hello there." not in err
    assert "'Hello there.' is not a voice name" in err and "voice first, then the text" in err


def test_no_did_you_mean_for_another_voice(tmp_path, isolated_home):
    err = _err("piper-infer", "en_US-lessac-medium", "Hi", "-o", tmp_path / "o.wav")
    assert "did you mean en_US-joe-medium" not in err and "voices download en_US-lessac-medium" in err
    typo = _err("piper-infer", "en_US-joe-meduim", "Hi", "-o", tmp_path / "o.wav")
    assert "did you mean en_US-joe-medium" in typo


def test_unreadable_bytes_name_no_python_object():
    from demod_voice import audio
    from demod_voice.errors import InputError

    with pytest.raises(InputError) as err:
        audio.read(io.BytesIO(b"this is not audio at all" * 40), what="upload")
    assert "BytesIO" not in str(err.value) and "object at 0x" not in str(err.value)


def test_m4a_is_refused_not_written_as_adts(tmp_path, joe_voice):
    err = _err("piper-infer", joe_voice, "Hi", "-o", tmp_path / "x.m4a")
    assert "MP4 container" in err and ".aac" in err
    assert not (tmp_path / "x.m4a").exists()


def test_config_show_prints_resolved_folders(isolated_home):
    out = run_cli("config", "show").stdout.decode()
    line = next(line for line in out.splitlines() if line.startswith("paths.data_dir"))
    assert "null" not in line and str(isolated_home) in line and "(resolved)" in line
    ray = next(line for line in out.splitlines() if line.startswith("ray_serve.cache_dir"))
    assert "null" not in ray and str(isolated_home) in ray and "(resolved)" in ray  # serve --ray's shared cache


def test_voices_add_refuses_a_sample_too_short_to_clone(tmp_path, isolated_home):
    short = tmp_path / "short.wav"
    t = np.arange(int(0.8 * 22050)) / 22050
    sf.write(short, (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 22050)
    err = _err("voices", "add", "me", "--sample", short)
    assert "too short (0.80 s" in err and "XTTS at least 2 s" in err
