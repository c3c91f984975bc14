"""Every documented error case: one `error:` line, the right exit code, no output file."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest

from tests.helpers import cli_env


def assert_error(proc, code: int, *needles: str):
    err = proc.stderr.decode()
    assert proc.returncode == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[-1], lines[-1]


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "out.wav"
    yield path
    assert not path.exists(), "an output file was left behind after an error"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.wav")], "a temporary file was left behind"


def test_missing_model_path(cli, out):
    assert_error(cli("piper-infer", "/nowhere/voice.onnx", "hello", "-o", out), 2, "/nowhere/voice.onnx", "not found")


def test_unknown_voice_name(cli, out):
    assert_error(cli("piper-infer", "en_US-joe-mediun", "hello", "-o", out), 2, "en_US-joe-mediun", "did you mean")


def test_onnx_without_config(cli, out, tmp_path, joe_voice):
    lonely = tmp_path / "lonely.onnx"
    shutil.copy(joe_voice, lonely)
    assert_error(cli("piper-infer", lonely, "hello", "-o", out), 2, "lonely.onnx", ".json")


def test_unreadable_model(cli, out, tmp_path, joe_voice):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")
    shutil.copy(f"{joe_voice}.json", f"{broken}.json")
    assert_error(cli("piper-infer", broken, "hello", "-o", out), 2, "broken.onnx")


def test_model_is_a_folder(cli, out, tmp_path):
    assert_error(cli("piper-infer", str(tmp_path) + "/", "hello", "-o", out), 2, "folder")


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty_text(cli, out, text):
    assert_error(cli("piper-infer", "en_US-joe-medium", text, "-o", out), 2, "empty")


def test_empty_stdin(cli, out):
    assert_error(cli("piper-infer", "en_US-joe-medium", "-", "-o", out, input=b"  \n"), 2, "standard input")


def test_non_utf8_text_file(cli, out, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    assert_error(cli("piper-infer", "en_US-joe-medium", "--text-file", bad, "-o", out), 2, "latin1.txt", "UTF-8")


def test_missing_text_file(cli, out, tmp_path):
    assert_error(cli("piper-infer", "en_US-joe-medium", "--text-file", tmp_path / "no.txt", "-o", out), 2, "no.txt")


def test_text_and_text_file_together(cli, out, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("hi")
    assert_error(cli("piper-infer", "en_US-joe-medium", "hi", "--text-file", f, "-o", out), 2, "not both")


def test_missing_output_folder(cli, tmp_path):
    target = tmp_path / "missing" / "out.wav"
    assert_error(cli("piper-infer", "en_US-joe-medium", "hello", "-o", target), 2, str(tmp_path / "missing"))
    assert not target.parent.exists()


def test_unwritable_output_folder(cli):
    # /proc refuses new files even for root, so this works whoever runs the tests.
    assert_error(cli("piper-infer", "en_US-joe-medium", "hello", "-o", "/proc/demod-out.wav"), 2, "/proc")


def test_output_is_a_folder(cli, tmp_path):
    assert_error(cli("piper-infer", "en_US-joe-medium", "hello", "-o", tmp_path), 2, "folder")


def test_speaker_on_single_speaker_voice(cli, out):
    assert_error(cli("piper-infer", "en_US-joe-medium", "hello", "--speaker", "1", "-o", out), 2, "single speaker")


def test_speaker_out_of_range(cli, out, tmp_path, joe_voice):
    # A voice whose config declares two speakers: index 5 must be refused before synthesis.
    multi = tmp_path / "multi.onnx"
    shutil.copy(joe_voice, multi)
    config = json.loads(open(f"{joe_voice}.json").read())
    config.update(num_speakers=2, speaker_id_map={"anna": 0, "bert": 1})
    (tmp_path / "multi.onnx.json").write_text(json.dumps(config))
    assert_error(cli("piper-infer", multi, "hello", "--speaker", "5", "-o", out), 2, "out of range", "0-1")
    assert_error(cli("piper-infer", multi, "hello", "--speaker", "carl", "-o", out), 2, "carl", "anna")


def test_unknown_format(cli, out):
    proc = cli("piper-infer", "en_US-joe-medium", "hello", "-o", out, "--format", "wma")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr.decode()


def test_unknown_suffix(cli, tmp_path):
    target = tmp_path / "out.xyz"
    assert_error(cli("piper-infer", "en_US-joe-medium", "hello", "-o", target), 2, "out.xyz", "--format")
    assert not target.exists()


def test_bad_numbers(cli, out):
    proc = cli("piper-infer", "en_US-joe-medium", "hello", "-o", out, "--speed", "-1")
    assert proc.returncode == 2 and "positive" in proc.stderr.decode()
    # --speed with --length-scale is allowed now (a time-stretch on top of piper's length scale, #34); a speed
    # past the range is not
    assert_error(cli("piper-infer", "en_US-joe-medium", "hello", "-o", out, "--speed", "100"), 2, "speed", "4.0")


def test_bad_config_value(cli, out, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("piper:\n  volume: loud\n")
    assert_error(cli("--config", cfg, "piper-infer", "en_US-joe-medium", "hi", "-o", out), 2,
                 "piper.volume", "number", "loud")


def test_bad_env_value(cli, out):
    assert_error(cli("piper-infer", "en_US-joe-medium", "hi", "-o", out, env={"DEMOD_VOICE_DEVICE": "tpu"}), 2,
                 "device", "DEMOD_VOICE_DEVICE", "tpu")


def test_stream_with_output_file(cli, out):
    assert_error(cli("piper-infer", "en_US-joe-medium", "hi", "--stream", "-o", out), 2, "--stream")


def test_not_yet_available_commands_say_so(cli, tmp_path):
    # Commands registered for compatibility answer plainly until their engine lands.
    proc = cli("batch", tmp_path / "jobs.csv")
    if proc.returncode == 2 and "not available yet" in proc.stderr.decode():
        assert_error(proc, 2, "not available yet")


def test_ctrl_c_exits_130_and_leaves_no_file(isolated_home, tmp_path):
    target = tmp_path / "long.wav"
    text = " ".join(f"Sentence {i} keeps the engine busy for a while." for i in range(200))
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "piper-infer", "en_US-joe-medium", text,
                             "-o", str(target), "-v"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    # Wait until the voice is loaded and synthesis has begun (the -v log says so), then interrupt.
    for line in proc.stderr:
        if b"loaded Piper voice" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert not target.exists()
    assert not list(tmp_path.glob(".long.wav.*"))
