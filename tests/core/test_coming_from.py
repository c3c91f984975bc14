"""docs/cli.md's "coming from" table, row by row, as real subprocesses (#34 D), and argparse errors that show
the command's usage with a did-you-mean."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import run_cli
from tests.nodeps import hidden_env


def _wav(data: bytes):
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 22050 and audio.size > 5000
    return audio


def test_piper_18_flags_write_wav_to_stdout(joe_voice):
    """The issue's check: -m VOICE -s 0 --length_scale 1.1 --sentence_silence 0.2 -f - (text on stdin)."""
    proc = run_cli("piper-infer", "-m", joe_voice, "-s", "0", "--length_scale", "1.1", "--sentence_silence", "0.2",
                   "--noise_w_scale", "0", "--noise_scale", "0", "-f", "-", input="Hello there. How are you?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout[:4] == b"RIFF"
    faster = run_cli("piper-infer", "-m", joe_voice, "--noise_w_scale", "0", "--noise_scale", "0", "-f", "-",
                     input="Hello there. How are you?")
    # 0.2 s between the two sentences and 10 % longer phonemes: longer than the plain answer
    assert len(_wav(proc.stdout)) > len(_wav(faster.stdout)) + 0.2 * 22050


def test_readme_speaker_0_on_a_one_speaker_voice(joe_voice, tmp_path):
    proc = run_cli("piper-infer", joe_voice, "Text", "--output", tmp_path / "out.wav", "--speaker", "0")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "out.wav").frames > 1000
    bad = run_cli("piper-infer", joe_voice, "Text", "--output", tmp_path / "o2.wav", "--speaker", "1")
    assert bad.returncode == 2 and "single speaker" in bad.stderr.decode()


def test_output_raw_output_dir_input_file_and_json_input(joe_voice, tmp_path):
    raw = run_cli("piper-infer", "-m", joe_voice, "--output_raw", input="Hello.")
    assert raw.returncode == 0 and raw.stdout[:4] != b"RIFF" and len(raw.stdout) > 10000
    lines = tmp_path / "lines.txt"
    lines.write_text("First line.\n\nSecond line.\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("piper-infer", "-m", joe_voice, "-i", lines, "-d", out)
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("*.wav"))
    assert len(files) == 2 and all(sf.info(f).frames > 1000 for f in files)
    assert {str(f) for f in files} <= set(proc.stdout.decode().split())  # piper prints each file it writes
    jobs = "\n".join(json.dumps({"text": t, "speaker_id": 0, "output_file": str(tmp_path / f"{n}.wav")})
                     for n, t in (("a", "One."), ("b", "Two.")))
    proc = run_cli("piper-infer", "-m", joe_voice, "--json-input", input=jobs)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "a.wav").frames > 1000 and sf.info(tmp_path / "b.wav").frames > 1000


def test_data_dir_no_normalize_debug_and_c(joe_voice, tmp_path):
    voices = tmp_path / "voices"
    voices.mkdir()
    shutil.copy(joe_voice, voices / "my-voice.onnx")
    shutil.copy(str(joe_voice) + ".json", voices / "my-voice.onnx.json")
    args = ("--noise_scale", "0", "--noise_w_scale", "0", "-f", "-")
    loud = run_cli("piper-infer", "-m", voices / "my-voice.onnx", "-c", voices / "my-voice.onnx.json", *args,
                   input="Hello there.")
    assert loud.returncode == 0, loud.stderr  # -c naming the config beside the model is piper's own habit
    loud = run_cli("piper-infer", "-m", "my-voice", "--data-dir", voices, *args, input="Hello there.")
    assert loud.returncode == 0, loud.stderr
    quiet = run_cli("piper-infer", "-m", "my-voice", "--data-dir", voices, "--no-normalize", "--debug", *args,
                    input="Hello there.")
    assert quiet.returncode == 0, quiet.stderr
    assert b"DEBUG" in quiet.stderr or b"debug" in quiet.stderr.lower()
    a, b = _wav(loud.stdout), _wav(quiet.stdout)
    assert len(a) == len(b) and not np.allclose(a, b)  # the same speech, another loudness
    wrong = run_cli("piper-infer", "-m", voices / "my-voice.onnx", "-c", tmp_path / "x.json", "Hi", "-o", tmp_path / "x.wav")
    assert wrong.returncode == 2 and "beside the model" in wrong.stderr.decode()


def test_coqui_tts_form(tmp_path):
    """`tts --model_name ... --text ... --speaker_wav ... --language_idx ... --out_path ...` is parsed as the same
    request (here without torch, so it stops at the install line, not at "unrecognized arguments")."""
    ref = tmp_path / "me.wav"
    sf.write(ref, np.zeros(22050, dtype=np.float32), 22050)
    env = hidden_env(tmp_path / "hide")
    proc = run_cli("xtts-zero-shot", "--model_name", "tts_models/multilingual/multi-dataset/xtts_v2", "--text", "Hi",
                   "--speaker_wav", ref, "--language_idx", "en", "--out_path", tmp_path / "out.wav", env=env)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "make install EXTRAS=xtts" in err and "unrecognized" not in err, err
    other = run_cli("xtts-zero-shot", "--model_name", "tts_models/en/ljspeech/vits", "--text", "Hi", "--speaker_wav",
                    ref, env=env)
    assert other.returncode == 2 and "runs XTTS-v2 only" in other.stderr.decode()


@pytest.mark.parametrize("args, usage, suggestion", [
    (["piper-infer", "x", "hi", "--length-scael", "1"], "usage: demod-voice piper-infer", "--length-scale"),
    (["xtts-zero-shot", "a.wav", "hi", "--out-path", "o.wav"], "usage: demod-voice xtts-zero-shot", "--out_path"),
    (["sya", "hi"], "usage: demod-voice", "did you mean say"),
])
def test_usage_errors_name_the_command_and_suggest(args, usage, suggestion):
    proc = run_cli(*args)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and usage in err and suggestion in err, err
    if args[0] != "sya":
        assert "COMMAND ..." not in err  # the command's usage, not the top level's
